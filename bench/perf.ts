/**
 * What the two `perf` tools (pg-perf.ts, machine-perf.ts) share: the command they
 * profile, started at once, and a recording of a few seconds in its middle, returned as
 * `perf script` text. Needs Linux's `perf`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeArgs } from './probe.js';

/**
 * The tool's own numeric arguments (before `--`) and the command after it, started now;
 * `exited` resolves to its exit code. Prints `usage` and exits when there is no command.
 */
export function startProfiled(usage: string): {
  args: number[];
  child: ChildProcess;
  exited: Promise<number>;
} {
  const { args, nodeFlags: command } = probeArgs();
  if (command.length === 0) {
    process.stderr.write(`usage: ${usage}\n`);
    process.exit(2);
  }
  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit' });
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  return { args: args.map(Number), child, exited };
}

export const sleep = (seconds: number) =>
  new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/**
 * `perf record -g` with `recordArgs` (which processes, how often) for `seconds`, then
 * its samples. `midway` runs half way through the recording, while the profiled
 * processes still run.
 */
export async function recordSamples(
  recordArgs: string[],
  seconds: number,
  midway?: () => void,
): Promise<Sample[]> {
  const dir = mkdtempSync(join(tmpdir(), 'oms-perf-'));
  const data = join(dir, 'perf.data');
  try {
    const recording = spawn(
      'perf',
      ['record', '-q', '-g', ...recordArgs, '-o', data, '--', 'sleep', `${seconds}`],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const recorded = new Promise<number>((resolve) =>
      recording.on('exit', (code) => resolve(code ?? 1)),
    );
    await sleep(seconds / 2);
    midway?.();
    const code = await recorded;
    if (code !== 0) throw new Error(`perf record exited with ${code}`);
    const script = execFileSync('perf', ['script', '-i', data, '-F', 'comm,pid,ip,sym,dso'], {
      encoding: 'utf8',
      maxBuffer: 1 << 30,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return parseSamples(script);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One sample: who ran, and its stack, leaf first, symbols without offsets. */
export interface Sample {
  comm: string;
  pid: number;
  frames: { sym: string; dso: string }[];
}

/**
 * The samples as `perf script -F comm,pid,ip,sym,dso` prints them: a header line, one
 * frame a line, leaf first, and a blank line between samples.
 */
function parseSamples(script: string): Sample[] {
  const samples: Sample[] = [];
  for (const block of script.split(/\n\s*\n/)) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) continue;
    const [comm = '', pid = ''] = lines[0]!.trim().split(/\s+/);
    const frames = lines.slice(1).map((l) => {
      const m = /^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$/.exec(l);
      return { sym: (m?.[1] ?? '[unknown]').replace(/\+0x[0-9a-f]+$/, ''), dso: m?.[2] ?? '' };
    });
    samples.push({ comm, pid: Number(pid), frames });
  }
  return samples;
}
