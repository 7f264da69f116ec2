import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fmt, fmtRange, roundSummary, type Summary, summarize } from './stats.ts';

// A full collection before each timed pass, so one pass does not pay for the garbage of the one
// before. `--expose-gc` is turned on at run time so the runner needs no node flags.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export interface PassTimes {
  /** wall-clock nanoseconds per pass */
  wallNs: Summary;
  /** process CPU (user + system, all threads) nanoseconds per pass */
  cpuNs: Summary;
  /** folded results of the passes, printed so the work cannot be optimized away */
  checksum: number;
}

/**
 * Runs `pass` once untimed over `warmup` (JIT warm-up on a slice of the input), then `reps` times
 * timed. `pass` returns a number derived from its results.
 */
export function timePasses(pass: () => number, warmup: () => number, reps: number): PassTimes {
  let checksum = warmup();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < reps; r++) {
    gc();
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    checksum = (checksum + pass()) % 2 ** 40;
    const t1 = process.hrtime.bigint();
    const c1 = process.cpuUsage(c0);
    wall.push(Number(t1 - t0));
    cpu.push((c1.user + c1.system) * 1000);
  }
  return { wallNs: summarize(wall), cpuNs: summarize(cpu), checksum };
}

/** ns per item and items per second from per-pass times. */
export function perItem(
  t: PassTimes,
  items: number,
): { nsPerItem: Summary; itemsPerSecond: Summary; cpuNsPerItem: Summary } {
  return {
    nsPerItem: summarize(t.wallNs.values.map((ns) => ns / items)),
    itemsPerSecond: summarize(t.wallNs.values.map((ns) => items / (ns / 1e9))),
    cpuNsPerItem: summarize(t.cpuNs.values.map((ns) => ns / items)),
  };
}

/** One measured piece of a micro-benchmark scenario, reported per input line. */
export interface MicroRow {
  name: string;
  times: PassTimes;
  /** input lines the pass covered (the whole workload, also for per-record work) */
  lines: number;
  /** input bytes the pass covered */
  bytes: number;
}

export const MICRO_COLUMNS = ['bench', 'ns/line (median, min–max)', 'lines/s', 'CPU ns/line', 'MB/s'];

export function microTableRow(r: MicroRow): string[] {
  const p = perItem(r.times, r.lines);
  const mbps = r.bytes / 1e6 / (r.times.wallNs.median / 1e9);
  return [r.name, fmtRange(p.nsPerItem), fmt(p.itemsPerSecond.median), fmt(p.cpuNsPerItem.median), fmt(mbps)];
}

export function microFigures(r: MicroRow): Record<string, unknown> {
  const p = perItem(r.times, r.lines);
  return {
    nsPerLine: roundSummary(p.nsPerItem),
    linesPerSecond: roundSummary(p.itemsPerSecond),
    cpuNsPerLine: roundSummary(p.cpuNsPerItem),
    mbPerSecond: Number((r.bytes / 1e6 / (r.times.wallNs.median / 1e9)).toPrecision(4)),
  };
}
