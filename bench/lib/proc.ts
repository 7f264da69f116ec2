// A process's CPU time and memory from /proc while it runs: the same reading for logferry and for a
// reference agent that reports nothing about itself (Fluent Bit).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clkTck: number | undefined;

function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export interface ProcSample {
  /** performance.now() when read */
  atMs: number;
  /** user + system CPU seconds of every thread so far (clock-tick resolution, usually 10 ms) */
  cpuSeconds: number;
  /** resident set now, and its peak so far (VmHWM), KiB */
  rssKiB: number;
  hwmKiB: number;
}

/** The process's CPU time and RSS from /proc; undefined once it is gone. */
export function procSample(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // fields after the command name, which is in parentheses and may hold spaces
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name (0-based 11, 12)
    const ticks = Number(f[11]) + Number(f[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return {
      atMs: performance.now(),
      cpuSeconds: ticks / ticksPerSecond(),
      rssKiB: kib('VmRSS'),
      hwmKiB: kib('VmHWM'),
    };
  } catch {
    return undefined;
  }
}

/** Polls a process's RSS; `peakSince(mark)` is the highest RSS seen since a mark. */
export class RssSampler {
  readonly samples: ProcSample[] = [];
  readonly #timer: NodeJS.Timeout;
  constructor(pid: number, everyMs = 100) {
    this.#timer = setInterval(() => {
      const s = procSample(pid);
      if (s !== undefined) this.samples.push(s);
    }, everyMs);
  }
  /** highest VmRSS sampled in [fromMs, toMs) (performance.now() times), KiB */
  peakKiB(fromMs = 0, toMs = Number.POSITIVE_INFINITY): number {
    let peak = 0;
    for (const s of this.samples) if (s.atMs >= fromMs && s.atMs < toMs && s.rssKiB > peak) peak = s.rssKiB;
    return peak;
  }
  stop(): void {
    clearInterval(this.#timer);
  }
}
