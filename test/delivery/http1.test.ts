import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import {
  createServer as createNetServer,
  type AddressInfo,
  type LookupFunction,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import {
  Http1Agent,
  type Http1Options,
  type Http1Request,
  type Http1Response,
} from '../../src/delivery/http1.js';
import { freePort } from '../helpers/ports.js';

// Every request below carries its own timeoutMs; this only stops a hung test from hanging the run.
const LIMIT = { timeout: 20_000 };

// ---------------------------------------------------------------- helpers

/** An agent closed when the test ends. */
function agentFor(t: TestContext, options: Partial<Http1Options> = {}): Http1Agent {
  const agent = new Http1Agent({ connectionsPerOrigin: 4, keepAliveMs: 10_000, ...options });
  t.after(() => agent.close());
  return agent;
}

/** A webhook POST to url; anything in `extra` replaces the defaults. */
function hook(url: URL | string, extra: Partial<Http1Request> = {}): Http1Request {
  return {
    url: new URL(url),
    headers: { 'content-type': 'application/json' },
    body: '{"event":"order.created"}',
    cap: 64 * 1024,
    timeoutMs: 3_000,
    ...extra,
  };
}

/** The error a request rejects with; fails (saying what came back) if it resolves instead. */
async function failure(pending: Promise<Http1Response>): Promise<NodeJS.ErrnoException> {
  let response: Http1Response;
  try {
    response = await pending;
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  const body = JSON.stringify(response.body.toString('latin1').slice(0, 200));
  return assert.fail(`expected a rejection, got status ${response.status} and body ${body}`);
}

const describe = (err: NodeJS.ErrnoException) =>
  `${err.name} code=${String(err.code)}: ${err.message}`;

/** Resolves with `pending`, or fails once `ms` have passed without it. */
async function within<T>(pending: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([pending, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A whole response with a Content-Length body. */
const ok = (body: string, headers = '', status = '200 OK') =>
  `HTTP/1.1 ${status}\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** Writes pieces one at a time, pausing between them so each tends to be its own TCP segment. */
async function trickle(socket: Socket, pieces: (string | Buffer)[], gapMs = 0): Promise<void> {
  for (const piece of pieces) {
    if (socket.destroyed) return;
    socket.write(piece);
    await (gapMs > 0 ? sleep(gapMs) : tick());
  }
}

/** One request as a raw server saw it. */
interface RawRequest {
  method: string;
  target: string;
  version: string;
  headers: Record<string, string>;
  body: Buffer;
  /** Which connection (0, 1, ...) it came on. */
  connection: number;
  /** performance.now() when its last byte arrived. */
  at: number;
}

type Responder = (request: RawRequest, socket: Socket) => void;

/**
 * A TCP server on 127.0.0.1 that parses requests (Content-Length bodies only) and lets the test
 * write whatever response bytes it likes. It never closes a connection unless told to.
 */
class RawServer {
  readonly requests: RawRequest[] = [];
  private readonly sockets: Socket[] = [];
  private readonly closes: Promise<void>[] = [];
  private readonly closedFlags: boolean[] = [];
  private readonly server: NetServer;
  port = 0;

  private constructor(respond: Responder) {
    this.server = createNetServer((socket) => this.accept(socket, respond));
  }

  static async start(t: TestContext, respond: Responder): Promise<RawServer> {
    const raw = new RawServer(respond);
    await new Promise<void>((resolve) => raw.server.listen(0, '127.0.0.1', resolve));
    raw.port = (raw.server.address() as AddressInfo).port;
    t.after(() => raw.close());
    return raw;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  url(path = '/hook'): URL {
    return new URL(path, this.origin);
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.sockets.length;
  }

  /** Resolves when connection `index` is closed. */
  closed(index: number): Promise<void> {
    return this.closes[index] ?? Promise.reject(new Error(`no connection ${index}`));
  }

  isClosed(index: number): boolean {
    return this.closedFlags[index] === true;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private accept(socket: Socket, respond: Responder): void {
    const index = this.sockets.length;
    this.sockets.push(socket);
    this.closedFlags.push(false);
    this.closes.push(
      new Promise((resolve) =>
        socket.once('close', () => {
          this.closedFlags[index] = true;
          resolve();
        }),
      ),
    );
    socket.setNoDelay(true);
    socket.on('error', () => {}); // the client may drop the connection while we write
    let pending = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const [line = '', ...fields] = pending.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const field of fields) {
          const colon = field.indexOf(':');
          headers[field.slice(0, colon).trim().toLowerCase()] = field.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        if (pending.length < end + 4 + length) return;
        const [method = '', target = '', version = ''] = line.split(' ');
        const body = Buffer.from(pending.subarray(end + 4, end + 4 + length));
        pending = pending.subarray(end + 4 + length);
        const request = { method, target, version, headers, body, connection: index };
        this.requests.push({ ...request, at: performance.now() });
        respond(this.requests.at(-1)!, socket);
      }
    });
  }
}

/** A node:http server that counts connections: in all, open now, and most open at once. */
interface HttpFixture {
  origin: string;
  url(path?: string): URL;
  connections(): number;
  maxOpen(): number;
}

async function serveHttp(
  t: TestContext,
  handler: RequestListener,
  keepAliveTimeout?: number,
): Promise<HttpFixture> {
  const server = createHttpServer(handler);
  if (keepAliveTimeout !== undefined) server.keepAliveTimeout = keepAliveTimeout;
  let total = 0;
  let open = 0;
  let most = 0;
  server.on('connection', (socket: Socket) => {
    total += 1;
    open += 1;
    most = Math.max(most, open);
    socket.once('close', () => (open -= 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    origin,
    url: (path = '/hook') => new URL(path, origin),
    connections: () => total,
    maxOpen: () => most,
  };
}

async function readBody(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------- what goes out

test('a POST arrives as sent, and status and headers come back', LIMIT, async (t) => {
  const seen: { method?: string; url?: string; version?: string; raw: string[]; body: Buffer } = {
    raw: [],
    body: Buffer.alloc(0),
  };
  let headersSeen: Record<string, string | string[] | undefined> = {};
  const server = await serveHttp(t, async (req, res) => {
    seen.method = req.method;
    seen.url = req.url;
    seen.version = req.httpVersion;
    seen.raw = req.rawHeaders;
    headersSeen = req.headers;
    seen.body = await readBody(req);
    res.setHeader('X-Multi', ['one', 'two']);
    res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    res.setHeader('X-Single', 'only');
    res.writeHead(201, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('créé');
  });
  const agent = agentFor(t);
  const body = '{"name":"Zoë","city":"København","parcel":"📦"}';
  const path = '/hooks/orders?id=42&tag=%C3%A9&empty=';
  const response = await agent.post(
    hook(server.url(path), {
      headers: {
        'content-type': 'application/json',
        'x-signature': 'v1,abc/+=',
        'user-agent': 'oms-hooks/test',
      },
      body,
    }),
  );

  assert.equal(seen.method, 'POST');
  assert.equal(seen.url, path);
  assert.equal(seen.version, '1.1');
  assert.equal(headersSeen['host'], new URL(server.origin).host);
  assert.equal(headersSeen['content-type'], 'application/json');
  assert.equal(headersSeen['x-signature'], 'v1,abc/+=');
  assert.equal(headersSeen['user-agent'], 'oms-hooks/test');
  assert.equal(headersSeen['content-length'], String(Buffer.byteLength(body)));
  assert.notEqual(Buffer.byteLength(body), body.length, 'the body is not ASCII');
  const names = seen.raw.filter((_v, i) => i % 2 === 0).map((name) => name.toLowerCase());
  assert.equal(names.filter((name) => name === 'host').length, 1, 'one host header');
  assert.equal(names.filter((name) => name === 'content-length').length, 1, 'one content-length');
  assert.ok(!names.includes('transfer-encoding'), 'no transfer-encoding');
  assert.deepEqual(seen.body, Buffer.from(body, 'utf8'));

  assert.equal(response.status, 201);
  assert.deepEqual(response.headers['x-multi'], ['one', 'two']);
  assert.deepEqual(response.headers['set-cookie'], ['a=1', 'b=2']);
  assert.equal(response.headers['x-single'], 'only');
  assert.equal(response.headers['content-type'], 'text/plain; charset=utf-8');
  assert.equal(response.body.toString('utf8'), 'créé');
});

test('an empty body is sent with content-length 0', LIMIT, async (t) => {
  const server = await RawServer.start(t, (_req, socket) => socket.write(ok('fine')));
  const agent = agentFor(t);
  const response = await agent.post(hook(server.url('/empty'), { body: '' }));
  assert.equal(response.body.toString(), 'fine');
  assert.equal(server.requests[0]?.headers['content-length'], '0');
  assert.equal(server.requests[0]?.method, 'POST');
  assert.equal(server.requests[0]?.target, '/empty');
});

// ---------------------------------------------------------------- connections

test('20 sequential requests share one keep-alive connection', LIMIT, async (t) => {
  const server = await serveHttp(t, async (req, res) => {
    res.end(await readBody(req));
  });
  const agent = agentFor(t);
  for (let i = 0; i < 20; i += 1) {
    const response = await agent.post(hook(server.url(`/seq/${i}`), { body: `request ${i}` }));
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), `request ${i}`);
  }
  assert.equal(server.connections(), 1);
  assert.equal(agent.connections(server.origin), 1);
});

test('no more than connectionsPerOrigin sockets are opened; the rest wait', LIMIT, async (t) => {
  let inFlight = 0;
  let mostInFlight = 0;
  const server = await serveHttp(t, async (req, res) => {
    inFlight += 1;
    mostInFlight = Math.max(mostInFlight, inFlight);
    const body = await readBody(req);
    await sleep(50);
    inFlight -= 1;
    res.end(body);
  });
  const agent = agentFor(t, { connectionsPerOrigin: 3 });
  const responses = await Promise.all(
    Array.from({ length: 10 }, (_v, i) =>
      agent.post(hook(server.url(`/c/${i}`), { body: `n=${i}` })),
    ),
  );
  assert.deepEqual(
    responses.map((r) => [r.status, r.body.toString()]),
    Array.from({ length: 10 }, (_v, i) => [200, `n=${i}`]),
  );
  assert.ok(server.maxOpen() <= 3, `${server.maxOpen()} sockets open at once`);
  assert.ok(mostInFlight <= 3, `${mostInFlight} requests in flight at once`);
  assert.ok(agent.connections(server.origin) <= 3);
});

test('requests are never pipelined: the next is sent after the answer', LIMIT, async (t) => {
  const answeredAt: number[] = [];
  const server = await RawServer.start(t, (req, socket) => {
    setTimeout(() => {
      answeredAt.push(performance.now());
      socket.write(ok(`answer to ${req.target}`));
    }, 100);
  });
  const agent = agentFor(t, { connectionsPerOrigin: 1 });
  const [first, second] = await Promise.all([
    agent.post(hook(server.url('/first'))),
    agent.post(hook(server.url('/second'))),
  ]);
  assert.equal(first.body.toString(), 'answer to /first');
  assert.equal(second.body.toString(), 'answer to /second');
  assert.equal(server.requests.length, 2);
  const [, secondArrived] = server.requests;
  assert.ok(
    secondArrived!.at >= answeredAt[0]!,
    `second request arrived ${(answeredAt[0]! - secondArrived!.at).toFixed(1)} ms ` +
      'before the first was answered',
  );
  assert.equal(server.connections, 1);
});

test('waiting for a free connection counts toward the timeout', LIMIT, async (t) => {
  const server = await RawServer.start(t, () => {}); // never answers
  const agent = agentFor(t, { connectionsPerOrigin: 1 });
  const first = agent.post(hook(server.url('/hang'), { timeoutMs: 5_000 })).catch((e) => e);
  const started = performance.now();
  const err = await failure(agent.post(hook(server.url('/queued'), { timeoutMs: 200 })));
  const took = performance.now() - started;
  assert.equal(err.name, 'TimeoutError', describe(err));
  assert.ok(took >= 199, `rejected after ${took.toFixed(1)} ms`);
  assert.ok(took < 4_000, `rejected after ${took.toFixed(1)} ms`);
  assert.equal(server.connections, 1, 'the queued request opened no connection of its own');
  await agent.close();
  await first;
});

test('close() fails requests in flight and closes every connection', LIMIT, async (t) => {
  const idle = await RawServer.start(t, (_req, socket) => socket.write(ok('done')));
  const busy = await RawServer.start(t, () => {}); // never answers
  const agent = agentFor(t);
  await agent.post(hook(idle.url()));
  assert.equal(agent.connections(idle.origin), 1);
  const inFlight = agent.post(hook(busy.url(), { timeoutMs: 10_000 }));
  inFlight.catch(() => {});
  while (busy.requests.length === 0) await sleep(5);
  await agent.close();
  const err = await within(failure(inFlight), 1_000, 'the request in flight to fail');
  assert.notEqual(err.name, 'TimeoutError', describe(err));
  await within(idle.closed(0), 1_000, 'the idle connection to close');
  await within(busy.closed(0), 1_000, 'the busy connection to close');
  assert.equal(agent.connections(idle.origin), 0);
  assert.equal(agent.connections(busy.origin), 0);
});

// ---------------------------------------------------------------- response framing

test('a Content-Length body written byte by byte is reassembled exactly', LIMIT, async (t) => {
  const body = Buffer.from('Grüße aus Köln! 📦 '.repeat(12), 'utf8');
  const head =
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n' + `Content-Length: ${body.length}\r\n\r\n`;
  const bytes = Buffer.concat([Buffer.from(head, 'latin1'), body]);
  const server = await RawServer.start(t, (_req, socket) => {
    void trickle(
      socket,
      Array.from(bytes, (byte) => Buffer.of(byte)),
    );
  });
  const agent = agentFor(t);
  const response = await agent.post(hook(server.url()));
  assert.equal(response.status, 200);
  assert.equal(response.headers['content-type'], 'text/plain');
  assert.deepEqual(response.body, body);
});

test('a chunked body with extensions and trailer, split awkwardly, is exact', LIMIT, async (t) => {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz';
  const pieces = [
    'HTTP/1.1 200 OK\r',
    '\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r',
    '\n5;ext=1;na',
    'me="a b"\r',
    '\nhel',
    'lo\r',
    '\n1',
    'A\r\n',
    alphabet.slice(0, 13),
    alphabet.slice(13),
    '\r',
    '\na\r\n0123456789\r\n',
    '0\r\nX-Trail',
    'er: yes\r\n\r',
    '\n',
  ];
  const server = await RawServer.start(t, (_req, socket) => void trickle(socket, pieces, 5));
  const agent = agentFor(t);
  const first = await agent.post(hook(server.url('/one')));
  assert.equal(first.status, 200);
  assert.equal(first.body.toString(), `hello${alphabet}0123456789`);
  const second = await agent.post(hook(server.url('/two')));
  assert.equal(second.body.toString(), `hello${alphabet}0123456789`);
  assert.equal(server.requests.length, 2);
  assert.equal(server.connections, 1, 'the second request reused the connection');
});

test(
  'with no length the body runs to the end of its connection; the next gets a new one',
  LIMIT,
  async (t) => {
    const server = await RawServer.start(t, (_req, socket) => {
      void trickle(
        socket,
        ['HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n', 'until ', 'the ', 'end'],
        5,
      ).then(() => socket.end());
    });
    const agent = agentFor(t);
    const first = await agent.post(hook(server.url('/one')));
    assert.equal(first.status, 200);
    assert.equal(first.body.toString(), 'until the end');
    const second = await agent.post(hook(server.url('/two')));
    assert.equal(second.body.toString(), 'until the end');
    assert.equal(server.connections, 2);
  },
);

test('a connection is closed or kept as the response says', LIMIT, async (t) => {
  // The servers never close: where a connection goes, the client has closed it.
  const v10 = (response: string) => response.replace('HTTP/1.1', 'HTTP/1.0');
  const cases: [string, string, boolean][] = [
    ['HTTP/1.1, Connection: close', ok('old', 'Connection: close\r\n'), false],
    ['HTTP/1.0 without keep-alive', v10(ok('old')), false],
    ['HTTP/1.0, Connection: keep-alive', v10(ok('old', 'Connection: keep-alive\r\n')), true],
  ];
  for (const [what, response, kept] of cases) {
    const server = await RawServer.start(t, (_req, socket) => socket.write(response));
    const agent = agentFor(t);
    assert.equal((await agent.post(hook(server.url('/one')))).body.toString(), 'old', what);
    if (!kept) await within(server.closed(0), 1_000, `${what}: the client to close it`);
    assert.equal((await agent.post(hook(server.url('/two')))).body.toString(), 'old', what);
    assert.equal(server.connections, kept ? 1 : 2, what);
  }
});

test('a 204 and a 304 have no body, and the connection stays usable', LIMIT, async (t) => {
  const length10 = 'Content-Length: 10\r\n';
  const server = await RawServer.start(t, (req, socket) => {
    if (req.target === '/204') socket.write('HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n');
    // a 304 may carry the Content-Length of the representation it stands for
    else if (req.target === '/304') socket.write(`HTTP/1.1 304 Not Modified\r\n${length10}\r\n`);
    else socket.write(ok('after'));
  });
  const agent = agentFor(t);
  const noContent = await agent.post(hook(server.url('/204')));
  assert.equal(noContent.status, 204);
  assert.equal(noContent.headers['x-a'], '1');
  assert.equal(noContent.body.length, 0);
  const notModified = await agent.post(hook(server.url('/304')));
  assert.equal(notModified.status, 304);
  assert.equal(notModified.body.length, 0);
  const after = await agent.post(hook(server.url('/after')));
  assert.equal(after.body.toString(), 'after');
  assert.equal(server.connections, 1);
});

test('1xx responses (103, 100) are skipped and the final response returned', LIMIT, async (t) => {
  const server = await RawServer.start(t, (_req, socket) => {
    void trickle(
      socket,
      [
        'HTTP/1.1 100 Continue\r\n\r\n',
        'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n',
        ok('final', 'X-Final: yes\r\n'),
      ],
      10,
    );
  });
  const agent = agentFor(t);
  const response = await agent.post(hook(server.url()));
  assert.equal(response.status, 200);
  assert.equal(response.body.toString(), 'final');
  assert.equal(response.headers['x-final'], 'yes');
  assert.equal(response.headers['link'], undefined, 'no header of the 103 leaks in');
  const again = await agent.post(hook(server.url()));
  assert.equal(again.body.toString(), 'final');
  assert.equal(server.connections, 1);
});

// ---------------------------------------------------------------- cap

test('a 1 MB body is cut at the cap and its connection dropped', LIMIT, async (t) => {
  const big = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < big.length; i += 1) big[i] = i % 251;
  const server = await RawServer.start(t, (_req, socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`);
    socket.write(big);
  });
  const agent = agentFor(t);
  const response = await agent.post(hook(server.url(), { cap: 1000 }));
  assert.equal(response.status, 200);
  assert.deepEqual(response.body, big.subarray(0, 1000));
  await within(server.closed(0), 2_000, 'the client to close the capped connection');
  assert.equal(agent.connections(server.origin), 0);
});

test('an endless chunked body returns at the cap', LIMIT, async (t) => {
  const chunk = `4000\r\n${'z'.repeat(0x4000)}\r\n`;
  const server = await RawServer.start(t, (_req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
    const pump = () => {
      while (!socket.destroyed && socket.write(chunk)) {
        /* until the socket pushes back */
      }
    };
    socket.on('drain', pump);
    pump();
  });
  const agent = agentFor(t);
  const response = await agent.post(hook(server.url(), { cap: 5_000, timeoutMs: 5_000 }));
  assert.equal(response.status, 200);
  assert.equal(response.body.toString(), 'z'.repeat(5_000));
  await within(server.closed(0), 2_000, 'the client to close the capped connection');
});

// ---------------------------------------------------------------- timeouts and idle connections

test('a server that never answers gives a TimeoutError and a closed socket', LIMIT, async (t) => {
  const server = await RawServer.start(t, () => {});
  const agent = agentFor(t);
  const started = performance.now();
  const err = await failure(agent.post(hook(server.url(), { timeoutMs: 300 })));
  const took = performance.now() - started;
  assert.equal(err.name, 'TimeoutError', describe(err));
  assert.ok(took >= 299, `rejected after ${took.toFixed(1)} ms`);
  assert.ok(took < 5_000, `rejected after ${took.toFixed(1)} ms`);
  assert.equal(server.requests.length, 1);
  await within(server.closed(0), 1_000, 'the timed-out connection to close');
  assert.equal(agent.connections(server.origin), 0);
});

test('a body that trickles forever ends at the timeout', LIMIT, async (t) => {
  const server = await RawServer.start(t, (_req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n');
    const timer = setInterval(() => socket.write('a'), 20);
    socket.once('close', () => clearInterval(timer));
  });
  const agent = agentFor(t);
  const started = performance.now();
  const err = await failure(agent.post(hook(server.url(), { timeoutMs: 300 })));
  const took = performance.now() - started;
  assert.equal(err.name, 'TimeoutError', describe(err));
  assert.ok(took >= 299 && took < 5_000, `rejected after ${took.toFixed(1)} ms`);
  await within(server.closed(0), 1_000, 'the timed-out connection to close');
});

test('a connection the server closes while idle is replaced', LIMIT, async (t) => {
  // A raw server closing idle sockets after 100 ms. (node:http with keepAliveTimeout 100 would
  // also send `Keep-Alive: timeout=0`, letting the client close first and proving nothing.)
  const server = await RawServer.start(t, (_req, socket) => {
    socket.write(ok('hi'));
    setTimeout(() => socket.end(), 100);
  });
  const agent = agentFor(t);
  assert.equal((await agent.post(hook(server.url('/one')))).body.toString(), 'hi');
  await sleep(300);
  assert.ok(server.isClosed(0));
  assert.equal(agent.connections(server.origin), 0, 'the closed connection left the pool');
  const second = await agent.post(hook(server.url('/two')));
  assert.equal(second.status, 200);
  assert.equal(second.body.toString(), 'hi');
  assert.equal(server.connections, 2);
});

test('an idle connection is closed after keepAliveMs', LIMIT, async (t) => {
  const server = await RawServer.start(t, (_req, socket) => socket.write(ok('hi')));
  const agent = agentFor(t, { keepAliveMs: 200 });
  await agent.post(hook(server.url('/one')));
  assert.equal(agent.connections(server.origin), 1);
  await sleep(500);
  assert.ok(server.isClosed(0), 'the client closed the idle connection');
  assert.equal(agent.connections(server.origin), 0);
  assert.equal(agent.originCount, 0, 'an origin with no connection left is forgotten');
  assert.equal((await agent.post(hook(server.url('/two')))).body.toString(), 'hi');
  assert.equal(server.connections, 2);
});

test('Keep-Alive: timeout=1 keeps the connection at most 0 s', LIMIT, async (t) => {
  const server = await RawServer.start(t, (_req, socket) => {
    socket.write(ok('hi', 'Keep-Alive: timeout=1\r\n'));
  });
  const agent = agentFor(t, { keepAliveMs: 10_000 });
  await agent.post(hook(server.url('/one')));
  await sleep(1_200);
  assert.ok(server.isClosed(0), 'the client closed the connection');
  assert.equal(agent.connections(server.origin), 0);
  assert.equal((await agent.post(hook(server.url('/two')))).body.toString(), 'hi');
  assert.equal(server.connections, 2);
});

// ---------------------------------------------------------------- failures

test('invalid header names and values reject before any connection', LIMIT, async (t) => {
  const server = await RawServer.start(t, (_req, socket) => socket.write(ok('should not')));
  const agent = agentFor(t);
  const bad: Record<string, string>[] = [
    { 'x-evil': 'a\r\nx-injected: 1' },
    { 'x-evil': 'a\nb' },
    { 'x-evil': 'a\rb' },
    { 'x-nul': 'a\u0000b' },
    { 'bad name': 'v' },
    { 'bad:name': 'v' },
    { '': 'v' },
  ];
  for (const headers of bad) {
    const err = await failure(agent.post(hook(server.url(), { headers })));
    assert.equal(err.code, 'ERR_INVALID_HEADER', `${JSON.stringify(headers)}: ${describe(err)}`);
  }
  await sleep(100);
  assert.equal(server.connections, 0);
  assert.equal(server.requests.length, 0);
});

test('the server closing mid-response gives ECONNRESET', LIMIT, async (t) => {
  const server = await RawServer.start(t, (req, socket) => {
    const partial: Record<string, string> = {
      '/after-headers': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial',
      '/mid-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc',
      '/mid-headers': 'HTTP/1.1 200 OK\r\nContent-Le',
      '/nothing': '',
    };
    socket.write(partial[req.target] ?? '');
    setTimeout(() => socket.end(), 20);
  });
  const agent = agentFor(t);
  for (const path of ['/after-headers', '/mid-chunk', '/mid-headers', '/nothing']) {
    const err = await failure(agent.post(hook(server.url(path))));
    assert.equal(err.code, 'ECONNRESET', `${path}: ${describe(err)}`);
  }
});

test('a malformed response gives ERR_BAD_RESPONSE', LIMIT, async (t) => {
  const padding = Array.from({ length: 70 }, (_v, i) => `X-Pad-${i}: ${'p'.repeat(1000)}\r\n`);
  const server = await RawServer.start(t, (req, socket) => {
    const bad: Record<string, string> = {
      '/bad-status': 'HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok',
      '/bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n',
      '/huge-head': ok('ok', padding.join('')), // about 70 KiB of header section
    };
    socket.write(bad[req.target] ?? ok('?'));
  });
  const agent = agentFor(t);
  for (const path of ['/bad-status', '/bad-chunk', '/huge-head']) {
    const err = await failure(agent.post(hook(server.url(path))));
    assert.equal(err.code, 'ERR_BAD_RESPONSE', `${path}: ${describe(err)}`);
  }
});

test('a 32 KiB header section is accepted', LIMIT, async (t) => {
  const padding = Array.from({ length: 32 }, (_v, i) => `X-Pad-${i}: ${'p'.repeat(1000)}\r\n`);
  const head = padding.join('');
  const server = await RawServer.start(t, (_req, socket) => socket.write(ok('ok', head)));
  const agent = agentFor(t);
  const response = await agent.post(hook(server.url()));
  assert.equal(response.status, 200);
  assert.equal(response.headers['x-pad-31'], 'p'.repeat(1000));
  assert.equal(response.body.toString(), 'ok');
});

test('a port where nothing listens gives ECONNREFUSED', LIMIT, async (t) => {
  const port = await freePort();
  const agent = agentFor(t);
  const err = await failure(agent.post(hook(`http://127.0.0.1:${port}/hook`)));
  assert.equal(err.code, 'ECONNREFUSED', describe(err));
});

test(
  'https: an untrusted certificate is refused; a trusted one is checked by name, kept',
  LIMIT,
  async (t) => {
    try {
      execFileSync('which', ['openssl'], { stdio: 'ignore' });
    } catch {
      t.skip('openssl is not on PATH: no certificate to test with');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'http1-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
        .concat(['-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1'])
        .concat(['-addext', 'subjectAltName=IP:127.0.0.1,DNS:receiver.test']),
      { stdio: 'ignore' },
    );
    let requests = 0;
    let handshakes = 0;
    const server = createHttpsServer(
      { key: readFileSync(keyFile), cert: readFileSync(certFile) },
      (_req, res) => {
        requests += 1;
        res.end('secret');
      },
    );
    server.on('connection', () => (handshakes += 1));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const port = (server.address() as AddressInfo).port;
    const agent = agentFor(t);
    const err = await failure(agent.post(hook(`https://127.0.0.1:${port}/hook`)));
    assert.equal(err.code, 'DEPTH_ZERO_SELF_SIGNED_CERT', describe(err));
    assert.equal(handshakes, 1, 'the client did connect');
    assert.equal(requests, 0, 'no request got through');

    // The same server trusted: a name is verified against the certificate, and the TLS
    // connection is kept for the next request.
    const lookup: LookupFunction = (_hostname, options, callback) => {
      if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
      else callback(null, '127.0.0.1', 4);
    };
    const trusting = agentFor(t, { ca: readFileSync(certFile), lookup });
    for (let i = 0; i < 2; i++) {
      const response = await trusting.post(hook(`https://receiver.test:${port}/hook`));
      assert.equal(response.status, 200);
      assert.equal(response.body.toString(), 'secret');
    }
    assert.equal(requests, 2);
    assert.equal(handshakes, 2, 'one more connection, for both requests');
    const wrongName = await failure(trusting.post(hook(`https://other.test:${port}/hook`)));
    assert.equal(wrongName.code, 'ERR_TLS_CERT_ALTNAME_INVALID', describe(wrongName));
    assert.equal(requests, 2);
  },
);

test(
  "a caller's host, framing and connection headers are dropped, not sent twice",
  LIMIT,
  async (t) => {
    const server = await RawServer.start(t, (_req, socket) => socket.write(ok('fine')));
    const agent = agentFor(t);
    const response = await agent.post(
      hook(server.url('/x'), {
        headers: {
          host: 'evil.example',
          'content-length': '2',
          connection: 'close',
          'transfer-encoding': 'chunked',
          'x-kept': 'yes',
        },
        body: 'hello',
      }),
    );
    assert.equal(response.status, 200);
    const seen = server.requests[0]!;
    assert.equal(seen.headers['host'], `127.0.0.1:${server.port}`);
    assert.equal(seen.headers['content-length'], '5');
    assert.equal(seen.headers['connection'], 'keep-alive');
    assert.equal(seen.headers['transfer-encoding'], undefined);
    assert.equal(seen.headers['x-kept'], 'yes');
    assert.equal(seen.body.toString(), 'hello');
  },
);

test('the lookup option resolves the host name', LIMIT, async (t) => {
  const calls: string[] = [];
  const lookup: LookupFunction = (hostname, options, callback) => {
    calls.push(hostname);
    if (hostname !== 'receiver.test') {
      const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      err.code = 'ENOTFOUND';
      callback(err, '');
    } else if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
  };
  const server = await RawServer.start(t, (_req, socket) => socket.write(ok('found')));
  const agent = agentFor(t, { lookup });
  const response = await agent.post(hook(`http://receiver.test:${server.port}/hook`));
  assert.equal(response.status, 200);
  assert.equal(response.body.toString(), 'found');
  assert.deepEqual(calls, ['receiver.test']);
  assert.equal(server.requests[0]?.headers['host'], `receiver.test:${server.port}`);
});
