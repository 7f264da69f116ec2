import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  agentArgs,
  agentHasFlag,
  agentLogs,
  cliEntry,
  startAgent,
  stateDir,
  watchdog,
} from '../lib/agent.ts';
import { cpuSeconds } from '../lib/child.ts';
import { ratioText } from '../lib/compare.ts';
import { CHECKED, type CountingEs, type CountingMode, LEAN } from '../lib/counting-es.ts';
import { profileNotes } from '../lib/cpu-profile.ts';
import { type Delivery, delivery, treeTotals, waitForDelivery } from '../lib/delivery.ts';
import { type Engine, enginesFor, type Fakes, startFakes } from '../lib/engines.ts';
import { kubeletLayout } from '../lib/kubelet.ts';
import { procSample } from '../lib/proc.ts';
import { fmt, fmtRange, roundSummary, summarize } from '../lib/stats.ts';
import type { BenchOptions, Scenario, ScenarioResult } from '../lib/types.ts';
import { type CriTree, criTree } from '../lib/workload.ts';

/** Pods in the workload tree; the lines are spread evenly over them. */
export const PODS = 50;

/** The targets, reported next to the figures (not asserted). */
const TARGET = { linesPerSecond: 250_000, cpuPerMillion: 4.0, peakRssMiB: 128 };

interface Config {
  name: string;
  flags: string[];
}

interface Run {
  /** logferry: spawn to exit; Fluent Bit: spawn to the last record stored */
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  /** CPU of this process (fake Elasticsearch, fake API, bookkeeping) during the run */
  runnerCpuSeconds: number;
  /** of which in the fake Elasticsearch's request handlers */
  esHandlerCpuSeconds: number;
  bytesToEs: number;
  bulkRequests: number;
  delivery: Delivery;
  agentStopped: Record<string, unknown> | undefined;
}

/** The workload tree for the agent scenarios: `--lines` spread over PODS pods. */
export function agentTree(opts: BenchOptions): Promise<CriTree> {
  return criTree(PODS, Math.max(1, Math.ceil(opts.lines / PODS)), opts.seed);
}

async function runOnce(
  opts: BenchOptions,
  entry: string,
  tree: CriTree,
  es: CountingEs,
  kubeUrl: string,
  flags: string[],
  mode: CountingMode = LEAN,
  nodeFlags: string[] = [],
): Promise<Run> {
  const state = await stateDir();
  es.reset(mode);
  try {
    const c0 = process.cpuUsage();
    const agent = startAgent(
      opts.root,
      agentArgs(entry, { podsDir: tree.dir, stateDir: state.dir, kubeUrl, esUrl: es.url }, [
        '--once',
        ...flags,
      ]),
      nodeFlags,
    );
    // generous: 60 s plus 200 µs per line (5,000 lines/s)
    const dog = watchdog(agent, 60_000 + tree.lines / 5, 'agent-es');
    const exit = await agent.exited;
    dog.clear();
    const c = process.cpuUsage(c0);
    if (exit.code !== 0 || exit.usage === undefined) {
      throw new Error(
        `agent --once: exit code ${exit.code}, signal ${exit.signal}${exit.usage === undefined ? ', no rusage' : ''}\n--- stderr (last 4 KiB) ---\n${agent.stderr().slice(-4096)}`,
      );
    }
    return {
      wallSeconds: exit.wallSeconds,
      cpuSeconds: cpuSeconds(exit.usage),
      peakRssMiB: exit.usage.resourceUsage.maxRSS / 1024,
      runnerCpuSeconds: (c.user + c.system) / 1e6,
      esHandlerCpuSeconds: es.stats.cpuSeconds,
      bytesToEs: es.stats.bytesReceived,
      bulkRequests: es.stats.bulkRequests,
      delivery: delivery(es, tree),
      agentStopped: agentLogs(agent.stderr(), 'stopped').at(-1),
    };
  } finally {
    await state.cleanup();
  }
}

/** One more run at defaults under `--cpu-prof`: every thread's profile and its top functions. */
async function profileRun(
  opts: BenchOptions,
  entry: string,
  tree: CriTree,
  es: CountingEs,
  kubeUrl: string,
): Promise<string[]> {
  const dir = join(
    opts.root,
    'bench/results/tmp',
    `agent-es-${new Date().toISOString().replace(/[:.]/g, '-')}`,
  );
  mkdirSync(dir, { recursive: true });
  await runOnce(opts, entry, tree, es, kubeUrl, [], LEAN, ['--cpu-prof', '--cpu-prof-dir', dir]);
  // one file per thread, named CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is the main one
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort((a, b) => threadOf(a) - threadOf(b));
  if (files.length === 0) return [`profile: no .cpuprofile in ${dir}`];
  return files.flatMap((f) =>
    profileNotes(
      join(dir, f),
      opts.root,
      threadOf(f) === 0 ? 'main thread' : `worker thread ${threadOf(f)}`,
      15,
    ),
  );
}

function threadOf(file: string): number {
  return Number(file.split('.').at(-3) ?? 0);
}

/**
 * Fluent Bit over the same tree (through kubelet's containers/ links) and fakes. It has no --once:
 * it runs until every record is stored, or nothing new arrived for 20 s (records lost); CPU and
 * peak RSS are read from /proc then, and wall is from spawn to the last record stored.
 */
async function fluentBitRun(engine: Engine, tree: CriTree, fakes: Fakes): Promise<Run> {
  const state = await stateDir();
  const layout = await kubeletLayout(tree);
  const es = fakes.es;
  es.reset(LEAN);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const agent = engine.start({ layout, stateDir: state.dir, fakes });
  try {
    await waitForDelivery(es, treeTotals(tree).records, agent, {
      stallMs: 20_000,
      timeoutMs: 60_000 + tree.lines / 5,
    });
    const s = procSample(agent.pid);
    const c = process.cpuUsage(c0);
    if (s === undefined) throw new Error('fluent-bit exited before it was measured');
    const run: Run = {
      wallSeconds: ((es.stats.lastStoredMs ?? s.atMs) - t0) / 1000,
      cpuSeconds: s.cpuSeconds,
      peakRssMiB: s.hwmKiB / 1024,
      runnerCpuSeconds: (c.user + c.system) / 1e6,
      esHandlerCpuSeconds: es.stats.cpuSeconds,
      bytesToEs: es.stats.bytesReceived,
      bulkRequests: es.stats.bulkRequests,
      delivery: delivery(es, tree, false),
      agentStopped: undefined,
    };
    // late re-sends would show as more documents than records
    await new Promise((r) => setTimeout(r, 2000));
    run.delivery = delivery(es, tree, false);
    return run;
  } finally {
    await agent.stop();
    await layout.cleanup();
    await state.cleanup();
  }
}

export const agentEs: Scenario = {
  name: 'agent-es',
  description: `\`logferry agent --once\` over a ${PODS}-pod /var/log/pods tree with pod labels from a fake Kubernetes API, to a counting fake Elasticsearch`,
  async run(opts: BenchOptions): Promise<ScenarioResult> {
    const entry = cliEntry(opts);
    const tree = await agentTree(opts);
    const totals = treeTotals(tree);
    const configs: Config[] = [{ name: 'defaults', flags: [] }];
    const workers = agentHasFlag('workers');
    if (workers) {
      configs.push(
        { name: '--workers 1', flags: ['--workers', '1'] },
        { name: '--workers 2', flags: ['--workers', '2'] },
      );
    }

    const fakes = await startFakes(tree, LEAN);
    const { es, kube } = fakes;
    const runs = new Map<string, Run[]>();
    let fixed: Run[] = [];
    let checked: Run;
    let profile: string[] = [];
    const fluentBit = enginesFor(opts).find((e) => e.name === 'fluent-bit');
    const fbRuns: Run[] = [];
    try {
      // the checked run: every document JSON.parse'd, json/partial/labels counted (this costs the
      // runner ~10 µs per document, so it is not one of the timed runs)
      checked = await runOnce(opts, entry, tree, es, kube.url, [], CHECKED);
      for (const cfg of configs) {
        const list: Run[] = [];
        for (let r = 0; r < opts.reps; r++)
          list.push(await runOnce(opts, entry, tree, es, kube.url, cfg.flags));
        runs.set(cfg.name, list);
      }
      if (opts.profile) profile = await profileRun(opts, entry, tree, es, kube.url);
      if (fluentBit !== undefined) {
        for (let r = 0; r < opts.reps; r++) fbRuns.push(await fluentBitRun(fluentBit, tree, fakes));
      }
    } finally {
      await fakes.close();
    }
    // the fixed cost: the same command over a 1-pod, 1-line tree (Node, module loading, API sync, exit)
    const tiny = await criTree(1, 1, opts.seed);
    const tinyFakes = await startFakes(tiny, LEAN);
    try {
      for (let r = 0; r < opts.reps; r++) {
        fixed.push(await runOnce(opts, entry, tiny, tinyFakes.es, tinyFakes.kube.url, []));
      }
    } finally {
      await tinyFakes.close();
    }
    fixed = fixed.filter((f) => f.delivery.problems.length === 0);

    const mLines = tree.lines / 1e6;
    const figuresOf = (list: Run[]) => ({
      linesPerSecond: summarize(list.map((r) => tree.lines / r.wallSeconds)),
      mbPerSecond: summarize(list.map((r) => tree.bytes / 1e6 / r.wallSeconds)),
      wallSeconds: summarize(list.map((r) => r.wallSeconds)),
      cpuSeconds: summarize(list.map((r) => r.cpuSeconds)),
      cpuSecondsPerMillionLines: summarize(list.map((r) => r.cpuSeconds / mLines)),
      coresUsed: summarize(list.map((r) => r.cpuSeconds / r.wallSeconds)),
      peakRssMiB: summarize(list.map((r) => r.peakRssMiB)),
      runnerCpuSeconds: summarize(list.map((r) => r.runnerCpuSeconds)),
      runnerCores: summarize(list.map((r) => r.runnerCpuSeconds / r.wallSeconds)),
      esHandlerCpuSeconds: summarize(list.map((r) => r.esHandlerCpuSeconds)),
    });
    const byConfig = configs.map((c) => ({
      cfg: c,
      list: runs.get(c.name)!,
      f: figuresOf(runs.get(c.name)!),
    }));
    const fb =
      fbRuns.length === 0
        ? undefined
        : { cfg: { name: 'fluent-bit', flags: [] }, list: fbRuns, f: figuresOf(fbRuns) };
    const columns = fb === undefined ? byConfig : [...byConfig, fb];
    const worst = (list: Run[], k: 'delivered' | 'duplicated' | 'lost') =>
      k === 'delivered'
        ? Math.min(...list.map((r) => r.delivery[k]))
        : Math.max(...list.map((r) => r.delivery[k]));

    const n = (x: number) => x.toLocaleString('en-US');
    const rows: string[][] = [];
    type Column = (typeof byConfig)[number];
    // with Fluent Bit: its column, and the defaults' median over its median
    const row = (name: string, target: string, cell: (b: Column) => string, median?: (b: Column) => number) =>
      rows.push([
        name,
        ...columns.map(cell),
        ...(fb === undefined
          ? []
          : [median === undefined ? '' : ratioText(median(byConfig[0]!), median(fb))]),
        target,
      ]);
    type Key = keyof ReturnType<typeof figuresOf>;
    const summary = (name: string, key: Key, target = '') =>
      row(
        name,
        target,
        (b) => fmtRange(b.f[key]),
        (b) => b.f[key].median,
      );
    summary('lines/s', 'linesPerSecond', `≥ ${n(TARGET.linesPerSecond)}`);
    summary('MB/s', 'mbPerSecond');
    summary('wall s', 'wallSeconds');
    summary('CPU s (user+sys)', 'cpuSeconds');
    summary('CPU s per million lines', 'cpuSecondsPerMillionLines', `≤ ${TARGET.cpuPerMillion.toFixed(1)}`);
    summary('cores used (CPU/wall)', 'coresUsed');
    summary('peak RSS MiB', 'peakRssMiB', `≤ ${TARGET.peakRssMiB}`);
    row('documents delivered', n(totals.records), (b) => n(worst(b.list, 'delivered')));
    row('  duplicated', '0', (b) => (b === fb ? 'n/a' : n(worst(b.list, 'duplicated'))));
    row('  lost', '0', (b) => n(worst(b.list, 'lost')));
    summary('runner CPU s (fake ES + API)', 'runnerCpuSeconds');

    const problems = [
      ...(checked.delivery.problems.length > 0
        ? [`checked run: ${checked.delivery.problems.join('; ')}`]
        : []),
      ...columns.flatMap((b) =>
        b.list.flatMap((r, i) =>
          r.delivery.problems.length > 0
            ? [`${b.cfg.name} run ${i + 1}: ${r.delivery.problems.join('; ')}`]
            : [],
        ),
      ),
    ];
    const first = byConfig[0]!;
    const sample = first.list[0]!;
    const fixedCpu = fixed.length > 0 ? summarize(fixed.map((r) => r.cpuSeconds)) : undefined;
    const fixedRss = fixed.length > 0 ? summarize(fixed.map((r) => r.peakRssMiB)) : undefined;
    const fixedWall = fixed.length > 0 ? summarize(fixed.map((r) => r.wallSeconds)) : undefined;
    const metas = tree.files.map((f) => f.meta);
    const sum = (k: 'traceLines' | 'partialLines' | 'stderrLines') => metas.reduce((s, m) => s + m[k], 0);
    const notes = [
      `workload: ${tree.dir}${tree.cached ? ' (cached)' : ''}`,
      `  ${PODS} pods, ${n(tree.lines)} CRI lines, ${fmt(tree.bytes / 1e6)} MB (${fmt(tree.bytes / tree.lines)} B/line), ${n(totals.records)} records: ${n(totals.jsonRecords)} JSON, ${n(totals.partialRecords)} joined from ${n(sum('partialLines'))} P lines, ${n(sum('traceLines'))} stack-trace lines (one record each: multiline is off by default)`,
      problems.length === 0
        ? `correctness: every logferry run delivered each record exactly once; the checked run (every document JSON.parse'd, not timed) found ${n(checked.delivery.json)} with json, ${n(checked.delivery.partial)} partial, ${n(checked.delivery.labelled)} with pod labels: as written${fb === undefined ? '' : '; Fluent Bit delivered as many documents as records (its documents have no _id: duplicates cannot be counted, they would show as more documents than records)'}`
        : `CORRECTNESS PROBLEMS: ${problems.join(' | ')}`,
      `  timed runs: ids counted exactly, each source line checked as {...}, 1 in 64 JSON.parse'd (with labels)`,
      `  the agent's own account (last run): ${JSON.stringify(sample.agentStopped ?? {})}`,
      `to Elasticsearch: ${fmt(sample.bytesToEs / 1e6)} MB of NDJSON in ${n(sample.bulkRequests)} bulk requests (${fmt(sample.bytesToEs / totals.records)} B/document with its action line)`,
      `runner CPU (fake Elasticsearch, fake API, polling) during a run: ${fmtRange(first.f.runnerCpuSeconds)} s, ${fmtRange(first.f.runnerCores)} cores; in the bulk handlers ${fmtRange(first.f.esHandlerCpuSeconds)} s (the rest is HTTP and GC)`,
      fixedCpu !== undefined && fixedRss !== undefined && fixedWall !== undefined
        ? `fixed cost, the same command over a 1-pod, 1-line tree: ${fmtRange(fixedCpu)} CPU s, ${fmtRange(fixedRss)} MiB peak RSS, ${fmtRange(fixedWall)} s wall`
        : 'fixed cost: the 1-line runs did not deliver their record',
      workers
        ? 'workers: --workers 1 and --workers 2 runs shown next to the defaults'
        : 'workers: not available yet (logferry agent has no --workers flag)',
      `${opts.reps} run(s) per column; median (min–max); delivered is the lowest of the runs, duplicated and lost the highest; CPU and RSS of the agent process only (all threads, from its own resourceUsage at exit); wall from spawn to exit`,
      ...profile,
      `command: node ${agentArgs(entry, { podsDir: '<tree>', stateDir: '<fresh dir>', kubeUrl: '<fake API>', esUrl: '<counting ES>' }, ['--once']).join(' ')}`,
      ...(fluentBit === undefined
        ? []
        : [
            `fluent-bit: ${fluentBit.command}, over <root>/var/log/containers/ links to the same tree; it has no --once: wall from spawn to the last record stored, CPU (utime+stime, all threads) and peak RSS (VmHWM) from /proc then; ${opts.reps} run(s), 1 document in 64 parsed and checked for pod labels`,
          ]),
    ];

    return {
      params: {
        pods: PODS,
        lines: tree.lines,
        bytes: tree.bytes,
        records: totals.records,
        seed: opts.seed,
        generatorVersion: tree.files[0]?.meta.generatorVersion,
        reps: opts.reps,
        cli: entry,
        configs: configs.map((c) => c.name),
        workersFlag: workers,
        targets: TARGET,
        ...(opts.fluentBit === undefined ? {} : { fluentBit: opts.fluentBit.version }),
      },
      figures: {
        ...Object.fromEntries(
          columns.map((b) => [
            b.cfg.name,
            {
              ...Object.fromEntries(Object.entries(b.f).map(([k, v]) => [k, roundSummary(v)])),
              delivered: worst(b.list, 'delivered'),
              duplicated: b === fb ? null : worst(b.list, 'duplicated'),
              lost: worst(b.list, 'lost'),
              problems: b.list.flatMap((r) => r.delivery.problems),
            },
          ]),
        ),
        fixedCost:
          fixedCpu !== undefined && fixedRss !== undefined && fixedWall !== undefined
            ? {
                cpuSeconds: roundSummary(fixedCpu),
                peakRssMiB: roundSummary(fixedRss),
                wallSeconds: roundSummary(fixedWall),
              }
            : undefined,
        bytesToEs: sample.bytesToEs,
      },
      table: {
        columns: [
          'figure',
          ...columns.map((c) => c.cfg.name),
          ...(fb === undefined ? [] : ['defaults / fluent-bit']),
          'target',
        ],
        rows,
      },
      notes,
    };
  },
};
