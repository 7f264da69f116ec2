import {
  agentArgs,
  agentDefault,
  agentHttp,
  agentLogs,
  bufferStatus,
  cliEntry,
  delivery,
  procSample,
  RssSampler,
  startAgent,
  startBenchKube,
  stateDir,
  treeTotals,
  waitUntil,
} from '../lib/agent.ts';
import { cpuSeconds } from '../lib/child.ts';
import { CHECKED, startCountingEs } from '../lib/counting-es.ts';
import { fmt } from '../lib/stats.ts';
import type { BenchOptions, Scenario, ScenarioResult } from '../lib/types.ts';
import { agentTree, PODS } from './agent-es.ts';

/** How long Elasticsearch answers 429 to everything, from the agent's first bulk request. */
const STORM_MS = 20_000;
/** RSS allowed above the buffer budget (the issue's target). */
const HEADROOM_MIB = 64;

export const storm429: Scenario = {
  name: 'storm429',
  description: `\`logferry agent\` (follow mode) over the agent-es tree while Elasticsearch answers 429 to everything for ${STORM_MS / 1000} s, then recovers`,
  async run(opts: BenchOptions): Promise<ScenarioResult> {
    const entry = cliEntry(opts);
    const tree = await agentTree(opts);
    const totals = treeTotals(tree);
    const budgetBytes = Number(agentDefault('maxBufferBytes'));
    const budgetMiB = budgetBytes / 2 ** 20;
    const limitMiB = budgetMiB + HEADROOM_MIB;

    // not a throughput run: every document is parsed and its fields counted
    const es = await startCountingEs(CHECKED);
    const kube = await startBenchKube(tree);
    const state = await stateDir();
    const stormDone = es.storm(STORM_MS);
    const agent = startAgent(
      opts.root,
      agentArgs(entry, { podsDir: tree.dir, stateDir: state.dir, kubeUrl: kube.url, esUrl: es.url }),
    );
    const sampler = new RssSampler(agent.pid, 100);
    try {
      const http = await agentHttp(agent);
      // the buffer as the agent reports it, every second through the storm
      let maxWaiting = 0;
      let answers = 0;
      let limitBytes: number | undefined;
      const poll = setInterval(() => {
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
              `the agent exited during the storm (code ${e.code})\n${agent.stderr().slice(-4096)}`,
            );
          }),
        ]);
        stormEndMs = performance.now();
      } finally {
        clearInterval(poll);
      }
      const atStormEnd = procSample(agent.pid);
      const stormStartMs = es.stormStartedMs ?? stormEndMs - STORM_MS;
      const rejected = es.stats.rejectedRequests;
      const deliveredInStorm = es.uniqueIds;

      // recovery: every record delivered (retries back off up to output.retryMaxMs, 30 s by default)
      const recoveryMs = await waitUntil(
        () => es.uniqueIds >= totals.records,
        120_000 + tree.lines / 20,
        'storm429: delivering everything after the storm',
        agent,
      );
      // a moment for late re-sends (which would show as duplicates), then a clean stop
      await new Promise((r) => setTimeout(r, 2000));
      const exit = await agent.stop();
      sampler.stop();
      const d = delivery(es, tree);

      const stormPeakMiB = (atStormEnd?.hwmKiB ?? sampler.peakKiB(0, stormEndMs)) / 1024;
      const afterPeakMiB = sampler.peakKiB(stormEndMs) / 1024;
      const runPeakMiB = (exit.usage?.resourceUsage.maxRSS ?? 0) / 1024;
      const cpu = exit.usage === undefined ? Number.NaN : cpuSeconds(exit.usage);
      const n = (x: number) => x.toLocaleString('en-US');
      const stopped = agentLogs(agent.stderr(), 'stopped').at(-1);

      const rows = [
        [
          '429 storm s (whole-request 429s)',
          `${fmt((stormEndMs - stormStartMs) / 1000)} (${n(rejected)})`,
          '',
        ],
        ['buffer budget MiB (--max-buffer-bytes default)', fmt(budgetMiB), ''],
        [
          'max bytes waiting during the storm MiB (/status)',
          answers === 0 ? 'no answer' : fmt(maxWaiting / 2 ** 20),
          `≤ ${fmt(budgetMiB)}`,
        ],
        ['peak RSS MiB up to the end of the storm', fmt(stormPeakMiB), `≤ ${fmt(limitMiB)}`],
        ['peak RSS MiB after recovery', fmt(afterPeakMiB), `≤ ${fmt(limitMiB)}`],
        ['peak RSS MiB whole run', fmt(runPeakMiB), `≤ ${fmt(limitMiB)}`],
        ['all delivered, s after the storm', fmt(recoveryMs / 1000), ''],
        ['agent CPU s, whole run', fmt(cpu), ''],
        ['documents delivered', n(d.delivered), n(d.expected)],
        ['  duplicated', n(d.duplicated), '0'],
        ['  lost', n(d.lost), '0'],
        ['exit code after SIGTERM', String(exit.code), '0'],
      ];
      const notes = [
        `workload: ${tree.dir}${tree.cached ? ' (cached)' : ''}: ${PODS} pods, ${n(tree.lines)} lines, ${fmt(tree.bytes / 1e6)} MB, ${n(totals.records)} records`,
        tree.bytes < budgetBytes
          ? `NOTE: the workload (${fmt(tree.bytes / 2 ** 20)} MiB) is smaller than the buffer budget: the budget is not exercised; use --lines 400k or more`
          : `the workload is ${fmt(tree.bytes / budgetBytes)}× the buffer budget: reading must pause during the storm`,
        `documents stored during the storm: ${n(deliveredInStorm)} (expected 0); /status polled every second: ${answers} answer(s) during the storm${answers === 0 ? " (the agent's event loop did not answer within 2 s)" : ''}, limit ${limitBytes === undefined ? 'never reported' : `${fmt(limitBytes / 2 ** 20)} MiB`}`,
        d.problems.length === 0
          ? 'correctness: every record delivered exactly once, with its fields and pod labels'
          : `CORRECTNESS PROBLEMS: ${d.problems.join('; ')}`,
        `  the agent's own account: ${JSON.stringify(stopped ?? {})}`,
        "peak RSS up to the end of the storm is the kernel's VmHWM then; after recovery, the highest VmRSS sampled every 100 ms; whole run, the agent's resourceUsage at exit",
      ];
      return {
        params: {
          pods: PODS,
          lines: tree.lines,
          bytes: tree.bytes,
          records: totals.records,
          seed: opts.seed,
          cli: entry,
          stormMs: STORM_MS,
          budgetBytes,
          headroomMiB: HEADROOM_MIB,
        },
        figures: {
          stormSeconds: Number(((stormEndMs - stormStartMs) / 1000).toPrecision(4)),
          rejectedRequests: rejected,
          maxWaitingBytes: answers === 0 ? null : maxWaiting,
          statusAnswersDuringStorm: answers,
          stormPeakRssMiB: Number(stormPeakMiB.toPrecision(4)),
          afterStormPeakRssMiB: Number(afterPeakMiB.toPrecision(4)),
          runPeakRssMiB: Number(runPeakMiB.toPrecision(4)),
          recoverySeconds: Number((recoveryMs / 1000).toPrecision(4)),
          cpuSeconds: Number(cpu.toPrecision(4)),
          delivered: d.delivered,
          duplicated: d.duplicated,
          lost: d.lost,
          problems: d.problems,
          exitCode: exit.code,
        },
        table: { columns: ['figure', 'value', 'target'], rows },
        notes,
      };
    } finally {
      sampler.stop();
      if (agent.exit === undefined) {
        agent.child.kill('SIGKILL');
        await agent.exited;
      }
      await es.close();
      await kube.close();
      await state.cleanup();
    }
  },
};
