// Running `logferry agent` for the end-to-end scenarios: the CLI entry (built or from src/), the fake
// Kubernetes API with the workload's pods, the agent's flags, a long-running measured child, and
// its CPU time and RSS read from /proc while it runs.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { AGENT_OPTIONS } from '../../src/config/options.ts';
import { type FakeKubernetes, makePod, startFakeKubernetes } from '../../test/fakes/fake-kubernetes.ts';
import { type ChildUsage, preload } from './child.ts';
import type { CountingEs } from './counting-es.ts';
import type { BenchOptions } from './types.ts';
import { CACHE_DIR, type CriTree } from './workload.ts';

export const NODE_NAME = 'bench-node';

/** As deployed: old space 3 x the default 64 MiB budget + 64 MiB, small young generation. */
export const AGENT_HEAP_FLAGS = ['--max-old-space-size=256', '--max-semi-space-size=2'];

/** As deployed (Dockerfile, k8s/daemonset.yaml): freed Buffer memory returns to the system. */
export const AGENT_MALLOC_ENV = {
  MALLOC_MMAP_THRESHOLD_: '65536',
  MALLOC_TRIM_THRESHOLD_: '1048576',
  MALLOC_ARENA_MAX: '2',
};

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

/** Labels a Deployment's pod typically carries; derived from the pod name so runs are repeatable. */
function podLabels(pod: string, namespace: string): Record<string, string> {
  const parts = pod.split('-');
  const service = parts[0] ?? pod;
  const labels: Record<string, string> = {
    app: service,
    'app.kubernetes.io/name': service,
    'app.kubernetes.io/part-of': namespace,
    'app.kubernetes.io/version': '1.4.2',
    tier: service === 'frontend' ? 'web' : 'backend',
  };
  if (parts.length === 3) labels['pod-template-hash'] = parts[1]!;
  else labels['statefulset.kubernetes.io/pod-name'] = pod;
  return labels;
}

/** A fake Kubernetes API serving the tree's pods, with labels, all on NODE_NAME. */
export async function startBenchKube(tree: CriTree): Promise<FakeKubernetes> {
  const kube = await startFakeKubernetes();
  for (const f of tree.files) {
    const service = f.pod.split('-')[0] ?? f.pod;
    const statefulSet = f.pod.split('-').length === 2;
    const pod: V1Pod = makePod({
      name: f.pod,
      namespace: f.namespace,
      nodeName: NODE_NAME,
      uid: f.uid,
      labels: podLabels(f.pod, f.namespace),
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-21T20:00:00Z' },
      owner: statefulSet
        ? { kind: 'StatefulSet', name: service }
        : { kind: 'ReplicaSet', name: f.pod.split('-').slice(0, 2).join('-') },
      containers: [
        {
          name: f.container,
          image: `registry.example.com/shop/${service}:1.4.2`,
          id: `containerd://${f.uid.replaceAll('-', '')}${f.uid.replaceAll('-', '').slice(0, 32)}`,
        },
      ],
    });
    kube.addPod(pod);
  }
  return kube;
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

// --- /proc ----------------------------------------------------------------------------------------

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
  /** the last 256 KiB of stderr (the agent's JSON log lines) */
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
  const t0 = process.hrtime.bigint();
  // the V8 heap flags the image and the DaemonSet run the agent with (Dockerfile, k8s/daemonset.yaml)
  const child = spawn(process.execPath, [...AGENT_HEAP_FLAGS, ...nodeFlags, '--import', preload(), ...args], {
    cwd: root,
    env: { ...process.env, ...AGENT_MALLOC_ENV, LOGFERRY_BENCH_RUSAGE: usageFile },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start node ${args.join(' ')}`);
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    stderr = (stderr + s).slice(-262144);
  });
  let exit: AgentExit | undefined;
  const exited = new Promise<AgentExit>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      let usage: ChildUsage | undefined;
      try {
        usage = JSON.parse(readFileSync(usageFile, 'utf8')) as ChildUsage;
      } catch {
        usage = undefined;
      }
      void rm(usageFile, { force: true });
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

/** What the tree's files hold in total: the expectations a run is checked against. */
export function treeTotals(tree: CriTree): { records: number; jsonRecords: number; partialRecords: number } {
  let records = 0;
  let jsonRecords = 0;
  let partialRecords = 0;
  for (const f of tree.files) {
    records += f.meta.records;
    jsonRecords += f.meta.jsonRecords;
    partialRecords += f.meta.partialRecords;
  }
  return { records, jsonRecords, partialRecords };
}

/** What reached the counting Elasticsearch, against what the generator wrote. */
export interface Delivery {
  expected: number;
  /** distinct documents stored */
  delivered: number;
  /** documents sent again after they were stored (409s to `create`) */
  duplicated: number;
  /** expected documents that never arrived */
  lost: number;
  /** distinct documents beyond the expected count (a record split in two, say) */
  extra: number;
  /** source lines that were not JSON objects */
  invalid: number;
  /** with a json object, a partial flag, kubernetes labels from the fake API: 0 unless fields were counted */
  json: number;
  partial: number;
  labelled: number;
  /** empty when every record arrived exactly once, with its fields */
  problems: string[];
}

export function delivery(es: CountingEs, tree: CriTree): Delivery {
  const t = treeTotals(tree);
  const s = es.stats;
  const d: Delivery = {
    expected: t.records,
    delivered: es.uniqueIds,
    duplicated: s.duplicates,
    lost: Math.max(0, t.records - es.uniqueIds),
    extra: Math.max(0, es.uniqueIds - t.records),
    invalid: s.invalid,
    json: s.withJson,
    partial: s.withPartial,
    labelled: s.withLabels,
    problems: [],
  };
  const n = (x: number) => x.toLocaleString('en-US');
  if (d.lost > 0) d.problems.push(`${n(d.lost)} lost`);
  if (d.extra > 0) d.problems.push(`${n(d.extra)} more documents than records`);
  if (d.duplicated > 0) d.problems.push(`${n(d.duplicated)} duplicated`);
  if (d.invalid > 0) d.problems.push(`${n(d.invalid)} source lines not JSON objects`);
  if (s.fieldsCounted) {
    if (d.json !== t.jsonRecords) d.problems.push(`${n(d.json)} with json, expected ${n(t.jsonRecords)}`);
    if (d.partial !== t.partialRecords) {
      d.problems.push(`${n(d.partial)} flagged partial, expected ${n(t.partialRecords)}`);
    }
    if (d.labelled !== d.delivered) d.problems.push(`${n(d.delivered - d.labelled)} without pod labels`);
  } else if (s.parsedWithoutLabels > 0) {
    d.problems.push(`${n(s.parsedWithoutLabels)} of ${n(s.parsed)} sampled documents without pod labels`);
  }
  if (s.unexpected.length > 0) {
    d.problems.push(`unexpected requests: ${[...new Set(s.unexpected)].slice(0, 5).join(', ')}`);
  }
  return d;
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
