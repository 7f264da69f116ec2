import { agentLogs, cliEntry, stateDir } from '../lib/agent.ts';
import { correctnessNote, deliveryFields, deliveryFigures, sideBySide } from '../lib/compare.ts';
import { LEAN } from '../lib/counting-es.ts';
import { type Delivery, delivery, treeTotals, waitForDelivery } from '../lib/delivery.ts';
import { type Engine, endRun, enginesFor, startFakes } from '../lib/engines.ts';
import { kubeletLayout } from '../lib/kubelet.ts';
import { procSample, RssSampler } from '../lib/proc.ts';
import { fmt } from '../lib/stats.ts';
import { type SteadyOptions, type SteadyStats, SteadyWriters } from '../lib/steady-writer.ts';
import type { BenchOptions, Scenario, ScenarioResult } from '../lib/types.ts';
import { type CriTree, criTree } from '../lib/workload.ts';

/** The issue #13 workload: 10,000 lines/s over 20 pods for 60 s, kubelet rotation every 2 MiB. */
const PODS = 20;
const RATE = 10_000;
const SECONDS = 60;
const ROTATE_BYTES = 2 * 2 ** 20;
/** kubelet's containerLogMaxFiles default: the live 0.log and 4 rotated files */
const MAX_FILES = 5;
const TICK_MS = 20;
/** the targets */
const TARGET = { cpuPerMillion: 20, peakRssMiB: 96 };

interface SteadyRun {
  writer: SteadyStats;
  writeSeconds: number;
  caughtUp: boolean;
  /** from the last line written to the last record stored (or the give-up) */
  lagSeconds: number;
  /** the agent's CPU from its start to catching up, and while the writers ran */
  cpuSeconds: number;
  cpuWhileWritingPercent: number;
  peakRssMiB: number;
  maxSampledRssMiB: number;
  /** the most records written but not yet stored, sampled every second */
  maxBacklogRecords: number;
  runnerCpuSeconds: number;
  bulkRequests: number;
  kubeRequests: number;
  delivery: Delivery;
  exitCode: number | null;
  stopped: Record<string, unknown> | undefined;
}

async function steadyRun(engine: Engine, source: CriTree, o: SteadyOptions): Promise<SteadyRun> {
  const fakes = await startFakes(source, LEAN);
  const es = fakes.es;
  const layout = await kubeletLayout(source, true);
  const state = await stateDir();
  const writers = new SteadyWriters(source, layout.logs, o);
  const c0 = process.cpuUsage();
  const agent = engine.start({ layout, stateDir: state.dir, fakes });
  const sampler = new RssSampler(agent.pid, 200);
  let maxBacklog = 0;
  const backlog = setInterval(() => {
    maxBacklog = Math.max(maxBacklog, writers.stats.records - es.uniqueIds);
  }, 1000);
  try {
    const s0 = procSample(agent.pid);
    await Promise.race([
      writers.run(),
      agent.exited.then((e) => {
        throw new Error(
          `${engine.name} exited while the writers ran (code ${e.code})\n${agent.stderr().slice(-4096)}`,
        );
      }),
    ]);
    const atWriteEnd = procSample(agent.pid);
    const shipped = await waitForDelivery(es, treeTotals(source).records, agent, {
      stallMs: 30_000,
      timeoutMs: 120_000,
    });
    const caught = procSample(agent.pid);
    const c = process.cpuUsage(c0);
    clearInterval(backlog);
    if (s0 === undefined || atWriteEnd === undefined || caught === undefined) {
      throw new Error(`steady: ${engine.name} exited before it was measured`);
    }
    // a moment for late re-sends (duplicates), then a clean stop
    await new Promise((r) => setTimeout(r, 2000));
    const exit = await agent.stop();
    const w = writers.stats;
    const writeSeconds = ((w.endedMs ?? 0) - (w.startedMs ?? 0)) / 1000;
    return {
      writer: w,
      writeSeconds,
      caughtUp: shipped.caughtUp,
      lagSeconds:
        ((shipped.caughtUp ? (es.stats.lastStoredMs ?? caught.atMs) : caught.atMs) - (w.endedMs ?? 0)) / 1000,
      cpuSeconds: caught.cpuSeconds,
      cpuWhileWritingPercent:
        (100 * (atWriteEnd.cpuSeconds - s0.cpuSeconds)) / ((atWriteEnd.atMs - s0.atMs) / 1000),
      peakRssMiB: caught.hwmKiB / 1024,
      maxSampledRssMiB: sampler.peakKiB() / 1024,
      maxBacklogRecords: maxBacklog,
      runnerCpuSeconds: (c.user + c.system) / 1e6,
      bulkRequests: es.stats.bulkRequests,
      kubeRequests: fakes.kubeRequests(),
      delivery: delivery(es, source, engine.ids),
      exitCode: exit.code,
      stopped: engine.name === 'logferry' ? agentLogs(agent.stderr(), 'stopped').at(-1) : undefined,
    };
  } finally {
    clearInterval(backlog);
    sampler.stop();
    writers.close();
    await endRun(agent, fakes, layout, state);
  }
}

function figuresOf(r: SteadyRun): Record<string, unknown> {
  const d = r.delivery;
  const p = (x: number) => Number(x.toPrecision(4));
  return {
    linesWritten: r.writer.lines,
    linesPerSecond: p(r.writer.lines / r.writeSeconds),
    writeSeconds: p(r.writeSeconds),
    rotations: r.writer.rotations,
    caughtUp: r.caughtUp,
    lagSeconds: p(r.lagSeconds),
    cpuSeconds: p(r.cpuSeconds),
    cpuSecondsPerMillionLines: p(r.cpuSeconds / (r.writer.lines / 1e6)),
    cpuWhileWritingPercent: p(r.cpuWhileWritingPercent),
    peakRssMiB: p(r.peakRssMiB),
    maxSampledRssMiB: p(r.maxSampledRssMiB),
    maxBacklogRecords: r.maxBacklogRecords,
    runnerCpuSeconds: p(r.runnerCpuSeconds),
    ...deliveryFields(d),
    exitCode: r.exitCode,
  };
}

export const steady: Scenario = {
  name: 'steady',
  description: `the agent (follow mode) while writers append ${RATE.toLocaleString('en-US')} lines/s over ${PODS} pods with kubelet rotation every ${ROTATE_BYTES / 2 ** 20} MiB: CPU per million lines, peak RSS`,
  async run(opts: BenchOptions): Promise<ScenarioResult> {
    const engines = enginesFor(opts);
    const rate = opts.rate ?? RATE;
    const seconds = opts.duration ?? SECONDS;
    // --lines does not apply: the workload is rate × duration, generated (and cached) as a tree
    const source = await criTree(PODS, Math.max(1, Math.round((rate * seconds) / PODS)), opts.seed);
    const totals = treeTotals(source);
    const o: SteadyOptions = {
      linesPerSecond: rate,
      rotateBytes: ROTATE_BYTES,
      maxFiles: MAX_FILES,
      tickMs: TICK_MS,
    };
    const runs: SteadyRun[] = [];
    for (const e of engines) runs.push(await steadyRun(e, source, o));

    const n = (x: number) => x.toLocaleString('en-US');
    const table = sideBySide(
      engines.map((e) => e.name),
      [
        {
          name: 'lines/s written',
          values: runs.map((r) => r.writer.lines / r.writeSeconds),
          target: n(rate),
        },
        {
          name: 'CPU s per million lines (start to caught up)',
          values: runs.map((r) => r.cpuSeconds / (r.writer.lines / 1e6)),
          target: `≤ ${TARGET.cpuPerMillion}`,
        },
        { name: 'CPU s (start to caught up)', values: runs.map((r) => r.cpuSeconds) },
        { name: 'CPU % of one core while writing', values: runs.map((r) => r.cpuWhileWritingPercent) },
        {
          name: 'peak RSS MiB (VmHWM)',
          values: runs.map((r) => r.peakRssMiB),
          target: `≤ ${TARGET.peakRssMiB}`,
        },
        {
          name: 'peak RSS MiB (highest sampled)',
          values: runs.map((r) => r.maxSampledRssMiB),
          target: `≤ ${TARGET.peakRssMiB}`,
        },
        { name: 'most records waiting (sampled each s)', values: runs.map((r) => n(r.maxBacklogRecords)) },
        {
          name: 'caught up, s after the last write',
          values: runs.map((r) => (r.caughtUp ? r.lagSeconds : `no (gave up after ${fmt(r.lagSeconds)})`)),
        },
        ...deliveryFigures(runs.map((r) => r.delivery)),
        { name: 'runner CPU s (writers, fakes)', values: runs.map((r) => r.runnerCpuSeconds) },
      ],
    );
    const w = runs[0]!.writer;
    const notes = [
      `workload: ${source.dir}${source.cached ? ' (cached)' : ''}: ${PODS} pods, ${n(source.lines)} lines (${fmt(source.bytes / 1e6)} MB), ${n(totals.records)} records, written at ${n(rate)} lines/s for ${fmt(seconds)} s (--rate, --duration; --lines does not apply)`,
      `writers: every ${TICK_MS} ms each container's due lines in one write; kubelet rotation past ${ROTATE_BYTES / 2 ** 20} MiB (rotated files beyond ${MAX_FILES - 2} deleted, older ones gzipped, then 0.log renamed to 0.log.<YYYYMMDD-hhmmss> and reopened), between records; per run: ${n(w.rotations)} rotations, ${n(w.gzipped)} gzipped, ${n(w.deleted)} deleted, longest gap between writes ${fmt(w.maxTickGapMs)} ms`,
      `layout: <root>/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log (logferry's --pods-dir) and kubelet's <root>/var/log/containers/ links (Fluent Bit's)`,
      'CPU (utime+stime, all threads) and VmHWM from /proc, from the start to the moment every record was stored; RSS sampled every 200 ms',
      ...engines.map((e, i) => correctnessNote(e.name, runs[i]!.delivery, LEAN)),
      ...engines.map(
        (e, i) =>
          `${e.name}: ${n(runs[i]!.bulkRequests)} bulk requests, ${n(runs[i]!.kubeRequests)} Kubernetes API requests, exit code ${runs[i]!.exitCode} after SIGTERM`,
      ),
      `  logferry's own account: ${JSON.stringify(runs[0]!.stopped ?? {})}`,
      ...engines.map((e) => `command: ${e.command}`),
    ];
    const fb = runs[1];
    return {
      params: {
        pods: PODS,
        linesPerSecond: rate,
        seconds,
        lines: source.lines,
        bytes: source.bytes,
        records: totals.records,
        seed: opts.seed,
        rotateBytes: ROTATE_BYTES,
        maxFiles: MAX_FILES,
        cli: cliEntry(opts),
        targets: TARGET,
        ...(opts.fluentBit === undefined ? {} : { fluentBit: opts.fluentBit.version }),
      },
      figures: { ...figuresOf(runs[0]!), ...(fb === undefined ? {} : { fluentBit: figuresOf(fb) }) },
      table,
      notes,
    };
  },
};
