import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const normalise = (uuid: string) => uuid.replaceAll('-', '').toLowerCase();

export interface Arrival {
  path: string;
  id: string;
  body: string;
}

/**
 * A receiver for runs of thousands of deliveries: it counts requests per `webhook-id`
 * and watches overlap, i.e. a request arriving while another with the same webhook-id is
 * still being answered (two workers attempting one event at the same time).
 */
export class TallyReceiver {
  requests = 0;
  readonly perId = new Map<string, number>();
  readonly overlaps: string[] = [];
  readonly arrivals: Arrival[] = [];
  /** Requests whose connection the sender closed before they were answered. */
  abandoned = 0;
  private readonly inFlight = new Set<string>();
  /** Milliseconds to wait before answering, and the status to answer with, by path. */
  answer: (path: string) => { delayMs: number; status: number } = () => ({
    delayMs: 0,
    status: 200,
  });

  private constructor(private readonly server: Server) {}

  static async start(): Promise<TallyReceiver> {
    const holder: { r?: TallyReceiver } = {};
    const server = createServer((req, res) => {
      const r = holder.r!;
      const id = normalise(String(req.headers['webhook-id'] ?? ''));
      r.requests++;
      r.perId.set(id, (r.perId.get(id) ?? 0) + 1);
      if (r.inFlight.has(id)) r.overlaps.push(id);
      r.inFlight.add(id);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '';
        r.arrivals.push({ path, id, body: Buffer.concat(chunks).toString('utf8') });
        const { delayMs, status } = r.answer(path);
        const send = () => {
          r.inFlight.delete(id);
          if (!res.destroyed) res.writeHead(status).end('ok');
        };
        // Unref'd: an answer still pending must not keep the test process alive.
        if (delayMs > 0) setTimeout(send, delayMs).unref();
        else send();
      });
      // A sender that gave up (timeout, killed process) ends the attempt too.
      res.on('close', () => {
        if (!res.writableFinished) r.abandoned++;
        r.inFlight.delete(id);
      });
    });
    const r = new TallyReceiver(server);
    holder.r = r;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return r;
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  get distinct(): number {
    return this.perId.size;
  }

  get duplicates(): number {
    return this.requests - this.distinct;
  }

  /** The uuids (with or without dashes) not received at all. */
  missing(uuids: Iterable<string>): string[] {
    return [...uuids].filter((u) => !this.perId.has(normalise(u)));
  }

  /** For failure messages: where a run stands. */
  summary(): string {
    return `${this.requests} requests, ${this.distinct} distinct webhook-ids`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
