import { cliEntry, stateDir } from '../lib/agent.ts';
import {
  correctnessNote,
  deliveryFields,
  deliveryFigures,
  roundedFigures,
  sideBySide,
} from '../lib/compare.ts';
import { type Delivery, delivery, treeTotals, waitForDelivery } from '../lib/delivery.ts';
import { type Engine, endRun, enginesFor, startFakes } from '../lib/engines.ts';
import { kubeletLayout } from '../lib/kubelet.ts';
import { procSample } from '../lib/proc.ts';
import { fmt } from '../lib/stats.ts';
import type { BenchOptions, Scenario, ScenarioResult } from '../lib/types.ts';
import { type CriTree, criTree } from '../lib/workload.ts';

/** The issue #13 workload: 200 files of 20 lines, shipped, then nothing new. */
const FILES = 200;
const LINES_PER_FILE = 20;
/** the quiet window (--duration), from SETTLE_MS after the last document was stored */
const WINDOW_S = 60;
/** for the last bulk answer and checkpoint write to land before the window opens */
const SETTLE_MS = 2_000;
/** the issue's targets */
const TARGET = { cpuPercent: 0.5, rssMiB: 64 };

interface IdleRun {
  caughtUp: boolean;
  caughtUpSeconds: number;
  windowSeconds: number;
  cpuPercent: number;
  rssMiB: number;
  maxRssInWindowMiB: number;
  peakRssMiB: number;
  bulkRequestsInWindow: number;
  kubeRequestsInWindow: number;
  delivery: Delivery;
  exitCode: number | null;
}

async function idleRun(engine: Engine, tree: CriTree, windowMs: number): Promise<IdleRun> {
  const fakes = await startFakes(tree, engine.checked);
  const layout = await kubeletLayout(tree);
  const state = await stateDir();
  const agent = engine.start({ layout, stateDir: state.dir, fakes });
  const es = fakes.es;
  try {
    const shipped = await waitForDelivery(es, treeTotals(tree).records, agent, {
      stallMs: 30_000,
      timeoutMs: 60_000,
    });
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const requests0 = es.stats.bulkRequests + es.stats.rejectedRequests;
    const kube0 = fakes.kubeRequests();
    const s0 = procSample(agent.pid);
    const samples: number[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < windowMs) {
      await new Promise((r) => setTimeout(r, 1000));
      const s = procSample(agent.pid);
      if (s !== undefined) samples.push(s.rssKiB);
    }
    const s1 = procSample(agent.pid);
    if (s0 === undefined || s1 === undefined)
      throw new Error(`idle: ${engine.name} exited during the window`);
    const bulkRequestsInWindow = es.stats.bulkRequests + es.stats.rejectedRequests - requests0;
    const kubeRequestsInWindow = fakes.kubeRequests() - kube0;
    const exit = await agent.stop();
    return {
      caughtUp: shipped.caughtUp,
      caughtUpSeconds: shipped.ms / 1000,
      windowSeconds: (s1.atMs - s0.atMs) / 1000,
      cpuPercent: (100 * (s1.cpuSeconds - s0.cpuSeconds)) / ((s1.atMs - s0.atMs) / 1000),
      rssMiB: s1.rssKiB / 1024,
      maxRssInWindowMiB: Math.max(...samples) / 1024,
      peakRssMiB: s1.hwmKiB / 1024,
      bulkRequestsInWindow,
      kubeRequestsInWindow,
      delivery: delivery(es, tree, engine.ids),
      exitCode: exit.code,
    };
  } finally {
    await endRun(agent, fakes, layout, state);
  }
}

/** The figures for results.jsonl: the run without its delivery object, rounded. */
function figuresOf(r: IdleRun): Record<string, unknown> {
  const { delivery: d, ...rest } = r;
  return {
    ...roundedFigures(rest),
    ...deliveryFields(d),
  };
}

export const idle: Scenario = {
  name: 'idle',
  description: `the agent (follow mode) with ${FILES} files of ${LINES_PER_FILE} lines shipped, then a quiet window: CPU share and RSS over it`,
  async run(opts: BenchOptions): Promise<ScenarioResult> {
    const engines = enginesFor(opts);
    const windowS = opts.duration ?? WINDOW_S;
    // fixed size: --lines does not apply (the point is the files, not the lines)
    const tree = await criTree(FILES, LINES_PER_FILE, opts.seed);
    const runs: IdleRun[] = [];
    for (const e of engines) runs.push(await idleRun(e, tree, windowS * 1000));

    const n = (x: number) => x.toLocaleString('en-US');
    const table = sideBySide(
      engines.map((e) => e.name),
      [
        {
          name: 'CPU % of one core',
          values: runs.map((r) => r.cpuPercent),
          digits: 2,
          target: `≤ ${TARGET.cpuPercent}`,
        },
        {
          name: 'RSS MiB at the end of the window',
          values: runs.map((r) => r.rssMiB),
          target: `≤ ${TARGET.rssMiB}`,
        },
        {
          name: 'RSS MiB, highest sampled in the window',
          values: runs.map((r) => r.maxRssInWindowMiB),
          target: `≤ ${TARGET.rssMiB}`,
        },
        { name: 'peak RSS MiB since start (VmHWM, incl. shipping)', values: runs.map((r) => r.peakRssMiB) },
        { name: 'all shipped after s', values: runs.map((r) => r.caughtUpSeconds) },
        {
          name: 'requests in the window: bulk / Kubernetes API',
          values: runs.map((r) => `${n(r.bulkRequestsInWindow)} / ${n(r.kubeRequestsInWindow)}`),
          target: '0 / 0',
        },
        ...deliveryFigures(runs.map((r) => r.delivery)),
      ],
    );
    const notes = [
      `workload: ${tree.dir}${tree.cached ? ' (cached)' : ''}: ${FILES} files of ${LINES_PER_FILE} lines (${fmt(tree.bytes / 1e6)} MB), shipped before the window; nothing is written during it`,
      `window: ${SETTLE_MS / 1000} s after the last document arrived, ${fmt(runs[0]!.windowSeconds)} s long; CPU from /proc/<pid>/stat utime+stime (10 ms ticks), all threads; RSS sampled every second`,
      ...engines.map((e, i) => correctnessNote(e.name, runs[i]!.delivery, e.checked)),
      `exit code after SIGTERM: ${engines.map((e, i) => `${e.name} ${runs[i]!.exitCode}`).join(', ')}`,
      ...engines.map((e) => `command: ${e.command}`),
    ];
    const fb = runs[1];
    return {
      params: {
        files: FILES,
        linesPerFile: LINES_PER_FILE,
        seed: opts.seed,
        cli: cliEntry(opts),
        settleMs: SETTLE_MS,
        windowMs: windowS * 1000,
        targets: TARGET,
        ...(opts.fluentBit === undefined ? {} : { fluentBit: opts.fluentBit.version }),
      },
      figures: { ...figuresOf(runs[0]!), ...(fb === undefined ? {} : { fluentBit: figuresOf(fb) }) },
      table,
      notes,
    };
  },
};
