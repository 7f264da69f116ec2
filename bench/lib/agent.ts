// Running `logferry agent` for the end-to-end scenarios: the CLI entry (built or from src/), the
// agent's flags, and a long-running measured child (also used for Fluent Bit). The fake Kubernetes
// API is in bench-kube.ts, /proc readings in proc.ts, delivery checks in delivery.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AGENT_OPTIONS } from '../../src/config/options.ts';
import { NODE_NAME } from './bench-kube.ts';
import { type ChildUsage, preload } from './child.ts';
import type { BenchOptions } from './types.ts';
import { CACHE_DIR } from './workload.ts';

/** The CLI script: --cli's (absolute), or bin/logferry.js relative to the root (needs dist/). */
export function cliEntry(opts: BenchOptions): string {
  if (opts.cli !== undefined) {
    const path = resolve(opts.cli);
    if (!existsSync(path)) throw new Error(`--cli ${opts.cli}: no such file`);
    return path;
  }
  if (!existsSync(join(opts.root, 'dist/cli/main.js'))) {
    throw new Error(
      'dist/cli/main.js is missing: run `npm run build` (npm run bench does it first), or pass --cli bench/lib/cli-source.ts',
    );
  }
  return 'bin/logferry.js';
}

/** Whether `logferry agent` has this flag (read from src/config/options.ts, the flags' one source). */
export function agentHasFlag(flag: string): boolean {
  return AGENT_OPTIONS.some((o) => o.flag === flag);
}

/** An agent option's default, from src/config/options.ts. */
export function agentDefault(key: string): unknown {
  const spec = AGENT_OPTIONS.find((o) => o.key === key);
  if (spec === undefined) throw new Error(`src/config/options.ts has no option ${key}`);
  return spec.default;
}

export interface AgentTarget {
  podsDir: string;
  stateDir: string;
  kubeUrl: string;
  esUrl: string;
}

/** `agent` and its flags: the given pods dir, state dir, fake API and fake Elasticsearch; defaults otherwise. */
export function agentArgs(entry: string, t: AgentTarget, extra: string[] = []): string[] {
  return [
    entry,
    'agent',
    '--pods-dir',
    t.podsDir,
    '--state-dir',
    t.stateDir,
    '--node-name',
    NODE_NAME,
    '--kube-api',
    t.kubeUrl,
    '--es',
    t.esUrl,
    '--http-addr',
    '127.0.0.1:0',
    '--log-format',
    'json',
    ...extra,
  ];
}

/** A fresh state directory (no checkpoints: the agent reads every file from its start). */
export async function stateDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'logferry-bench-state-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

// --- a long-running measured agent ------------------------------------------------------------------

export interface AgentExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  wallSeconds: number;
  /** what the rusage preload wrote at exit (undefined when the process died without exiting cleanly) */
  usage: ChildUsage | undefined;
}

export interface RunningAgent {
  readonly child: ChildProcess;
  readonly pid: number;
  /** the last 256 KiB of its log (stderr: logferry's JSON lines; and stdout if logged) */
  stderr(): string;
  /** set once the process has exited */
  readonly exit: AgentExit | undefined;
  readonly exited: Promise<AgentExit>;
  /** SIGTERM, then the exit */
  stop(): Promise<AgentExit>;
}

let usageFiles = 0;

/** Starts node with the rusage preload; stdout to /dev/null (the agent writes documents to Elasticsearch). */
export function startAgent(root: string, args: string[], nodeFlags: string[] = []): RunningAgent {
  const usageFile = join(CACHE_DIR, `rusage-agent-${process.pid}-${usageFiles++}.json`);
  // at defaults: no heap flags or malloc variables, the agent gives itself those (src/cli/runtime.ts)
  return startProcess(process.execPath, [...nodeFlags, '--import', preload(), ...args], {
    cwd: root,
    env: { ...process.env, LOGFERRY_BENCH_RUSAGE: usageFile },
    usageFile,
  });
}

/**
 * Starts a long-running measured process (logferry, or a reference agent such as Fluent Bit):
 * stderr, and stdout when `logStdout` (Fluent Bit logs there), kept for error messages; `usageFile`
 * is what the rusage preload writes at exit, when the process has it.
 */
export function startProcess(
  command: string,
  args: string[],
  o: { cwd: string; env: NodeJS.ProcessEnv; usageFile?: string; logStdout?: boolean },
): RunningAgent {
  const t0 = process.hrtime.bigint();
  const child = spawn(command, args, {
    cwd: o.cwd,
    env: o.env,
    stdio: ['ignore', o.logStdout === true ? 'pipe' : 'ignore', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${command} ${args.join(' ')}`);
  let stderr = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (s: string) => {
      stderr = (stderr + s).slice(-262144);
    });
  }
  let exit: AgentExit | undefined;
  const exited = new Promise<AgentExit>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      let usage: ChildUsage | undefined;
      if (o.usageFile !== undefined) {
        try {
          usage = JSON.parse(readFileSync(o.usageFile, 'utf8')) as ChildUsage;
        } catch {
          usage = undefined;
        }
        void rm(o.usageFile, { force: true });
      }
      exit = { code, signal, wallSeconds: Number(process.hrtime.bigint() - t0) / 1e9, usage };
      resolve(exit);
    });
  });
  return {
    child,
    pid: child.pid,
    stderr: () => stderr,
    get exit() {
      return exit;
    },
    exited,
    stop() {
      if (exit === undefined) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** The agent's JSON log lines whose message starts with `prefix`. */
export function agentLogs(stderr: string, prefix: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (typeof entry.message === 'string' && entry.message.startsWith(prefix)) out.push(entry);
    } catch {
      // a cut line at the start of the kept tail
    }
  }
  return out;
}

/**
 * Resolves with the ms waited once `done()` is true (checked every 50 ms); rejects after `timeoutMs`
 * or when the agent exits first.
 */
export async function waitUntil(
  done: () => boolean,
  timeoutMs: number,
  what: string,
  agent: RunningAgent,
): Promise<number> {
  const t0 = performance.now();
  while (!done()) {
    if (agent.exit !== undefined) {
      throw new Error(
        `${what}: the agent exited first (code ${agent.exit.code}, signal ${agent.exit.signal})\n--- stderr (last 4 KiB) ---\n${agent.stderr().slice(-4096)}`,
      );
    }
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(
        `${what}: not after ${timeoutMs / 1000} s\n--- agent stderr (last 4 KiB) ---\n${agent.stderr().slice(-4096)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return performance.now() - t0;
}

/** Kills the agent if it has not exited after `ms` (a hung --once run must not hang the bench). */
export function watchdog(
  agent: RunningAgent,
  ms: number,
  what: string,
): { clear: () => void; fired: () => boolean } {
  let fired = false;
  const timer = setTimeout(() => {
    fired = true;
    process.stderr.write(`${what}: the agent has not exited after ${ms / 1000} s; killing it\n`);
    agent.child.kill('SIGKILL');
  }, ms);
  return { clear: () => clearTimeout(timer), fired: () => fired };
}

/** The agent's health/status server, from its "agent started" log line. */
export async function agentHttp(agent: RunningAgent, timeoutMs = 30_000): Promise<string> {
  let url: string | undefined;
  await waitUntil(
    () => {
      const http = agentLogs(agent.stderr(), 'logferry ').find((e) => typeof e.http === 'string')?.http;
      url = typeof http === 'string' ? http : undefined;
      return url !== undefined;
    },
    timeoutMs,
    'agent start',
    agent,
  );
  return url!;
}

/** `/status`'s buffer figures, or undefined when the server does not answer. */
export async function bufferStatus(
  httpUrl: string,
): Promise<{ waitingBytes: number; limitBytes: number } | undefined> {
  try {
    const res = await fetch(`${httpUrl}/status`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { buffer?: { waitingBytes?: unknown; limitBytes?: unknown } };
    const b = body.buffer;
    if (typeof b?.waitingBytes !== 'number' || typeof b.limitBytes !== 'number') return undefined;
    return { waitingBytes: b.waitingBytes, limitBytes: b.limitBytes };
  } catch {
    return undefined;
  }
}
