import { connect as netConnect, isIP, type LookupFunction, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/**
 * A small HTTP/1.1 client for the one request the worker makes per attempt: a POST of a
 * JSON body, its response read up to a cap. It keeps connections per origin with
 * keep-alive, one request at a time on each (no pipelining), at most
 * `connectionsPerOrigin` of them, and writes each request as a single string.
 *
 * Why not undici, which the sender used before: in the worker, this client costs less.
 * Draining 100,000 queued events (`bench/drain.ts 100000`, PostgreSQL), the worker
 * process spent 110-117 µs of CPU per event with it against 159-165 µs with undici's
 * dispatch, and drained at 6,695-7,225/s against 5,295-5,487/s (two alternated pairs);
 * run side by side, three pairs read 124-136 against 175-178 µs. A bare loop of 50
 * concurrent POSTs to the benchmark's receiver showed a smaller gap (32-39 µs of client
 * CPU per request against 33-37, eight rounds each): most of the saving shows only in
 * the worker's own process, and no profile has yet said which part of it.
 * undici still makes the rare GETs (token endpoints, content types' source URLs).
 *
 * What it reads: a status line, headers (a section of at most 64 KiB), and a body framed
 * by Content-Length, by chunked encoding, or by the connection's end. 1xx responses are
 * passed over; 204 and 304 have no body. A connection is reused unless the response says
 * `Connection: close`, is HTTP/1.0 without keep-alive, or ran to the connection's end;
 * it is kept idle at most `keepAliveMs`, or a second less than a `Keep-Alive: timeout=`
 * the server announced, so that the server is not the one closing it under a request.
 */
export interface Http1Options {
  /** Most open connections per origin (scheme, host and port). */
  connectionsPerOrigin: number;
  /** How long an idle connection is kept, in ms. */
  keepAliveMs: number;
  /** Name resolution handed to each socket (the SSRF guard's). */
  lookup?: LookupFunction;
  /**
   * Certificates trusted instead of Node's bundled roots (tests of the TLS path). Server
   * certificates are verified whatever is given here.
   */
  ca?: string | Buffer;
}

export interface Http1Request {
  /** http: or https:. */
  url: URL;
  /** Lower-case names; the client writes host, framing and connection headers itself. */
  headers: Record<string, string>;
  body: string;
  /** Response body bytes kept; past them the connection is dropped. */
  cap: number;
  /** The whole exchange, waiting for a free connection included. */
  timeoutMs: number;
}

export type ResponseHeaders = Record<string, string | string[]>;

export interface Http1Response {
  status: number;
  /** Lower-case names; a repeated header is an array. */
  headers: ResponseHeaders;
  /** At most `cap` bytes. */
  body: Buffer;
}

const MAX_HEAD_BYTES = 64 * 1024;
/** Longest chunk-size or trailer line read before the response is called malformed. */
const MAX_LINE_BYTES = 8 * 1024;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\r\n\0]/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: |$)/;
const CRLF_CRLF = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');
const NOTHING = Buffer.alloc(0);
/**
 * Headers that say where a request goes, how it is framed or what happens to its
 * connection: the client writes the ones it needs itself, and drops a caller's. Two
 * Content-Lengths, or one beside a Transfer-Encoding, are read differently by different
 * servers. The API refuses them in a webhook's headers already.
 */
const CLIENT_OWN = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);

/** An error with the `code` the sender reads to say what went wrong. */
function failure(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

const timeoutError = () =>
  Object.assign(new Error('The request timed out'), { name: 'TimeoutError' });

/** The request's bytes up to its body, or an error naming a header that cannot be sent. */
function requestHead(url: URL, headers: Record<string, string>, length: number): string | Error {
  let head =
    `POST ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n` +
    `connection: keep-alive\r\ncontent-length: ${length}\r\n`;
  for (const name in headers) {
    const value = headers[name]!;
    if (!TOKEN.test(name)) return failure('ERR_INVALID_HEADER', `Invalid header name: ${name}`);
    if (BAD_VALUE.test(value))
      return failure('ERR_INVALID_HEADER', `Invalid value in header ${name}`);
    if (!CLIENT_OWN.has(name.toLowerCase())) head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

/**
 * A chunk-size line's size: hex digits (at most 12), optional spaces or tabs, optional
 * extensions after a semicolon. -1 when the line is not one.
 */
function chunkSize(line: string): number {
  let size = 0;
  let i = 0;
  for (; i < line.length && i < 13; i++) {
    const c = line.charCodeAt(i);
    const digit =
      c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (digit < 0) break;
    size = size * 16 + digit;
  }
  if (i === 0 || i > 12) return -1;
  while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
  return i === line.length || line[i] === ';' ? size : -1;
}

/** One request: what it sends, where its response goes, how far its reading got. */
class Exchange {
  connection: Connection | undefined;
  settled = false;
  readonly timer: NodeJS.Timeout;

  constructor(
    readonly text: string,
    readonly cap: number,
    timeoutMs: number,
    private readonly resolve: (r: Http1Response) => void,
    private readonly reject: (e: Error) => void,
    onTimeout: (x: Exchange) => void,
  ) {
    this.timer = setTimeout(() => onTimeout(this), Math.max(0, timeoutMs));
  }

  succeed(response: Http1Response): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.resolve(response);
  }

  fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.reject(error);
  }
}

type Framing = 'length' | 'chunked' | 'close' | 'none';
type ChunkState = 'size' | 'data' | 'data-end' | 'trailer';

/** A connection to an origin, and the reading of the response to its current exchange. */
class Connection {
  exchange: Exchange | undefined;
  /** When it last went idle (performance.now()), and for how long it may stay so. */
  idleSince = 0;
  idleMs: number;
  /** Bytes not yet parsed: part of a head, of a chunk-size line or of a trailer. */
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** The last three bytes held, where a head's blank line may begin. */
  private tail = NOTHING;
  private inHead = true;
  private status = 0;
  private headers: ResponseHeaders = {};
  private reuse = true;
  private framing: Framing = 'none';
  /** Body bytes still to come (length framing), or of the current chunk. */
  private remaining = 0;
  private chunk: ChunkState = 'size';
  private body: Buffer[] = [];
  private kept = 0;
  /** The response just ended; onData gives the connection back or closes it. */
  private finished = false;
  closed = false;

  constructor(
    readonly socket: Socket,
    private readonly pool: OriginPool,
  ) {
    this.idleMs = pool.keepAliveMs;
    socket.setNoDelay(true);
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('error', (error: Error) => this.onClose(error));
    socket.on('close', () => this.onClose(undefined));
    socket.on('end', () => this.onEnd());
  }

  start(exchange: Exchange): void {
    this.exchange = exchange;
    exchange.connection = this;
    this.inHead = true;
    this.dropHeld();
    this.headers = {};
    this.body = [];
    this.kept = 0;
    this.socket.write(exchange.text);
  }

  /** Whether it has been idle for as long as it may be. */
  stale(now: number): boolean {
    return now - this.idleSince >= this.idleMs;
  }

  destroy(error?: Error): void {
    this.socket.destroy();
    this.onClose(error);
  }

  private onEnd(): void {
    if (this.exchange && !this.inHead && this.framing === 'close') this.finish();
    this.finished = false;
    this.destroy();
  }

  private onClose(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.socket.destroyed) this.socket.destroy();
    const exchange = this.exchange;
    this.exchange = undefined;
    exchange?.fail(
      error ?? failure('ECONNRESET', 'The target closed the connection before a whole response'),
    );
    this.pool.dropped(this);
  }

  private bad(message: string): void {
    const exchange = this.exchange;
    this.exchange = undefined;
    exchange?.fail(failure('ERR_BAD_RESPONSE', message));
    this.destroy();
  }

  private onData(data: Buffer): void {
    if (!this.exchange) {
      // nothing was asked: a server that talks out of turn is not one to reuse
      this.destroy();
      return;
    }
    let buf = data;
    if (this.parts.length > 0) {
      // A head still coming in pieces stays apart until its end arrives, so a target
      // that sends it a byte at a time costs one copy, not one per byte.
      if (this.inHead && !this.headEnds(data)) {
        this.hold(data);
        if (this.partBytes > MAX_HEAD_BYTES) this.bad('The response headers are too large');
        return;
      }
      buf = Buffer.concat([...this.parts, data]);
      this.dropHeld();
    }
    while (this.exchange && buf.length > 0) {
      if (this.inHead) {
        const end = buf.indexOf(CRLF_CRLF);
        if (end < 0) {
          if (buf.length > MAX_HEAD_BYTES) return this.bad('The response headers are too large');
          this.hold(buf);
          return;
        }
        if (end > MAX_HEAD_BYTES) return this.bad('The response headers are too large');
        const error = this.readHead(buf.toString('latin1', 0, end));
        if (error) return this.bad(error);
        buf = buf.subarray(end + 4);
        if (this.inHead) continue; // a 1xx: the final response follows
        if (this.framing === 'none' || (this.framing === 'length' && this.remaining === 0)) {
          this.finish();
          break;
        }
        continue;
      }
      buf = this.framing === 'chunked' ? this.readChunked(buf) : this.readBody(buf);
    }
    if (!this.finished) return;
    this.finished = false;
    // bytes after the response were never asked for: such a server is not one to reuse
    if (this.reuse && buf.length === 0 && !this.closed) this.pool.release(this);
    else this.destroy();
  }

  /** Keeps bytes not parsed yet (part of a head or of a chunk line) for the next read. */
  private hold(bytes: Buffer): void {
    this.parts.push(bytes);
    this.partBytes += bytes.length;
    this.tail = Buffer.concat([this.tail, bytes.subarray(-3)]).subarray(-3);
  }

  /** Forgets what was held: it has been parsed, or a new exchange begins. */
  private dropHeld(): void {
    this.parts = [];
    this.partBytes = 0;
    this.tail = NOTHING;
  }

  /** Whether the head's blank line ends in `data`, or across its seam with what came before. */
  private headEnds(data: Buffer): boolean {
    if (data.indexOf(CRLF_CRLF) >= 0) return true;
    return Buffer.concat([this.tail, data.subarray(0, 3)]).indexOf(CRLF_CRLF) >= 0;
  }

  /** Parses a response head; an error message when it is not one. */
  private readHead(head: string): string | undefined {
    let eol = head.indexOf('\r\n');
    if (eol < 0) eol = head.length;
    const m = STATUS_LINE.exec(head.slice(0, eol));
    if (!m) return 'The response does not start with an HTTP/1.x status line';
    const status = Number(m[2]);
    if (status < 100) return 'The response status is not a valid code';
    if (status < 200) {
      if (status === 101) return 'The target switched protocols unasked';
      return undefined; // informational: stay in the head state
    }
    const headers: ResponseHeaders = {};
    let connection = '';
    let keepAlive = '';
    let coding: string | undefined;
    let length: string | undefined;
    let lengths = 0;
    while (eol < head.length) {
      const start = eol + 2;
      eol = head.indexOf('\r\n', start);
      if (eol < 0) eol = head.length;
      const colon = head.indexOf(':', start);
      if (colon <= start || colon > eol) return 'A response header line is malformed';
      const name = head.slice(start, colon).toLowerCase();
      const value = head.slice(colon + 1, eol).trim();
      const had = headers[name];
      if (had === undefined) headers[name] = value;
      else if (typeof had === 'string') headers[name] = [had, value];
      else had.push(value);
      switch (name) {
        case 'connection':
          connection += `${value.toLowerCase()},`;
          break;
        case 'keep-alive':
          keepAlive += `${value},`;
          break;
        case 'transfer-encoding':
          coding = coding === undefined ? value : `${coding},${value}`;
          break;
        case 'content-length':
          length = value;
          lengths++;
          break;
      }
    }
    this.inHead = false;
    this.status = status;
    this.headers = headers;
    this.reuse = m[1] === '1' ? !connection.includes('close') : connection.includes('keep-alive');
    this.idleMs = this.pool.keepAliveMs;
    if (keepAlive !== '') {
      const hint = /timeout=(\d+)/i.exec(keepAlive);
      if (hint) this.idleMs = Math.min(this.idleMs, (Number(hint[1]) - 1) * 1000);
      if (this.idleMs <= 0) this.reuse = false;
    }
    if (status === 204 || status === 304) this.framing = 'none';
    else if (coding !== undefined) {
      // chunked must be the last coding; anything else runs to the connection's end
      this.framing = /(?:^|,)\s*chunked\s*$/i.test(coding) ? 'chunked' : 'close';
      this.chunk = 'size';
      // a length beside it is ignored, and the connection not trusted with another request
      if (length !== undefined) this.reuse = false;
    } else if (length !== undefined) {
      if (lengths > 1 || !/^\d{1,15}$/.test(length))
        return 'The response Content-Length is not a number';
      this.framing = 'length';
      this.remaining = Number(length);
    } else this.framing = 'close';
    if (this.framing === 'close') this.reuse = false;
    return undefined;
  }

  /** Keeps body bytes up to the cap; past it, the exchange ends and the connection goes. */
  private keep(bytes: Buffer): boolean {
    const room = this.exchange!.cap - this.kept;
    if (bytes.length <= room) {
      if (bytes.length > 0) this.body.push(bytes);
      this.kept += bytes.length;
      return true;
    }
    if (room > 0) this.body.push(bytes.subarray(0, room));
    this.kept += room;
    this.reuse = false;
    this.finish();
    return false;
  }

  private readBody(buf: Buffer): Buffer {
    if (this.framing === 'close') {
      this.keep(buf);
      return buf.subarray(buf.length);
    }
    const take = Math.min(this.remaining, buf.length);
    this.remaining -= take;
    if (!this.keep(buf.subarray(0, take))) return buf.subarray(buf.length);
    if (this.remaining === 0) this.finish();
    return buf.subarray(take);
  }

  private readChunked(buf: Buffer): Buffer {
    while (this.exchange && buf.length > 0) {
      if (this.chunk === 'data') {
        const take = Math.min(this.remaining, buf.length);
        this.remaining -= take;
        if (!this.keep(buf.subarray(0, take))) return buf.subarray(buf.length);
        buf = buf.subarray(take);
        if (this.remaining === 0) this.chunk = 'data-end';
        continue;
      }
      const eol = buf.indexOf(CRLF);
      if (eol < 0) {
        if (buf.length > MAX_LINE_BYTES) {
          this.bad('A chunk line of the response is too long');
          return buf.subarray(buf.length);
        }
        this.hold(buf);
        return buf.subarray(buf.length);
      }
      const line = buf.toString('latin1', 0, eol);
      buf = buf.subarray(eol + 2);
      if (this.chunk === 'data-end') {
        if (line !== '') {
          this.bad('A chunk of the response does not end where its size says');
          return buf.subarray(buf.length);
        }
        this.chunk = 'size';
      } else if (this.chunk === 'size') {
        const size = chunkSize(line);
        if (size < 0) {
          this.bad('A chunk size of the response is malformed');
          return buf.subarray(buf.length);
        }
        this.remaining = size;
        this.chunk = this.remaining === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        this.finish(); // the empty line after the trailers
        return buf;
      }
    }
    return buf;
  }

  /** The response is complete (or capped): hand it over, and the connection back. */
  private finish(): void {
    const exchange = this.exchange;
    if (!exchange) return;
    this.exchange = undefined;
    const body = this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body, this.kept);
    this.body = [];
    exchange.succeed({ status: this.status, headers: this.headers, body });
    this.finished = true;
  }
}

/** The connections to one origin, and the requests waiting for one. */
class OriginPool {
  /** Every open connection, busy or idle. */
  private readonly all = new Set<Connection>();
  /** Idle connections, the most recently used last. */
  private readonly idle: Connection[] = [];
  private readonly waiting: Exchange[] = [];
  /** Closes connections idle for too long; runs only while some are idle. */
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: URL,
    private readonly max: number,
    readonly keepAliveMs: number,
    private readonly lookup: LookupFunction | undefined,
    private readonly ca: string | Buffer | undefined,
    /** Called when its last connection is gone and nothing waits: the agent forgets it. */
    private readonly onEmpty: (pool: OriginPool) => void,
  ) {}

  get size(): number {
    return this.all.size;
  }

  send(exchange: Exchange): void {
    // the most recently used first: the least likely to be near its idle limit
    const now = performance.now();
    const stale: Connection[] = [];
    let connection = this.idle.pop();
    while (connection?.stale(now)) {
      stale.push(connection);
      connection = this.idle.pop();
    }
    if (connection) connection.start(exchange);
    else if (this.all.size < this.max) this.connect().start(exchange);
    else this.waiting.push(exchange);
    // closed once the request has its place, so that the pool is never seen empty here
    for (const old of stale) old.destroy();
  }

  /** A request timed out or was given up on while it waited: it leaves the queue. */
  forget(exchange: Exchange): void {
    const at = this.waiting.indexOf(exchange);
    if (at >= 0) this.waiting.splice(at, 1);
  }

  release(connection: Connection): void {
    const next = this.waiting.shift();
    if (next) return connection.start(next);
    connection.idleSince = performance.now();
    this.idle.push(connection);
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), Math.min(this.keepAliveMs, 1_000));
      this.sweeper.unref();
    }
  }

  dropped(connection: Connection): void {
    this.all.delete(connection);
    const at = this.idle.indexOf(connection);
    if (at >= 0) this.idle.splice(at, 1);
    const next = this.waiting.shift();
    if (next) this.connect().start(next);
    else if (this.all.size === 0) {
      this.stopSweeping();
      this.onEmpty(this);
    }
  }

  close(): void {
    for (const exchange of this.waiting.splice(0))
      exchange.fail(failure('ECONNRESET', 'The client closed'));
    for (const connection of [...this.all])
      connection.destroy(failure('ECONNRESET', 'The client closed'));
    this.stopSweeping();
  }

  private sweep(): void {
    const now = performance.now();
    for (const connection of this.idle.filter((c) => c.stale(now))) connection.destroy();
    if (this.idle.length === 0) this.stopSweeping();
  }

  private stopSweeping(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private connect(): Connection {
    const host = this.url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(this.url.port) || (this.url.protocol === 'https:' ? 443 : 80);
    const socket =
      this.url.protocol === 'https:'
        ? tlsConnect({
            host,
            port,
            ...(isIP(host) ? {} : { servername: host }),
            rejectUnauthorized: true,
            ALPNProtocols: ['http/1.1'],
            ...(this.ca ? { ca: this.ca } : {}),
            ...(this.lookup ? { lookup: this.lookup } : {}),
          })
        : netConnect({ host, port, ...(this.lookup ? { lookup: this.lookup } : {}) });
    const connection = new Connection(socket, this);
    this.all.add(connection);
    return connection;
  }
}

export class Http1Agent {
  private readonly origins = new Map<string, OriginPool>();

  constructor(private readonly options: Http1Options) {}

  post(request: Http1Request): Promise<Http1Response> {
    const { url } = request;
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return Promise.reject(failure('ERR_INVALID_URL', `Cannot POST to a ${url.protocol} URL`));
    const head = requestHead(url, request.headers, Buffer.byteLength(request.body));
    if (head instanceof Error) return Promise.reject(head);
    let pool = this.origins.get(url.origin);
    if (!pool) {
      pool = new OriginPool(
        url,
        this.options.connectionsPerOrigin,
        this.options.keepAliveMs,
        this.options.lookup,
        this.options.ca,
        // a service that has sent to many origins keeps pools only for those still open
        (empty) => {
          if (this.origins.get(url.origin) === empty) this.origins.delete(url.origin);
        },
      );
      this.origins.set(url.origin, pool);
    }
    const origin = pool;
    return new Promise<Http1Response>((resolve, reject) => {
      origin.send(
        new Exchange(head + request.body, request.cap, request.timeoutMs, resolve, reject, (x) => {
          const connection = x.connection;
          x.fail(timeoutError());
          if (connection) connection.destroy();
          else origin.forget(x);
        }),
      );
    });
  }

  /** Open connections (idle and busy) to an origin such as `http://127.0.0.1:8080`. */
  connections(origin: string): number {
    return this.origins.get(origin)?.size ?? 0;
  }

  /** Origins with a connection open or a request waiting for one. */
  get originCount(): number {
    return this.origins.size;
  }

  /** Closes every connection; requests in flight fail. */
  async close(): Promise<void> {
    for (const pool of this.origins.values()) pool.close();
    this.origins.clear();
  }
}
