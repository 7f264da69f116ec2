import {
  agentArgs,
  cliEntry,
  delivery,
  procSample,
  startAgent,
  startBenchKube,
  stateDir,
  treeTotals,
  waitUntil,
} from '../lib/agent.ts';
import { CHECKED, startCountingEs } from '../lib/counting-es.ts';
import { fmt } from '../lib/stats.ts';
import type { BenchOptions, Scenario, ScenarioResult } from '../lib/types.ts';
import { criTree } from '../lib/workload.ts';

const FILES = 200;
const LINES_PER_FILE = 50;
/** after catching up: this long to settle, then the measured window (the issue: ~30 s in all) */
const SETTLE_MS = 10_000;
const WINDOW_MS = 20_000;
/** the targets */
const TARGET = { cpuPercent: 1, rssMiB: 80 };

export const idle: Scenario = {
  name: 'idle',
  description: `\`logferry agent\` (follow mode) with ${FILES} quiet files already shipped: CPU and RSS over ${WINDOW_MS / 1000} s`,
  async run(opts: BenchOptions): Promise<ScenarioResult> {
    const entry = cliEntry(opts);
    // fixed size: --lines does not apply (the point is the files, not the lines)
    const tree = await criTree(FILES, LINES_PER_FILE, opts.seed);
    const totals = treeTotals(tree);
    const es = await startCountingEs(CHECKED);
    const kube = await startBenchKube(tree);
    const state = await stateDir();
    const agent = startAgent(
      opts.root,
      agentArgs(entry, { podsDir: tree.dir, stateDir: state.dir, kubeUrl: kube.url, esUrl: es.url }),
    );
    try {
      const caughtUpMs = await waitUntil(
        () => es.uniqueIds >= totals.records,
        60_000,
        'idle: shipping the files',
        agent,
      );
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const requests0 = es.stats.bulkRequests + es.stats.rejectedRequests;
      const kube0 = kube.requests.length;
      const s0 = procSample(agent.pid);
      const samples: number[] = [];
      const t0 = performance.now();
      while (performance.now() - t0 < WINDOW_MS) {
        await new Promise((r) => setTimeout(r, 1000));
        const s = procSample(agent.pid);
        if (s !== undefined) samples.push(s.rssKiB);
      }
      const s1 = procSample(agent.pid);
      if (s0 === undefined || s1 === undefined) throw new Error('idle: the agent exited during the window');
      const bulkInWindow = es.stats.bulkRequests + es.stats.rejectedRequests - requests0;
      const kubeInWindow = kube.requests.length - kube0;
      const exit = await agent.stop();
      const d = delivery(es, tree);

      const cpuPercent = (100 * (s1.cpuSeconds - s0.cpuSeconds)) / ((s1.atMs - s0.atMs) / 1000);
      const rssMiB = s1.rssKiB / 1024;
      const maxRssMiB = Math.max(...samples) / 1024;
      const hwmMiB = s1.hwmKiB / 1024;
      const n = (x: number) => x.toLocaleString('en-US');
      const rows = [
        ['CPU % of one core', fmt(cpuPercent, 2), `< ${TARGET.cpuPercent}`],
        ['RSS MiB at the end of the window', fmt(rssMiB), `< ${TARGET.rssMiB}`],
        ['RSS MiB, highest sampled in the window', fmt(maxRssMiB), `< ${TARGET.rssMiB}`],
        ['peak RSS MiB since start (VmHWM, incl. catching up)', fmt(hwmMiB), ''],
        ['caught up after s', fmt(caughtUpMs / 1000), ''],
        ['requests in the window: bulk / Kubernetes API', `${n(bulkInWindow)} / ${n(kubeInWindow)}`, ''],
        ['documents delivered', n(d.delivered), n(d.expected)],
        ['  duplicated', n(d.duplicated), '0'],
        ['  lost', n(d.lost), '0'],
      ];
      const notes = [
        `workload: ${tree.dir}${tree.cached ? ' (cached)' : ''}: ${FILES} files of ${LINES_PER_FILE} lines (${fmt(tree.bytes / 1e6)} MB), shipped before the window; nothing is written during it`,
        `window: ${SETTLE_MS / 1000} s after the last document arrived, ${fmt((s1.atMs - s0.atMs) / 1000)} s long; CPU from /proc/<pid>/stat utime+stime (10 ms ticks), all threads`,
        d.problems.length === 0
          ? 'correctness: every record delivered exactly once, with its fields and pod labels'
          : `CORRECTNESS PROBLEMS: ${d.problems.join('; ')}`,
        `exit code after SIGTERM: ${exit.code}`,
      ];
      return {
        params: {
          files: FILES,
          linesPerFile: LINES_PER_FILE,
          seed: opts.seed,
          cli: entry,
          settleMs: SETTLE_MS,
          windowMs: WINDOW_MS,
          targets: TARGET,
        },
        figures: {
          cpuPercent: Number(cpuPercent.toPrecision(3)),
          rssMiB: Number(rssMiB.toPrecision(4)),
          maxRssInWindowMiB: Number(maxRssMiB.toPrecision(4)),
          peakRssMiB: Number(hwmMiB.toPrecision(4)),
          caughtUpSeconds: Number((caughtUpMs / 1000).toPrecision(4)),
          bulkRequestsInWindow: bulkInWindow,
          kubeRequestsInWindow: kubeInWindow,
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
