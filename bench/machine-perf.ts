/**
 * Where the whole machine's CPU goes while a probe runs: `perf record` of every CPU for a
 * few seconds in the middle of the command, each sample given to a part (the service's
 * processes and threads, PostgreSQL, the receiver, the load generator, idle) and, within
 * it, to a kind of work, the kernel's included. Only samples of a thread on a core count,
 * so a thread waiting its turn for one costs nothing here, where V8's own profiler
 * (`--cpu-prof`) samples on a clock and gives that wait to whatever the thread resumes:
 * on this 2-core machine it put 19-22% of the API and worker processes' busy samples in
 * socket writes (`writev`), where the writer was preempted by the process it had just
 * woken, while `strace -c` counted about 100 such writes a second of 24 µs each.
 * Needs Linux's `perf` and the right to profile every process (root, or
 * kernel.perf_event_paranoid <= 0).
 *
 *   node --import tsx bench/machine-perf.ts [delay s] [record s] -- <command...>
 *   node --import tsx bench/machine-perf.ts 6 5 -- node --import tsx bench/publish-probe.ts 14 all
 *   PROBE_DB=pglite node --import tsx bench/machine-perf.ts 14 5 -- node --import tsx bench/publish-probe.ts 16 all
 */
import { readFileSync } from 'node:fs';
import { recordSamples, sleep, startProfiled, type Sample } from './perf.js';
import { eachProcess } from './processes.js';

const { args, child, exited } = startProfiled(
  'machine-perf.ts [delay s] [record s] -- <command...>',
);
const [delay = 6, seconds = 5] = args;

/** A process's part, from its command line (read while it runs). */
function partOf(pid: number, probePid: number): string {
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  if (pid === probePid) return 'load generator (the probe)';
  if (cmdline.startsWith('postgres')) return 'PostgreSQL';
  if (cmdline.includes('receiver')) return 'receiver';
  if (cmdline.includes('main.js serve'))
    return cmdline.includes('--role worker') ? 'service: worker process' : 'service: API process';
  return 'other';
}

/** The kind of work of one sample, from its stack (leaf first). */
function kindOf(frames: Sample['frames']): string {
  const has = (re: RegExp) => frames.some((f) => re.test(f.sym));
  const leaf = frames[0] ?? { sym: '', dso: '' };
  if (leaf.dso.includes('kernel')) {
    if (has(/asm_exc_page_fault/)) return 'kernel: page faults';
    if (has(/tcp_sendmsg|__sys_sendto|sock_write_iter/))
      return 'kernel: socket writes (on loopback, the receiving side too)';
    if (has(/tcp_recvmsg|sock_read_iter|__sys_recvfrom/)) return 'kernel: socket reads';
    if (has(/do_epoll_wait|do_select|do_sys_poll/)) return 'kernel: waiting for events';
    if (has(/fdatasync|fsync|vfs_write|vfs_read|ksys_pwrite|ksys_pread/))
      return 'kernel: file reads, writes and syncs';
    if (has(/__x64_sys_|do_syscall_64/)) return 'kernel: other system calls';
    return 'kernel: interrupts and scheduling';
  }
  if (has(/PlatformWorkerThread/)) return "V8's helper threads (optimizing compiler, GC)";
  if (has(/v8::internal::(Heap::|Scavenger|MarkCompact|Sweeper|MinorMark|ConcurrentMarking)/))
    return 'garbage collection';
  if (leaf.dso.includes('postgres')) return 'PostgreSQL code';
  if (/perf-\d+\.map|\[JIT\]|\/\/anon|memfd/.test(leaf.dso) || leaf.sym === '[unknown]')
    return 'JavaScript (JIT-compiled) and WebAssembly';
  if (leaf.sym.startsWith('Builtins_')) return "V8's builtins (property access, calls, ...)";
  if (/libc\.so|libstdc\+\+/.test(leaf.dso)) return 'libc (memcpy, malloc, ...)';
  if (/sha256|sha1|HMAC|EVP_|aesni/i.test(leaf.sym)) return 'crypto (hashing, HMAC)';
  if (/llhttp/.test(leaf.sym)) return 'HTTP parsing (llhttp)';
  if (/^(node::|uv_|uv__)/.test(leaf.sym)) return 'Node and libuv';
  if (/^v8::/.test(leaf.sym)) return "V8's runtime (JSON, strings, objects, ...)";
  return 'other';
}

await sleep(delay);
// the parts are read from /proc half way, while the processes still run
const parts = new Map<number, string>();
const samples = await recordSamples(['-a', '-F', '499'], seconds, () =>
  eachProcess((pid) => parts.set(pid, partOf(pid, child.pid!))),
);
// per part, per kind: sample counts
const byPart = new Map<string, Map<string, number>>();
for (const { comm, pid, frames } of samples) {
  const part = parts.get(pid) ?? 'other';
  // a service's worker threads: PGlite's database thread (WebAssembly runs as JIT code)
  const thread = frames.some((f) => f.sym.startsWith('node::worker::Worker::Run'))
    ? ', its worker threads (the database on PGlite)'
    : '';
  const [name, kind] =
    comm === 'swapper'
      ? ['idle', 'idle']
      : [part.startsWith('service') ? part + thread : part, kindOf(frames)];
  const kinds = byPart.get(name) ?? new Map<string, number>();
  kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  byPart.set(name, kinds);
}
const total = samples.length;
const pct = (n: number) => `${((100 * n) / total).toFixed(1).padStart(5)}%`;
process.stdout.write(
  `\nThe machine's CPU, ${total} samples over ${seconds} s on every core ` +
    '(shares of all of it; a part, then its kinds of work)\n',
);
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
for (const [part, kinds] of [...byPart].sort((a, b) => sum(b[1]) - sum(a[1]))) {
  process.stdout.write(`${pct(sum(kinds))} ${part}\n`);
  if (part === 'idle') continue;
  for (const [kind, n] of [...kinds].sort((a, b) => b[1] - a[1]))
    if ((100 * n) / total >= 0.3) process.stdout.write(`    ${pct(n)} ${kind}\n`);
}
process.exit(await exited);
