// Records what a real agent serves on /status and /metrics, twice a second apart, for the `logferry
// top` rendering tests (test/unit/cli/top-render.test.ts):  npm run build && node test/helpers/record-top-fixtures.ts
// Each case is a directory: sample-0.json and sample-1.json hold {atMs, status, metrics}, the bodies
// as served, with the temp directory's pods path written as /var/log/pods.
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FakeElasticsearch, startFakeElasticsearch } from '../fakes/fake-elasticsearch.ts';
import { makePod, startFakeKubernetes } from '../fakes/fake-kubernetes.ts';
import { type AgentEnv, agentArgs, NODE, podLog, startAgent } from './agent.ts';
import { BIN, criLine, sleep, tempDir } from './cli.ts';

const HERE = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/top');

const PODS = [
  { ns: 'shop', pod: 'checkout-7d9f8b6c5-x2k4q', uid: '0f3c2a91-5b7e-4d2a-9c1e-6a8b4f2d1e00', ctr: 'web' },
  { ns: 'shop', pod: 'cart-5c8d7f9b4-pq7rt', uid: '1a2b3c4d-0000-4000-8000-000000000001', ctr: 'cart' },
  {
    ns: 'payments-production',
    pod: 'ledger-reconciliation-worker-6b9c8d7f5d-zz9k2',
    uid: '1a2b3c4d-0000-4000-8000-000000000002',
    ctr: 'reconciler',
  },
  {
    ns: 'kube-system',
    pod: 'coredns-76f75df574-8xk2m',
    uid: '1a2b3c4d-0000-4000-8000-000000000003',
    ctr: 'coredns',
  },
];

interface Case {
  name: string;
  /** agent flags beyond the helper's */
  flags: string[];
  /** faults or none, set before the agent starts */
  setup?: (es: FakeElasticsearch) => void;
  /** lines per pod written before the first sample, and between the samples */
  lines: [number, number];
  /** documents to stdout (no --es): the agent exports no output metrics */
  stdout?: boolean;
}

const CASES: Case[] = [
  { name: 'healthy', flags: [], lines: [2000, 3000] },
  {
    // Elasticsearch answers 503: the budget fills, reading stops, files fall behind
    name: 'retrying',
    flags: ['--max-buffer-bytes', '256KiB', '--retry-max-ms', '500'],
    setup: (es) => es.fault({ kind: 'status', status: 503 }),
    lines: [4000, 1000],
  },
  {
    name: 'unauthorized',
    flags: ['--max-buffer-bytes', '256KiB', '--retry-max-ms', '500'],
    setup: (es) => es.fault({ kind: 'status', status: 401 }),
    lines: [500, 500],
  },
  { name: 'stdout', flags: [], lines: [100, 200], stdout: true },
];

/** startAgent without `--es`: the same flags, documents on stdout (ignored) */
function startStdoutAgent(
  env: AgentEnv,
  flags: string[],
): { url: () => Promise<string>; stop: () => Promise<unknown> } {
  const args = agentArgs(env, flags);
  args.splice(args.indexOf('--es'), 2);
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let logs = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    logs += d;
  });
  const exited = new Promise((r) => child.on('close', r));
  return {
    url: async () => {
      for (let i = 0; i < 200 && !/"http":"([^"]+)"/.test(logs); i++) await sleep(50);
      const m = /"http":"([^"]+)"/.exec(logs);
      if (m === null) throw new Error(`agent did not start: ${logs}`);
      return m[1]!;
    },
    stop: () => {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

async function sample(url: string, podsDir: string) {
  const [status, metrics] = await Promise.all([
    fetch(`${url}/status`).then((r) => r.text()),
    fetch(`${url}/metrics`).then((r) => r.text()),
  ]);
  return { atMs: Date.now(), status: JSON.parse(status.replaceAll(podsDir, '/var/log/pods')), metrics };
}

async function writeLines(dir: string, n: number, from: number) {
  for (const p of PODS) {
    const lines: string[] = [];
    for (let i = 0; i < n; i++)
      lines.push(criLine(from + i, `{"level":"info","msg":"request ${from + i} done"}`));
    await podLog(dir, p.ns, p.pod, p.uid, p.ctr, lines);
  }
}

for (const c of CASES) {
  const { dir, cleanup } = await tempDir('logferry-top-record-');
  const es = await startFakeElasticsearch();
  const kube = await startFakeKubernetes();
  for (const p of PODS) {
    kube.addPod(
      makePod({
        name: p.pod,
        namespace: p.ns,
        nodeName: NODE,
        uid: p.uid,
        containers: [{ name: p.ctr, image: 'x:1' }],
      }),
    );
  }
  const env: AgentEnv = { dir, kubeUrl: kube.url, esUrl: es.url, children: [] };
  c.setup?.(es);
  await writeLines(dir, c.lines[0], 0);
  const agent = c.stdout ? startStdoutAgent(env, c.flags) : startAgent(env, c.flags);
  const url = await agent.url();
  await sleep(1500);
  const first = await sample(url, join(dir, 'pods'));
  await writeLines(dir, c.lines[1], c.lines[0]);
  await sleep(1000);
  const second = await sample(url, join(dir, 'pods'));
  const out = join(HERE, c.name);
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'sample-0.json'), `${JSON.stringify(first, null, 2)}\n`);
  await writeFile(join(out, 'sample-1.json'), `${JSON.stringify(second, null, 2)}\n`);
  if ('stop' in agent) await agent.stop();
  else {
    agent.child.kill('SIGKILL');
    await agent.exited;
  }
  await es.close();
  await kube.close();
  await cleanup();
  process.stdout.write(`recorded ${c.name}\n`);
}
