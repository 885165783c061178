import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';

const ROOT = new URL('..', import.meta.url).pathname;

/**
 * Starts a node helper of the bench (the receiver, the Fastify ceiling) from the
 * repository's root and resolves once it has printed the port it listens on.
 */
export function startProcess(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+)\n/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
}

/** Calls `visit` with every process's pid; a process gone meanwhile is skipped. */
export function eachProcess(visit: (pid: number) => void): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      visit(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
}
