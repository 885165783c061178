import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Sender } from '../../src/delivery/sender.js';
import { Receiver } from '../helpers/receiver.js';

const CAP = 1024;
let receiver: Receiver;
let sender: Sender;
before(async () => {
  receiver = await Receiver.start();
  sender = new Sender({ responseCapBytes: CAP, allowPrivateTargets: true });
});
after(async () => {
  await sender.close();
  await receiver.close();
});

const post = (url: string, timeoutMs = 2_000, body = '{"hello":"world"}') =>
  sender.send({
    url,
    body,
    headers: { 'content-type': 'application/json', 'x-custom': 'yes' },
    timeoutMs,
  });

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

async function shut(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

test('returns the status and body, and the receiver gets the POST as sent', async () => {
  receiver.respond(() => ({ status: 418, body: "I'm a teapot" }));
  const before = receiver.requests.length;
  const result = await post(receiver.url('/send/plain'));
  assert.equal(result.status, 418);
  assert.equal(result.content, "I'm a teapot");
  assert.ok(result.durationMs >= 0);
  assert.equal(receiver.requests.length, before + 1);
  const got = receiver.requests.at(-1)!;
  assert.equal(got.method, 'POST');
  assert.equal(got.path, '/send/plain');
  assert.equal(got.body, '{"hello":"world"}');
  assert.equal(got.headers['content-type'], 'application/json');
  assert.equal(got.headers['x-custom'], 'yes');
});

test('an empty body is an empty string', async () => {
  receiver.respond(() => ({ status: 204 }));
  const result = await post(receiver.url('/send/empty'));
  assert.deepEqual([result.status, result.content], [204, '']);
});

test('a large body is cut at the cap', async () => {
  const big = '0123456789'.repeat(20_000);
  receiver.respond(() => ({ status: 200, body: big }));
  const result = await post(receiver.url('/send/big'));
  assert.equal(result.status, 200);
  assert.equal(result.content, big.slice(0, CAP));
});

test('a body exactly at the cap is kept whole', async () => {
  const exact = 'x'.repeat(CAP);
  receiver.respond(() => ({ status: 200, body: exact }));
  const result = await post(receiver.url('/send/exact'));
  assert.equal(result.content, exact);
});

test('the cap counts bytes and never splits a UTF-8 character into more bytes', async () => {
  const text = 'é'.repeat(2_000); // two bytes each; CAP - 1 would fall inside one
  const odd = new Sender({ responseCapBytes: CAP - 1, allowPrivateTargets: true });
  try {
    receiver.respond(() => ({
      status: 200,
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body: text,
    }));
    const result = await odd.send({
      url: receiver.url('/send/utf8'),
      body: '{}',
      headers: {},
      timeoutMs: 2_000,
    });
    assert.equal(result.status, 200);
    assert.ok(
      Buffer.byteLength(result.content, 'utf8') <= CAP - 1,
      `${Buffer.byteLength(result.content, 'utf8')} bytes kept`,
    );
    assert.ok(result.content.startsWith('é'.repeat(500)));
  } finally {
    await odd.close();
  }
});

test('a binary body with NUL and invalid bytes is stored as text within the cap', async () => {
  const binary = Buffer.alloc(CAP, 0xff);
  binary[0] = 0;
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(binary);
  });
  const url = await listen(server);
  try {
    const result = await post(url);
    assert.equal(result.status, 200);
    assert.ok(!result.content.includes('\u0000'));
    assert.ok(Buffer.byteLength(result.content, 'utf8') <= CAP);
    assert.ok(result.content.length > 0);
  } finally {
    await shut(server);
  }
});

test('an endless body returns, with content capped', async () => {
  let stopped = false;
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const chunk = Buffer.alloc(16 * 1024, 'z');
    const pump = () => {
      while (!stopped && res.write(chunk)) {
        /* keep writing until the socket pushes back */
      }
    };
    res.on('drain', pump);
    res.on('close', () => {
      stopped = true;
    });
    pump();
  });
  const url = await listen(server);
  try {
    const result = await post(url, 5_000);
    assert.equal(result.status, 200, result.content);
    assert.equal(result.content, 'z'.repeat(CAP));
  } finally {
    stopped = true;
    await shut(server);
  }
});

test('a body that trickles forever ends at the timeout', async () => {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('a');
    const timer = setInterval(() => res.write('a'), 20);
    res.on('close', () => clearInterval(timer));
  });
  const url = await listen(server);
  try {
    const result = await post(url, 300);
    // it returned at all (the trickle never ends), and says why
    assert.equal(result.status, null);
    assert.match(result.content, /time/i);
    assert.equal(result.timedOut, true, "a timeout, which closes the webhook's window of slots");
  } finally {
    await shut(server);
  }
});

test('a receiver slower than the timeout gives no status and a timeout message', async () => {
  receiver.respond(() => ({ status: 200, body: 'late', delayMs: 1_500 }));
  const result = await post(receiver.url('/send/slow'), 300);
  assert.equal(result.status, null);
  assert.match(result.content, /timed out/i);
  assert.match(result.content, /300/);
  assert.equal(result.timedOut, true);
});

test('redirects are returned, not followed', async () => {
  receiver.respond((r) =>
    r.path === '/send/moved'
      ? { status: 302, headers: { location: receiver.url('/send/landing') }, body: '' }
      : { status: 200, body: 'landed' },
  );
  const result = await post(receiver.url('/send/moved'));
  assert.equal(result.status, 302);
  assert.equal(receiver.requests.filter((r) => r.path === '/send/landing').length, 0);
});

test('a refused connection gives no status and says so', async () => {
  const server = createServer();
  const url = await listen(server);
  await shut(server);
  const result = await post(url);
  assert.equal(result.status, null);
  assert.equal(result.content, 'Connection refused');
  assert.equal(result.timedOut, undefined, 'refused at once: not a target that hangs');
});

test('an unresolvable host gives no status and a readable reason', async () => {
  const result = await post('http://no-such-host.invalid/hook');
  assert.equal(result.status, null);
  assert.match(result.content, /resolv|host/i);
});

test('an answer that is not HTTP, and a header that cannot be sent, read as what they are', async () => {
  const raw = createNetServer((socket) => {
    socket.once('data', () => socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n'));
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(raw.address() as AddressInfo).port}/`;
  try {
    const notHttp = await post(url);
    assert.equal(notHttp.status, null);
    assert.equal(
      notHttp.content,
      'Invalid HTTP response: The response does not start with an HTTP/1.x status line',
    );
  } finally {
    await new Promise<void>((resolve) => raw.close(() => resolve()));
  }
  const before = receiver.requests.length;
  const injected = await sender.send({
    url: receiver.url('/send/injected'),
    body: '{}',
    headers: { 'x-note': 'a\r\nx-forged: yes' },
    timeoutMs: 2_000,
  });
  assert.equal(injected.status, null);
  assert.equal(injected.content, 'Invalid value in header x-note');
  assert.equal(receiver.requests.length, before, 'nothing was sent');
});
