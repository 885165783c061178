import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/**
 * The real binary, as a user runs it, for the tests of its commands and processes on
 * the embedded database (DATABASE_URL emptied).
 */
export const BIN = new URL('../../bin/oms-hooks', import.meta.url).pathname;

export function cli(args: string[], env: Record<string, string> = {}) {
  const res = spawnSync(BIN, args, {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: '', ...env },
    timeout: 60_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

export interface Server {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<number | null>;
}

export async function startServer(
  args: string[],
  env: Record<string, string>,
  port: number,
): Promise<Server> {
  const child = spawn(BIN, ['serve', '--port', String(port), ...args], {
    env: { ...process.env, DATABASE_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Ready when /healthz answers; fail fast if the process dies first.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited early:\n${out}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`serve did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    child,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A request to the API of a service on 127.0.0.1 with a token; the body as parsed JSON. */
export const api = async (
  port: number,
  token: string,
  method: string,
  path: string,
  body?: unknown,
) => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { authorization: `Token ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as unknown) : null,
  };
};
