// The agents a scenario measures: logferry, and with `--compare fluent-bit` the reference agent, each
// started the same way over the same kubelet layout against the same fakes, so that a scenario
// runs one procedure for both. Also the fakes they share.
import type { FakeKubernetes } from '../../test/fakes/fake-kubernetes.ts';
import { agentArgs, cliEntry, type RunningAgent, startAgent } from './agent.ts';
import { type PodApi, startBenchKube, startPodApi } from './bench-kube.ts';
import { CHECKED, type CountingEs, type CountingMode, startCountingEs } from './counting-es.ts';
import { startFluentBit } from './fluent-bit.ts';
import type { KubeletLayout } from './kubelet.ts';
import type { BenchOptions } from './types.ts';
import type { CriTree } from './workload.ts';

export interface Fakes {
  es: CountingEs;
  /** list + watch (logferry) */
  kube: FakeKubernetes;
  /** pods by name over the same pods (Fluent Bit) */
  podApi: PodApi;
  /** requests to either Kubernetes API so far */
  kubeRequests(): number;
  close(): Promise<void>;
}

export async function startFakes(tree: CriTree, mode: CountingMode = CHECKED): Promise<Fakes> {
  const es = await startCountingEs(mode);
  const kube = await startBenchKube(tree);
  const podApi = await startPodApi(kube);
  return {
    es,
    kube,
    podApi,
    kubeRequests: () => kube.requests.length + podApi.requests,
    async close() {
      await podApi.close();
      await kube.close();
      await es.close();
    },
  };
}

export interface EngineRun {
  layout: KubeletLayout;
  /** a fresh state directory (no checkpoints, no tail DB) */
  stateDir: string;
  fakes: Fakes;
}

export interface Engine {
  /** the column title */
  name: 'logferry' | 'fluent-bit';
  /** documents carry ids, so duplicates are counted (Fluent Bit's have none) */
  ids: boolean;
  /**
   * the counting mode of an untimed run: logferry's documents have fields to count exactly (`json`,
   * `partial`); Fluent Bit's are each parsed and checked for pod labels
   */
  checked: CountingMode;
  /** the agent in follow mode (logferry: with `flags` after its defaults) */
  start(r: EngineRun, flags?: string[]): RunningAgent;
  /** the command line, for the notes */
  command: string;
}

export const FLUENT_BIT_CHECKED: CountingMode = { parseEvery: 1, fields: false };

/** logferry, then Fluent Bit when `--compare fluent-bit` found it. */
export function enginesFor(opts: BenchOptions): Engine[] {
  const entry = cliEntry(opts);
  const list: Engine[] = [
    {
      name: 'logferry',
      ids: true,
      checked: CHECKED,
      start: (r, flags = []) =>
        startAgent(
          opts.root,
          agentArgs(
            entry,
            {
              podsDir: r.layout.podsDir,
              stateDir: r.stateDir,
              kubeUrl: r.fakes.kube.url,
              esUrl: r.fakes.es.url,
            },
            flags,
          ),
        ),
      command: `node ${agentArgs(entry, { podsDir: '<pods dir>', stateDir: '<fresh dir>', kubeUrl: '<fake API>', esUrl: '<counting ES>' }).join(' ')}`,
    },
  ];
  const fb = opts.fluentBit;
  if (fb !== undefined) {
    list.push({
      name: 'fluent-bit',
      ids: false,
      checked: FLUENT_BIT_CHECKED,
      start: (r) =>
        startFluentBit(fb, {
          layout: r.layout,
          stateDir: r.stateDir,
          kubeUrl: r.fakes.podApi.url,
          esUrl: r.fakes.es.url,
        }),
      command: `${fb.binary} -c <${fb.config} filled in> (${fb.version})`,
    });
  }
  return list;
}

/**
 * The end of one measured run, whatever happened: the agent killed if still running, then the
 * fakes, the kubelet layout and the state directory removed.
 */
export async function endRun(
  agent: RunningAgent,
  fakes: Fakes,
  ...dirs: Array<{ cleanup(): Promise<void> }>
): Promise<void> {
  if (agent.exit === undefined) {
    agent.child.kill('SIGKILL');
    await agent.exited;
  }
  await fakes.close();
  for (const d of dirs) await d.cleanup();
}
