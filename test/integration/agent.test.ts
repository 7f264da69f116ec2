// `logferry agent` end to end: a kubelet-style pods directory, a fake Kubernetes API, a fake
// Elasticsearch, the real built CLI as a child process.
import type { ChildProcess } from 'node:child_process';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeElasticsearch, startFakeElasticsearch } from '../fakes/fake-elasticsearch.ts';
import { type FakeKubernetes, makePod, startFakeKubernetes } from '../fakes/fake-kubernetes.ts';
import {
  type Agent,
  type AgentEnv,
  agentArgs as agentArgsOf,
  NODE,
  startAgent as startAgentIn,
  podLog as writePodLog,
} from '../helpers/agent.ts';
import { criLine, runCli, sleep, tempDir } from '../helpers/cli.ts';

let dir: string;
let cleanup: () => Promise<void>;
let es: FakeElasticsearch;
let kube: FakeKubernetes;
const children: ChildProcess[] = [];

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  es = await startFakeElasticsearch();
  kube = await startFakeKubernetes();
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await es.close();
  await kube.close();
  await cleanup();
});

const INDEX = 'logs-kubernetes.container_logs-default';

const env = (): AgentEnv => ({ dir, kubeUrl: kube.url, esUrl: es.url, children });
const podLog = (ns: string, pod: string, uid: string, container: string, lines: string[]) =>
  writePodLog(dir, ns, pod, uid, container, lines);
const agentArgs = (extra: string[] = []) => agentArgsOf(env(), extra);
const startAgent = (extra: string[] = []): Agent => startAgentIn(env(), extra);

const sources = (index = INDEX) => es.docs(index).map((d) => d.source as Record<string, any>);

describe('logferry agent', () => {
  it('ships every container line enriched with pod metadata, labels de-dotted (golden shape)', async () => {
    kube.addPod(
      makePod({
        name: 'checkout-7d9f8b6c5-x2k4q',
        namespace: 'shop',
        nodeName: NODE,
        uid: '00000000-5b7e-4d2a-9c1e-6a8b4f2d1e00',
        labels: { app: 'checkout', 'app.kubernetes.io/name': 'checkout', 'pod-template-hash': '7d9f8b6c5' },
        owner: { kind: 'ReplicaSet', name: 'checkout-7d9f8b6c5' },
        containers: [{ name: 'web', image: 'shop/checkout:1.2', id: 'containerd://abc123' }],
        podIp: '10.0.0.7',
      }),
    );
    const file = await podLog(
      'shop',
      'checkout-7d9f8b6c5-x2k4q',
      '00000000-5b7e-4d2a-9c1e-6a8b4f2d1e00',
      'web',
      [criLine(1, '{"level":"info","msg":"order placed"}'), criLine(2, 'plain text', 'stderr')],
    );
    const res = await runCli([...agentArgs(), '--once']);
    expect(res.code).toBe(0);
    const docs = sources();
    expect(docs).toHaveLength(2);
    expect(docs[0]).toEqual({
      '@timestamp': '2026-11-22T01:02:03.000000001Z',
      // the application's own message and level, normalised; its fields whole under json
      message: 'order placed',
      stream: 'stdout',
      log: { file: { path: file }, offset: 0, level: 'info' },
      host: { name: NODE },
      json: { level: 'info', msg: 'order placed' },
      kubernetes: expect.objectContaining({
        namespace: 'shop',
        pod: expect.objectContaining({
          name: 'checkout-7d9f8b6c5-x2k4q',
          uid: '00000000-5b7e-4d2a-9c1e-6a8b4f2d1e00',
          ip: '10.0.0.7',
        }),
        container: expect.objectContaining({ name: 'web' }),
        node: { name: NODE },
        labels: { app: 'checkout', 'app_kubernetes_io/name': 'checkout', 'pod-template-hash': '7d9f8b6c5' },
        deployment: { name: 'checkout' },
      }),
      container: expect.objectContaining({ id: 'abc123', image: { name: 'shop/checkout:1.2' } }),
    });
    expect(docs[1]).toMatchObject({ message: 'plain text', stream: 'stderr' });
  });

  it('a pod whose log appears before the API knows it is enriched once the pod arrives within the wait', async () => {
    const agent = startAgent(['--kube-pod-wait-ms', '5000']);
    await agent.url();
    await podLog('shop', 'late-pod', '00000001-5b7e-4d2a-9c1e-6a8b4f2d1e01', 'app', [
      criLine(1, 'early line'),
    ]);
    await sleep(700);
    kube.addPod(
      makePod({
        name: 'late-pod',
        namespace: 'shop',
        nodeName: NODE,
        uid: '00000001-5b7e-4d2a-9c1e-6a8b4f2d1e01',
        labels: { tier: 'web' },
      }),
    );
    await es.waitForCount(1, { index: INDEX, timeoutMs: 15_000 });
    expect(sources()[0]).toMatchObject({ message: 'early line', kubernetes: { labels: { tier: 'web' } } });
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('without the pod in the API, lines go with path metadata after the bounded wait', async () => {
    await podLog('shop', 'ghost', '00000002-5b7e-4d2a-9c1e-6a8b4f2d1e02', 'app', [
      criLine(1, 'nobody knows me'),
    ]);
    const res = await runCli([...agentArgs(['--kube-pod-wait-ms', '300']), '--once']);
    expect(res.code).toBe(0);
    expect(sources()[0]).toMatchObject({
      message: 'nobody knows me',
      kubernetes: {
        namespace: 'shop',
        pod: { name: 'ghost', uid: '00000002-5b7e-4d2a-9c1e-6a8b4f2d1e02' },
        container: { name: 'app' },
      },
    });
    expect(sources()[0]!.kubernetes.labels).toBeUndefined();
  });

  it('honours the exclude annotation, for the whole pod and for one container', async () => {
    kube.addPod(
      makePod({
        name: 'quiet',
        namespace: 'a',
        nodeName: NODE,
        uid: '11111111-5b7e-4d2a-9c1e-6a8b4f2d1e11',
        annotations: { 'logferry.io/exclude': 'true' },
      }),
    );
    kube.addPod(
      makePod({
        name: 'half',
        namespace: 'a',
        nodeName: NODE,
        uid: '22222222-5b7e-4d2a-9c1e-6a8b4f2d1e22',
        annotations: { 'logferry.io/exclude-sidecar': 'true' },
        containers: [
          { name: 'main', image: 'x' },
          { name: 'sidecar', image: 'y' },
        ],
      }),
    );
    await podLog('a', 'quiet', '11111111-5b7e-4d2a-9c1e-6a8b4f2d1e11', 'app', [criLine(1, 'excluded pod')]);
    await podLog('a', 'half', '22222222-5b7e-4d2a-9c1e-6a8b4f2d1e22', 'main', [criLine(2, 'kept')]);
    await podLog('a', 'half', '22222222-5b7e-4d2a-9c1e-6a8b4f2d1e22', 'sidecar', [
      criLine(3, 'excluded container'),
    ]);
    const res = await runCli([...agentArgs(), '--once']);
    expect(res.code).toBe(0);
    expect(sources().map((d) => d.message)).toEqual(['kept']);
  });

  it('keeps shipping with path metadata while the API is down at start, and readiness says so', async () => {
    await kube.stop();
    await podLog('shop', 'p', '00000003-5b7e-4d2a-9c1e-6a8b4f2d1e03', 'app', [
      criLine(1, 'while the API is down'),
    ]);
    const agent = startAgent(['--kube-pod-wait-ms', '200']);
    const url = await agent.url();
    await es.waitForCount(1, { index: INDEX });
    const notReady = await fetch(`${url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(((await notReady.json()) as { metadata: { ready: boolean } }).metadata.ready).toBe(false);
    await kube.restart();
    let ready = 0;
    for (let i = 0; i < 100 && ready !== 200; i++) {
      await sleep(200);
      ready = (await fetch(`${url}/readyz`)).status;
    }
    expect(ready).toBe(200);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('serves /healthz, /status and Prometheus /metrics whose counters move', async () => {
    await podLog('shop', 'm', '00000004-5b7e-4d2a-9c1e-6a8b4f2d1e04', 'app', [
      criLine(1, 'one'),
      criLine(2, 'two'),
    ]);
    kube.addPod(
      makePod({ name: 'm', namespace: 'shop', nodeName: NODE, uid: '00000004-5b7e-4d2a-9c1e-6a8b4f2d1e04' }),
    );
    const agent = startAgent();
    const url = await agent.url();
    await es.waitForCount(2, { index: INDEX });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const status = (await (await fetch(`${url}/status`)).json()) as { files: Array<{ path: string }> };
    expect(status.files.map((f) => f.path.endsWith('0.log'))).toEqual([true]);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    // every non-comment line is `name{labels} value`
    for (const line of metrics.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEInfNa]+$/);
    }
    expect(metrics).toMatch(/^logferry_lines_read_total 2$/m);
    expect(metrics).toMatch(/^logferry_records_total\{outcome="sent"\} 2$/m);
    await appendFile(
      join(dir, 'pods', 'shop_m_00000004-5b7e-4d2a-9c1e-6a8b4f2d1e04', 'app', '0.log'),
      criLine(3, 'three'),
    );
    await es.waitForCount(3, { index: INDEX });
    await sleep(100);
    const after = await (await fetch(`${url}/metrics`)).text();
    expect(after).toMatch(/^logferry_records_total\{outcome="sent"\} 3$/m);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('SIGTERM during a 429 storm exits 0 within the timeout, checkpoints saved, nothing lost on restart', async () => {
    kube.addPod(
      makePod({ name: 's', namespace: 'shop', nodeName: NODE, uid: '00000005-5b7e-4d2a-9c1e-6a8b4f2d1e05' }),
    );
    const lines = Array.from({ length: 500 }, (_, i) => criLine(i, `seq=${i}`));
    await podLog('shop', 's', '00000005-5b7e-4d2a-9c1e-6a8b4f2d1e05', 'app', lines.slice(0, 250));
    es.fault({ kind: 'status', status: 429, forMs: 60_000 });
    const agent = startAgent(['--shutdown-timeout', '2000', '--retry-max-ms', '200']);
    await agent.url();
    await sleep(1500);
    const t0 = Date.now();
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(es.count(INDEX)).toBe(0);
    const positions = JSON.parse(await readFile(join(dir, 'state', 'positions.json'), 'utf8'));
    expect(positions.files).toHaveLength(1);
    expect(positions.files[0].offset).toBe(0);
    es.clearFaults();
    await appendFile(
      join(dir, 'pods', 'shop_s_00000005-5b7e-4d2a-9c1e-6a8b4f2d1e05', 'app', '0.log'),
      lines.slice(250).join(''),
    );
    const res = await runCli([...agentArgs(), '--once']);
    expect(res.code).toBe(0);
    const seqs = sources().map((d) => Number(/seq=(\d+)/.exec(d.message)?.[1]));
    expect(new Set(seqs).size).toBe(500);
    expect(seqs).toHaveLength(500);
  });

  it('a pod deleted while its logs still drain keeps its metadata for the TTL', async () => {
    const uid = '33333333-5b7e-4d2a-9c1e-6a8b4f2d1e33';
    kube.addPod(makePod({ name: 'gone', namespace: 'shop', nodeName: NODE, uid, labels: { app: 'gone' } }));
    const file = await podLog('shop', 'gone', uid, 'app', [criLine(1, 'before delete')]);
    const agent = startAgent();
    await agent.url();
    await es.waitForCount(1, { index: INDEX });
    kube.deletePod('shop', 'gone');
    await sleep(300);
    await appendFile(file, criLine(2, 'after delete'));
    await es.waitForCount(2, { index: INDEX });
    expect(sources().map((d) => [d.message, d.kubernetes?.labels?.app])).toEqual([
      ['before delete', 'gone'],
      ['after delete', 'gone'],
    ]);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('SIGHUP applies reloadable keys (exclusions) and reports the others as needing a restart', async () => {
    const cfg = join(dir, 'config.yaml');
    await writeFile(cfg, 'maxOpenFiles: 100\n');
    const a = '44444444-5b7e-4d2a-9c1e-6a8b4f2d1e44';
    const b = '55555555-5b7e-4d2a-9c1e-6a8b4f2d1e55';
    kube.addPod(makePod({ name: 'keep', namespace: 'shop', nodeName: NODE, uid: a }));
    kube.addPod(makePod({ name: 'noisy', namespace: 'batch', nodeName: NODE, uid: b }));
    const keep = await podLog('shop', 'keep', a, 'app', [criLine(1, 'keep 1')]);
    const noisy = await podLog('batch', 'noisy', b, 'app', [criLine(1, 'noisy 1')]);
    const agent = startAgent(['--config', cfg]);
    await agent.url();
    await es.waitForCount(2, { index: INDEX });
    await writeFile(cfg, 'maxOpenFiles: 50\nexclude:\n  namespaces: [batch]\n');
    agent.child.kill('SIGHUP');
    for (
      let i = 0;
      i < 100 && !agent.logs.some((l) => String(l.message).startsWith('SIGHUP: applied'));
      i++
    ) {
      await sleep(50);
    }
    expect(agent.logs.map((l) => l.message)).toEqual(
      expect.arrayContaining([
        'SIGHUP: maxOpenFiles cannot change without a restart; keeping the old values',
        'SIGHUP: applied exclude.namespaces',
      ]),
    );
    await sleep(300);
    await appendFile(noisy, criLine(2, 'noisy 2'));
    await appendFile(keep, criLine(2, 'keep 2'));
    await es.waitForCount(3, { index: INDEX });
    await sleep(500);
    expect(
      sources()
        .map((d) => d.message)
        .sort(),
    ).toEqual(['keep 1', 'keep 2', 'noisy 1']);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('the logferry.io/parser annotation chooses the format; --read-from tail skips what was there', async () => {
    const a = '66666666-5b7e-4d2a-9c1e-6a8b4f2d1e66';
    kube.addPod(
      makePod({
        name: 'plain',
        namespace: 'shop',
        nodeName: NODE,
        uid: a,
        annotations: { 'logferry.io/parser': 'text' },
      }),
    );
    // a CRI line read as plain text keeps its prefix in the message and gets no stream
    await podLog('shop', 'plain', a, 'app', [criLine(1, '{"level":"info"}')]);
    const res = await runCli([...agentArgs(), '--once']);
    expect(res.code).toBe(0);
    expect(sources()[0]).toMatchObject({ message: criLine(1, '{"level":"info"}').trimEnd() });
    expect(sources()[0]!.stream).toBeUndefined();
    expect(sources()[0]!.json).toBeUndefined();

    const b = '77777777-5b7e-4d2a-9c1e-6a8b4f2d1e77';
    kube.addPod(makePod({ name: 'old', namespace: 'shop', nodeName: NODE, uid: b }));
    await podLog('shop', 'old', b, 'app', [criLine(1, 'written before the first start')]);
    const fresh = join(dir, 'state-tail');
    const tail = await runCli([...agentArgs(['--state-dir', fresh, '--read-from', 'tail']), '--once']);
    expect(tail.code).toBe(0);
    expect(sources().map((d) => d.message)).not.toContain('written before the first start');
  });

  it.each([
    ['garbage', (k: FakeKubernetes) => k.setGarbage(true)],
    ['a response that never ends', (k: FakeKubernetes) => k.setHang(true)],
  ])(
    'an API server sending %s: lines still ship with path metadata, readiness says why',
    async (_label, hostile) => {
      hostile(kube);
      await podLog('shop', 'h', '88888888-5b7e-4d2a-9c1e-6a8b4f2d1e88', 'app', [
        criLine(1, 'despite the API'),
      ]);
      const agent = startAgent(['--kube-pod-wait-ms', '300']);
      const url = await agent.url();
      await es.waitForCount(1, { index: INDEX });
      expect(sources()[0]).toMatchObject({ message: 'despite the API', kubernetes: { namespace: 'shop' } });
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(503);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
    },
  );

  it('a pod with 10,000 labels with odd characters is shipped with every label, de-dotted', async () => {
    const labels: Record<string, string> = {};
    for (let i = 0; i < 10_000; i++) labels[`team.example.com/k${i}`] = `v"${i}\\é`;
    const uid = '99999999-5b7e-4d2a-9c1e-6a8b4f2d1e99';
    kube.addPod(makePod({ name: 'many', namespace: 'shop', nodeName: NODE, uid, labels }));
    await podLog('shop', 'many', uid, 'app', [criLine(1, 'labelled')]);
    const res = await runCli([...agentArgs(), '--once']);
    expect(res.code).toBe(0);
    const got = sources()[0]!.kubernetes.labels as Record<string, string>;
    expect(Object.keys(got)).toHaveLength(10_000);
    expect(got['team_example_com/k9999']).toBe('v"9999\\é');
  });

  it('refuses a second agent on the same state directory', async () => {
    const agent = startAgent();
    await agent.url();
    const second = await runCli([...agentArgs(), '--once']);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/state directory .* is in use by another logferry/);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('a bad config value is one line naming key, value and expectation, exit 2; check-config agrees', async () => {
    const cfg = join(dir, 'bad.yaml');
    await writeFile(cfg, 'output:\n  concurrency: zero\n');
    const run = await runCli(['agent', '--config', cfg]);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(
      `logferry: ${cfg}: output.concurrency: "zero" is not valid: expected a positive whole number`,
    );
    const check = await runCli(['check-config', cfg]);
    expect(check.code).toBe(2);
    await writeFile(cfg, 'output:\n  concurrency: 4\n');
    const ok = await runCli(['check-config', cfg]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(`${cfg}: ok\n`);
  });
});
