// The agent as a child process against a kubelet-style pods directory, a fake Kubernetes API and a
// fake Elasticsearch: shared by the agent and records integration tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { type FakeElasticsearch, startFakeElasticsearch } from '../fakes/fake-elasticsearch.ts';
import { type FakeKubernetes, startFakeKubernetes } from '../fakes/fake-kubernetes.ts';
import { BIN, sleep, tempDir } from './cli.ts';

export const NODE = 'node-1';

/** Where an agent under test runs: its temp dir (pods/ and state/ inside), the fakes, and the list of children to kill. */
export interface AgentEnv {
  dir: string;
  /** '' for no --kube-api (in-cluster or KUBECONFIG, from startAgent's childEnv) */
  kubeUrl: string;
  esUrl: string;
  children: ChildProcess[];
  /** --node-name; default NODE */
  nodeName?: string | undefined;
}

/**
 * For each test of the file that calls it: a temp dir, a fake Elasticsearch and a fake Kubernetes
 * API, all closed after the test, and the agents it started killed. Read the current test's through
 * the getters.
 */
export function agentFixture(): { env(): AgentEnv; es(): FakeElasticsearch; kube(): FakeKubernetes } {
  let env: AgentEnv | undefined;
  let es: FakeElasticsearch | undefined;
  let kube: FakeKubernetes | undefined;
  let cleanup: () => Promise<void> = async () => {};
  beforeEach(async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    es = await startFakeElasticsearch();
    kube = await startFakeKubernetes();
    env = { dir: t.dir, kubeUrl: kube.url, esUrl: es.url, children: [] };
  });
  afterEach(async () => {
    for (const c of env?.children.splice(0) ?? []) c.kill('SIGKILL');
    await es?.close();
    await kube?.close();
    await cleanup();
  });
  return { env: () => env!, es: () => es!, kube: () => kube! };
}

/** Appends CRI lines to `<dir>/pods/<ns>_<pod>_<uid>/<container>/0.log`; returns the file. */
export async function podLog(
  dir: string,
  ns: string,
  pod: string,
  uid: string,
  container: string,
  lines: string[],
): Promise<string> {
  const d = join(dir, 'pods', `${ns}_${pod}_${uid}`, container);
  await mkdir(d, { recursive: true });
  const file = join(d, '0.log');
  await appendFile(file, lines.join(''));
  return file;
}

/** `agent` with the env's directories and fakes, fast flush and poll, JSON logs, then `extra`. */
export function agentArgs(env: AgentEnv, extra: string[] = []): string[] {
  return [
    'agent',
    '--pods-dir',
    join(env.dir, 'pods'),
    '--state-dir',
    join(env.dir, 'state'),
    '--node-name',
    env.nodeName ?? NODE,
    ...(env.kubeUrl === '' ? [] : ['--kube-api', env.kubeUrl]),
    '--es',
    env.esUrl,
    '--http-addr',
    '127.0.0.1:0',
    '--log-format',
    'json',
    '--flush-ms',
    '50',
    '--poll-interval-ms',
    '50',
    ...extra,
  ];
}

export interface Agent {
  child: ChildProcess;
  /** its JSON log lines so far */
  logs: Array<Record<string, unknown>>;
  /** the server's address once it logged that it started */
  url: () => Promise<string>;
  exited: Promise<number | null>;
}

export function startAgent(
  env: AgentEnv,
  extra: string[] = [],
  stdout: 'pipe' | 'ignore' = 'pipe',
  childEnv: NodeJS.ProcessEnv = process.env,
): Agent {
  const child = spawn(process.execPath, [BIN, ...agentArgs(env, extra)], {
    stdio: ['ignore', stdout, 'pipe'],
    env: childEnv,
  });
  env.children.push(child);
  const logs: Array<Record<string, unknown>> = [];
  let partial = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    const lines = (partial + d).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (l.trim() !== '') logs.push(JSON.parse(l) as Record<string, unknown>);
  });
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const url = async () => {
    for (let i = 0; i < 200; i++) {
      const started = logs.find((l) => typeof l.http === 'string');
      if (started) return started.http as string;
      await sleep(50);
    }
    throw new Error(`agent did not start: ${JSON.stringify(logs)}`);
  };
  return { child, logs, url, exited };
}
