import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

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

/** CPU time a process has used, in microseconds (Linux's /proc, in USER_HZ = 100 ticks/s). */
export function cpuMicros(pid: number): number {
  return statMicros(`/proc/${pid}/stat`);
}

/** CPU time one thread of a process has used, in microseconds. */
export function threadCpuMicros(pid: number, tid: number): number {
  return statMicros(`/proc/${pid}/task/${tid}/stat`);
}

function statMicros(path: string): number {
  const stat = readFileSync(path, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000; // utime + stime
}

/**
 * CPU used so far, in µs, by part: every PostgreSQL process on the machine, the
 * service's main process, its worker processes, and the receiver when there is one (a
 * process that ends takes its share with it).
 */
export function cpuByPart(servicePid: number, receiverPid?: number): Map<string, number> {
  const service = serviceProcesses(servicePid);
  const parts = new Map<string, number>();
  const add = (part: string, pid: number) =>
    parts.set(part, (parts.get(part) ?? 0) + cpuMicros(pid));
  eachProcess((pid) => {
    if (isPostgres(pid)) add('PostgreSQL', pid);
  });
  add('service (main process)', servicePid);
  for (const pid of service.slice(1)) add('worker processes', pid);
  if (receiverPid !== undefined) add('receiver', receiverPid);
  return parts;
}

/** The CPU each part used between two readings of cpuByPart, per event, as text. */
export function perEvent(
  before: Map<string, number>,
  after: Map<string, number>,
  events: number,
): string {
  return [...after]
    .map(([part, us]) => `${part} ${((us - (before.get(part) ?? 0)) / events).toFixed(1)}`)
    .join(', ');
}

/** A PostgreSQL server process (the postmaster, a backend, the WAL writer, ...). */
export function isPostgres(pid: number): boolean {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
}

export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** The service's processes: the one we started and the worker processes it started. */
export function serviceProcesses(pid: number): number[] {
  const pids = [pid];
  eachProcess((child) => {
    // the parent pid is the second field after the parenthesised command name
    const stat = readFileSync(`/proc/${child}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) pids.push(child);
  });
  return pids;
}

/** Peak RSS of the largest service process, and of all of them together. */
export class RssPeak {
  largest = 0;
  total = 0;
  sample(pid: number): void {
    const each = serviceProcesses(pid).map((p) => rssMb(p) || 0);
    this.largest = Math.max(this.largest, ...each);
    this.total = Math.max(
      this.total,
      each.reduce((a, b) => a + b, 0),
    );
  }
}
