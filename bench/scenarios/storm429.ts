import { agentDefault, agentHttp, agentLogs, bufferStatus, cliEntry, stateDir } from '../lib/agent.ts';
import { cpuSeconds } from '../lib/child.ts';
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
import { procSample, RssSampler } from '../lib/proc.ts';
import { fmt } from '../lib/stats.ts';
import type { BenchOptions, Scenario, ScenarioResult } from '../lib/types.ts';
import type { CriTree } from '../lib/workload.ts';
import { agentTree, PODS } from './agent-es.ts';

/** How long Elasticsearch answers 429 to everything, from the agent's first bulk request. */
const STORM_MS = 20_000;
/** RSS allowed above the buffer budget (the issue's target). */
const HEADROOM_MIB = 64;

interface StormRun {
  stormSeconds: number;
  rejectedRequests: number;
  /** logferry's /status during the storm: the most bytes waiting, and how often it answered */
  maxWaitingBytes: number | undefined;
  statusAnswersDuringStorm: number | undefined;
  limitBytes: number | undefined;
  deliveredDuringStorm: number;
  stormPeakRssMiB: number;
  afterStormPeakRssMiB: number;
  runPeakRssMiB: number;
  recovered: boolean;
  recoverySeconds: number;
  cpuSeconds: number;
  delivery: Delivery;
  exitCode: number | null;
  stopped: Record<string, unknown> | undefined;
}

async function stormRun(engine: Engine, tree: CriTree): Promise<StormRun> {
  const fakes = await startFakes(tree, engine.checked);
  const es = fakes.es;
  const layout = await kubeletLayout(tree);
  const state = await stateDir();
  const stormDone = es.storm(STORM_MS);
  const agent = engine.start({ layout, stateDir: state.dir, fakes });
  const sampler = new RssSampler(agent.pid, 100);
  try {
    // logferry's buffer as it reports it, every second through the storm (Fluent Bit has no such page)
    const http = engine.name === 'logferry' ? await agentHttp(agent) : undefined;
    let maxWaiting = 0;
    let answers = 0;
    let limitBytes: number | undefined;
    const poll = setInterval(() => {
      if (http === undefined) return;
      void bufferStatus(http).then((b) => {
        if (b === undefined) return;
        limitBytes = b.limitBytes;
        if (!es.storming) return;
        answers++;
        if (b.waitingBytes > maxWaiting) maxWaiting = b.waitingBytes;
      });
    }, 1000);
    let stormEndMs: number;
    try {
      await Promise.race([
        stormDone,
        agent.exited.then((e) => {
          throw new Error(
            `${engine.name} exited during the storm (code ${e.code})\n${agent.stderr().slice(-4096)}`,
          );
        }),
      ]);
      stormEndMs = performance.now();
    } finally {
      clearInterval(poll);
    }
    const atStormEnd = procSample(agent.pid);
    const stormStartMs = es.stormStartedMs ?? stormEndMs - STORM_MS;
    const rejectedRequests = es.stats.rejectedRequests;
    const deliveredDuringStorm = es.uniqueIds;

    // recovery: every record delivered (logferry backs off up to output.retryMaxMs, 30 s by default;
    // Fluent Bit's scheduler from 5 s, doubling, with jitter); an agent that lost some stalls instead
    const recovery = await waitForDelivery(es, treeTotals(tree).records, agent, {
      stallMs: 90_000,
      timeoutMs: 180_000 + tree.lines / 20,
    });
    // a moment for late re-sends (which would show as duplicates), then a clean stop
    await new Promise((r) => setTimeout(r, 2000));
    const last = procSample(agent.pid);
    const exit = await agent.stop();
    sampler.stop();
    return {
      stormSeconds: (stormEndMs - stormStartMs) / 1000,
      rejectedRequests,
      maxWaitingBytes: http === undefined || answers === 0 ? undefined : maxWaiting,
      statusAnswersDuringStorm: http === undefined ? undefined : answers,
      limitBytes,
      deliveredDuringStorm,
      stormPeakRssMiB: (atStormEnd?.hwmKiB ?? sampler.peakKiB(0, stormEndMs)) / 1024,
      afterStormPeakRssMiB: sampler.peakKiB(stormEndMs) / 1024,
      // logferry's own resourceUsage at exit, as before --compare existed; Fluent Bit's VmHWM before SIGTERM
      runPeakRssMiB: (exit.usage?.resourceUsage.maxRSS ?? last?.hwmKiB ?? 0) / 1024,
      recovered: recovery.caughtUp,
      recoverySeconds: recovery.ms / 1000,
      cpuSeconds: exit.usage !== undefined ? cpuSeconds(exit.usage) : (last?.cpuSeconds ?? Number.NaN),
      delivery: delivery(es, tree, engine.ids),
      exitCode: exit.code,
      stopped: engine.name === 'logferry' ? agentLogs(agent.stderr(), 'stopped').at(-1) : undefined,
    };
  } finally {
    sampler.stop();
    await endRun(agent, fakes, layout, state);
  }
}

function figuresOf(r: StormRun): Record<string, unknown> {
  const { delivery: d, stopped: _stopped, ...rest } = r;
  return {
    ...roundedFigures(rest),
    ...deliveryFields(d),
  };
}

export const storm429: Scenario = {
  name: 'storm429',
  description: `the agent (follow mode) over the agent-es tree while Elasticsearch answers 429 to everything for ${STORM_MS / 1000} s, then recovers`,
  async run(opts: BenchOptions): Promise<ScenarioResult> {
    const engines = enginesFor(opts);
    const tree = await agentTree(opts);
    const totals = treeTotals(tree);
    const budgetBytes = Number(agentDefault('maxBufferBytes'));
    const budgetMiB = budgetBytes / 2 ** 20;
    const limitMiB = budgetMiB + HEADROOM_MIB;
    const runs: StormRun[] = [];
    for (const e of engines) runs.push(await stormRun(e, tree));

    const n = (x: number) => x.toLocaleString('en-US');
    const lf = runs[0]!;
    const table = sideBySide(
      engines.map((e) => e.name),
      [
        {
          name: '429 storm s (whole-request 429s)',
          values: runs.map((r) => `${fmt(r.stormSeconds)} (${n(r.rejectedRequests)})`),
        },
        {
          name: 'max bytes waiting during the storm MiB (/status)',
          values: runs.map((r, i) =>
            engines[i]!.name !== 'logferry'
              ? 'n/a'
              : r.maxWaitingBytes === undefined
                ? 'no answer'
                : r.maxWaitingBytes / 2 ** 20,
          ),
          target: `≤ ${fmt(budgetMiB)}`,
        },
        {
          name: 'peak RSS MiB up to the end of the storm',
          values: runs.map((r) => r.stormPeakRssMiB),
          target: `≤ ${fmt(limitMiB)}`,
        },
        {
          name: 'peak RSS MiB after recovery',
          values: runs.map((r) => r.afterStormPeakRssMiB),
          target: `≤ ${fmt(limitMiB)}`,
        },
        {
          name: 'peak RSS MiB whole run',
          values: runs.map((r) => r.runPeakRssMiB),
          target: `≤ ${fmt(limitMiB)}`,
        },
        {
          name: 'all delivered, s after the storm',
          values: runs.map((r) =>
            r.recovered ? r.recoverySeconds : `no (stalled at ${fmt(r.recoverySeconds)})`,
          ),
        },
        { name: 'agent CPU s, whole run', values: runs.map((r) => r.cpuSeconds) },
        ...deliveryFigures(runs.map((r) => r.delivery)),
        { name: 'exit code after SIGTERM', values: runs.map((r) => String(r.exitCode)), target: '0' },
      ],
    );
    const notes = [
      `workload: ${tree.dir}${tree.cached ? ' (cached)' : ''}: ${PODS} pods, ${n(tree.lines)} lines, ${fmt(tree.bytes / 1e6)} MB, ${n(totals.records)} records`,
      `buffer budget (logferry's --max-buffer-bytes default): ${fmt(budgetMiB)} MiB; the target is budget + ${HEADROOM_MIB} MiB`,
      tree.bytes < budgetBytes
        ? `NOTE: the workload (${fmt(tree.bytes / 2 ** 20)} MiB) is smaller than the buffer budget: the budget is not exercised; use --lines 400k or more`
        : `the workload is ${fmt(tree.bytes / budgetBytes)}× the buffer budget: reading must pause during the storm`,
      ...engines.map(
        (e, i) =>
          `documents stored during the storm (${e.name}): ${n(runs[i]!.deliveredDuringStorm)} (expected 0)`,
      ),
      `logferry's /status polled every second: ${lf.statusAnswersDuringStorm ?? 0} answer(s) during the storm${lf.statusAnswersDuringStorm === 0 ? " (the agent's event loop did not answer within 2 s)" : ''}, limit ${lf.limitBytes === undefined ? 'never reported' : `${fmt(lf.limitBytes / 2 ** 20)} MiB`}`,
      ...engines.map((e, i) => correctnessNote(e.name, runs[i]!.delivery, e.checked)),
      `  logferry's own account: ${JSON.stringify(lf.stopped ?? {})}`,
      "peak RSS up to the end of the storm is the kernel's VmHWM then; after recovery, the highest VmRSS sampled every 100 ms; whole run and CPU: logferry's resourceUsage at exit, Fluent Bit's /proc (VmHWM, utime+stime of all threads) just before SIGTERM",
      ...engines.map((e) => `command: ${e.command}`),
    ];
    const fb = runs[1];
    return {
      params: {
        pods: PODS,
        lines: tree.lines,
        bytes: tree.bytes,
        records: totals.records,
        seed: opts.seed,
        cli: cliEntry(opts),
        stormMs: STORM_MS,
        budgetBytes,
        headroomMiB: HEADROOM_MIB,
        ...(opts.fluentBit === undefined ? {} : { fluentBit: opts.fluentBit.version }),
      },
      figures: { ...figuresOf(lf), ...(fb === undefined ? {} : { fluentBit: figuresOf(fb) }) },
      table,
      notes,
    };
  },
};
