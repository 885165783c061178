import { createServer } from 'node:net';

/** A loopback port nothing listens on a moment from now: for "connection refused" and for servers to bind. */
export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
