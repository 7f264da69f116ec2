import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CACHE_DIR } from './workload.ts';

/** What bench/lib/rusage-reporter.ts writes when the measured process exits. */
export interface ChildUsage {
  /** maxRSS in KiB; userCPUTime and systemCPUTime in µs, for every thread of the process */
  resourceUsage: NodeJS.ResourceUsage;
  uptimeSeconds: number;
  exitCode: number;
  heap: { totalHeapSize: number; usedHeapSize: number; peakMallocedMemory: number; externalMemory: number };
}

export interface MeasuredRun {
  /** spawn to exit, taken by this process: includes Node's start-up */
  wallSeconds: number;
  usage: ChildUsage;
  /** the last 64 KiB the child wrote to stderr */
  stderr: string;
}

export interface ChildSpec {
  /** arguments to node after the preload, e.g. ['bin/logferry.js', 'tail', ...] */
  args: string[];
  cwd: string;
  /** node options placed before the script, e.g. ['--cpu-prof'] */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

let reporterUrl: string | undefined;

/**
 * The preload as a `.mjs` copy. Loading a `.ts` file makes Node load its TypeScript stripper
 * (amaro), which costs the measured process ~60 ms of CPU and ~17 MiB of peak RSS (measured with
 * `node --import <preload> -e ''`); the preload has no type syntax, so its text is valid
 * JavaScript as it is.
 */
export function preload(): string {
  if (reporterUrl !== undefined) return reporterUrl;
  mkdirSync(CACHE_DIR, { recursive: true });
  const target = join(CACHE_DIR, `rusage-reporter-${process.pid}.mjs`);
  writeFileSync(target, readFileSync(new URL('./rusage-reporter.ts', import.meta.url)));
  process.once('exit', () => rmSync(target, { force: true }));
  reporterUrl = pathToFileURL(target).href;
  return reporterUrl;
}

function failure(spec: ChildSpec, code: number | null, signal: NodeJS.Signals | null, stderr: string): Error {
  const how = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
  return new Error(
    `node ${spec.args.join(' ')}: ${how}\n--- stderr (last 4 KiB) ---\n${stderr.slice(-4096)}`,
  );
}

/**
 * Runs node with the rusage preload, stdout to /dev/null, and returns the child's own account of
 * its CPU time and peak RSS. Throws unless it exits 0.
 */
export async function measureChild(spec: ChildSpec): Promise<MeasuredRun> {
  mkdirSync(CACHE_DIR, { recursive: true });
  const usageFile = join(CACHE_DIR, `rusage-${process.pid}-${Date.now()}.json`);
  const devNull = openSync('/dev/null', 'w');
  let stderr = '';
  try {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, ['--import', preload(), ...(spec.nodeArgs ?? []), ...spec.args], {
      cwd: spec.cwd,
      env: { ...(spec.env ?? process.env), LOGFERRY_BENCH_RUSAGE: usageFile },
      stdio: ['ignore', devNull, 'pipe'],
    });
    // piped (stdio[2]), so present
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      stderr = (stderr + s).slice(-65536);
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, s) => resolve([c, s]));
    });
    const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (code !== 0) throw failure(spec, code, signal, stderr);
    if (!existsSync(usageFile))
      throw new Error(`node ${spec.args.join(' ')}: the preload wrote no ${usageFile}`);
    const usage = JSON.parse(readFileSync(usageFile, 'utf8')) as ChildUsage;
    return { wallSeconds, usage, stderr };
  } finally {
    closeSync(devNull);
    rmSync(usageFile, { force: true });
  }
}

/** user + system CPU seconds */
export function cpuSeconds(u: ChildUsage): number {
  return (u.resourceUsage.userCPUTime + u.resourceUsage.systemCPUTime) / 1e6;
}
