/**
 * The benchmark's receiver, run as its own process so that it costs the service and
 * the ceilings the same. It answers 200 at once, except under /hang/, where it never
 * answers (the sender's timeout ends the request, or POST /unhang drops it), and under
 * /slow/, where it answers after 5 s (not counted as a delivery). It notes
 * when each payload with a `seq` arrived, so publish-to-arrival latency is measured
 * where the event lands.
 */
import { createServer, type ServerResponse } from 'node:http';

const port = Number(process.argv[2] ?? 0);
let count = 0;
let hung = 0;
let slow = 0;
/** Requests under /hang/ still open: the sender has not given up on them yet. */
const hanging = new Set<ServerResponse>();
const ids = new Set<string>();
const arrivals = new Map<number, number>();
const now = () => performance.timeOrigin + performance.now();

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ count, distinct: ids.size, hung, hanging: hanging.size, slow }));
    return;
  }
  if (req.method === 'GET' && req.url === '/arrivals') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(Object.fromEntries(arrivals)));
    return;
  }
  if (req.method === 'POST' && req.url === '/unhang') {
    // drops the connections of the requests left hanging, as a target that went away would
    for (const held of hanging) held.destroy();
    res.end('ok');
    return;
  }
  if (req.method === 'POST' && req.url === '/reset') {
    count = 0;
    hung = 0;
    ids.clear();
    arrivals.clear();
    res.end('ok');
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.url?.startsWith('/hang/')) {
      hung++;
      hanging.add(res);
      res.once('close', () => hanging.delete(res));
      return; // never answered
    }
    if (req.url?.startsWith('/slow/')) {
      slow++;
      setTimeout(() => res.end('ok'), 5_000); // answered, and late: not counted
      return;
    }
    count++;
    const id = req.headers['webhook-id'];
    if (typeof id === 'string') ids.add(id);
    if (req.url?.startsWith('/seq/')) {
      try {
        const seq = (
          JSON.parse(Buffer.concat(chunks).toString('utf8')) as { payload?: { seq?: number } }
        ).payload?.seq;
        if (typeof seq === 'number') arrivals.set(seq, now());
      } catch {
        /* not a payload of ours */
      }
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(`${address.port}\n`);
});
