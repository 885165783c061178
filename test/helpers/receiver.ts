import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as a real receiver saw it on the wire. */
export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface Reply {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
}

/**
 * A real HTTP server on 127.0.0.1 that records every request and answers as told.
 * Tests assert on what arrived here, never on mocks of our own code.
 */
export class Receiver {
  readonly requests: Received[] = [];
  private responder: (req: Received) => Reply = () => ({ status: 200, body: 'ok' });
  private waiters: { count: number; resolve: () => void }[] = [];
  private constructor(private readonly server: Server) {}

  static async start(): Promise<Receiver> {
    const holder: { receiver?: Receiver } = {};
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const received: Received = {
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          at: Date.now(),
        };
        const receiver = holder.receiver!;
        receiver.requests.push(received);
        const reply = receiver.responder(received);
        const send = () => {
          res.writeHead(reply.status ?? 200, reply.headers ?? { 'content-type': 'text/plain' });
          res.end(reply.body ?? '');
          receiver.notify();
        };
        if (reply.delayMs) setTimeout(send, reply.delayMs);
        else send();
      });
    });
    const receiver = new Receiver(server);
    holder.receiver = receiver;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Sets how the receiver answers from now on. */
  respond(fn: (req: Received) => Reply): void {
    this.responder = fn;
  }

  /** Resolves once at least `count` requests have arrived in all (rejects after timeoutMs). */
  waitFor(count: number, timeoutMs = 10_000): Promise<void> {
    if (this.requests.length >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`receiver saw ${this.requests.length} requests, expected ${count}`)),
        timeoutMs,
      );
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  private notify(): void {
    this.waiters = this.waiters.filter((w) => {
      if (this.requests.length >= w.count) w.resolve();
      return this.requests.length < w.count;
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
