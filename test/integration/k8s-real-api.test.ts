// The agent against a real kube-apiserver (v1.34.4, with etcd, on loopback; issue #17): the RBAC shipped in
// k8s/rbac.yaml, a service-account token from the TokenRequest API in a projected-style directory, list + watch
// with fieldSelector spec.nodeName, status patched as a kubelet would, deletion, 410 Gone after etcd compaction,
// a ClusterRole without a verb, a refused token. The fake API (test/fakes/fake-kubernetes.ts) stays for faults a
// real server cannot make on demand (hangs, garbage, exact timing).
//
// Runs when LOGFERRY_TEST_KUBE_URL is set: `scripts/kube-test-server.sh start && eval "$(scripts/kube-test-server.sh
// env)" && npm run test:kube` (docs/testing-kubernetes.md). One server serves the whole file; every test uses
// its own node name and namespaces, so tests never see each other's pods and the file can be rerun on the
// same server.
import { type ChildProcess, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { type FakeElasticsearch, startFakeElasticsearch } from '../fakes/fake-elasticsearch.ts';
import { type Agent, type AgentEnv, startAgent } from '../helpers/agent.ts';
import { criLine, ROOT, sleep, tempDir } from '../helpers/cli.ts';
import {
  api,
  apiOk,
  type CreatedPod,
  type CutProxy,
  compactEtcd,
  createNamespace,
  createPod,
  createToken,
  deletePodNow,
  kubectl,
  patchPodMetadata,
  patchPodStatus,
  realKube,
  startCutProxy,
  writeServiceAccountDir,
} from '../helpers/kube-real.ts';

const kube = realKube();
// The Helm chart (#16), when this checkout has it and helm is built (scripts/helm.sh; not built here if missing).
const CHART = process.env.LOGFERRY_TEST_CHART_DIR ?? join(ROOT, 'charts/logferry');
const HELM = ((): string | undefined => {
  if (process.env.LOGFERRY_HELM) return process.env.LOGFERRY_HELM;
  const script = join(ROOT, 'scripts/helm.sh');
  if (!existsSync(script)) return undefined;
  const found = spawnSync('bash', [script, 'path'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
})();
const INDEX = 'logs-kubernetes.container_logs-default';
const AGENT_NS = 'logferry';
const AGENT_SA = 'logferry';

// biome-ignore lint/suspicious/noExplicitAny: shipped documents and API objects are read by path in assertions
type Source = Record<string, any>;

let dir: string;
let cleanup: () => Promise<void>;
let es: FakeElasticsearch;
const children: ChildProcess[] = [];
const proxies: CutProxy[] = [];
/** a token for the agent's ServiceAccount as k8s/rbac.yaml ships it */
let agentToken: string;

const suffix = (): string => randomBytes(3).toString('hex');
const containerId = (): string => randomBytes(32).toString('hex');

async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Appends CRI lines to the kubelet-style file of a pod created in the API (its real uid in the path). */
async function podLog(pod: CreatedPod, container: string, lines: string[], restart = 0): Promise<string> {
  const { namespace, name, uid } = pod.metadata;
  const d = join(dir, 'pods', `${namespace}_${name}_${uid}`, container);
  await mkdir(d, { recursive: true });
  const file = join(d, `${restart}.log`);
  await appendFile(file, lines.join(''));
  return file;
}

const docs = (): Source[] => es.docs(INDEX).map((d) => d.source as Source);
const docsOf = (pod: CreatedPod): Source[] =>
  docs().filter((d) => d.kubernetes?.pod?.uid === pod.metadata.uid);

interface Connection {
  kind: 'in-cluster' | 'kubeconfig';
  /** the API port the agent is pointed at (a proxy's, for partitions); default the server's */
  port?: number;
  token?: string;
}

/** The agent as a DaemonSet pod runs it: service-account directory + KUBERNETES_SERVICE_HOST/PORT, or a kubeconfig. */
async function startRealAgent(nodeName: string, conn: Connection, extra: string[] = []): Promise<Agent> {
  const k = kube!;
  const token = conn.token ?? agentToken;
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.KUBERNETES_SERVICE_HOST;
  delete env.KUBERNETES_SERVICE_PORT;
  delete env.KUBECONFIG;
  delete env.NODE_NAME;
  const args = [...extra];
  if (conn.kind === 'in-cluster') {
    const sa = await writeServiceAccountDir(join(dir, `sa-${suffix()}`), k, token, AGENT_NS);
    env.KUBERNETES_SERVICE_HOST = k.host;
    env.KUBERNETES_SERVICE_PORT = String(conn.port ?? k.port);
    args.push('--kube-service-account-dir', sa);
  } else {
    const file = join(dir, `kubeconfig-${suffix()}`);
    await writeFile(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '  - name: test',
        '    cluster:',
        `      server: https://${k.host}:${conn.port ?? k.port}`,
        `      certificate-authority: ${k.caFile}`,
        'users:',
        '  - name: logferry',
        '    user:',
        `      token: ${token}`,
        'contexts:',
        '  - name: test',
        '    context: { cluster: test, user: logferry }',
        'current-context: test',
        '',
      ].join('\n'),
    );
    env.KUBECONFIG = file;
  }
  const agentEnv: AgentEnv = { dir, kubeUrl: '', esUrl: es.url, children, nodeName };
  return startAgent(agentEnv, args, 'pipe', env);
}

async function readyz(agent: Agent): Promise<{ status: number; body: Source }> {
  const res = await fetch(`${await agent.url()}/readyz`);
  return { status: res.status, body: (await res.json()) as Source };
}

async function statusOf(agent: Agent): Promise<Source> {
  return (await (await fetch(`${await agent.url()}/status`)).json()) as Source;
}

async function waitReady(agent: Agent): Promise<void> {
  await until('the agent to be ready (pod watch synced)', async () => (await readyz(agent)).status === 200);
}

const warnings = (agent: Agent, pattern: RegExp) =>
  agent.logs.filter((l) => l.level === 'warn' && pattern.test(String(l.message)));

describe.skipIf(kube === undefined)(`a real kube-apiserver (${kube?.version ?? 'not running'})`, () => {
  const k = kube!;

  beforeAll(async () => {
    // As shipped: the namespace, the ServiceAccount, the ClusterRole and its binding.
    await kubectl(k, ['apply', '-f', join(ROOT, 'k8s/namespace.yaml'), '-f', join(ROOT, 'k8s/rbac.yaml')]);
    agentToken = await createToken(k, AGENT_NS, AGENT_SA);
  });

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('logferry-kube-'));
    es = await startFakeElasticsearch();
  });

  afterEach(async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    for (const p of proxies.splice(0)) await p.close();
    await es.close();
    await cleanup();
  });

  it('the server behaves as the fake assumes: field selector, namespace label, 403 body, 410 after compaction', async () => {
    const node = `node-${suffix()}`;
    const ns = `check-${suffix()}`;
    await createNamespace(k, ns, { team: 'payments' });
    const mine = await createPod(k, { name: 'mine', namespace: ns, nodeName: node });
    await createPod(k, { name: 'theirs', namespace: ns, nodeName: `${node}-other` });

    const listed = await apiOk<{ metadata: { resourceVersion: string }; items: CreatedPod[] }>(
      k,
      'GET',
      `/api/v1/pods?fieldSelector=spec.nodeName%3D${node}`,
    );
    expect(listed.items.map((p) => p.metadata.name)).toEqual(['mine']);
    // list items come without kind/apiVersion, as the fake sends them
    expect((listed.items[0] as Source).kind).toBeUndefined();

    const nsObj = await apiOk<{ metadata: { labels: Record<string, string> } }>(
      k,
      'GET',
      `/api/v1/namespaces/${ns}`,
    );
    expect(nsObj.metadata.labels).toEqual({ team: 'payments', 'kubernetes.io/metadata.name': ns });

    // The agent's ServiceAccount may read pods but not Secrets; the refusal names user, verb and scope.
    const secrets = await api<Source>(k, 'GET', '/api/v1/secrets', undefined, { token: agentToken });
    expect(secrets.status).toBe(403);
    expect(secrets.body).toMatchObject({
      kind: 'Status',
      reason: 'Forbidden',
      code: 403,
      details: { kind: 'secrets' },
      message: `secrets is forbidden: User "system:serviceaccount:${AGENT_NS}:${AGENT_SA}" cannot list resource "secrets" in API group "" at the cluster scope`,
    });
    const bogus = await api<Source>(k, 'GET', '/api/v1/pods', undefined, { token: 'not-a-token' });
    expect([bogus.status, bogus.body.message, bogus.body.reason]).toEqual([
      401,
      'Unauthorized',
      'Unauthorized',
    ]);

    // A watch resumed from a compacted version: HTTP 200, one ERROR event with a 410 Status, end of stream.
    const before = listed.metadata.resourceVersion;
    await patchPodMetadata(k, ns, 'mine', { labels: { changed: 'once' } });
    const last = await patchPodMetadata(k, ns, 'mine', { labels: { changed: 'twice' } });
    const compactedAt = Number(last.metadata.resourceVersion);
    await compactEtcd(k, compactedAt);
    const watchFrom = async (rv: string | number) => {
      const answer = await api(
        k,
        'GET',
        `/api/v1/pods?watch=true&resourceVersion=${rv}&fieldSelector=spec.nodeName%3D${node}&timeoutSeconds=2`,
      );
      expect(answer.status).toBe(200);
      return answer.text
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { type: string; object: Source });
    };
    expect(await watchFrom(before)).toEqual([
      {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: 'The resourceVersion for the provided watch is too old.',
          reason: 'Expired',
          code: 410,
        },
      },
    ]);
    // Resumed exactly one revision before the compaction, where a pod changed: not 410 but a 500, every time
    // (the change arrives without its previous state). The agent relists on it (list-watch.ts).
    for (let attempt = 0; attempt < 2; attempt++) {
      const events = await watchFrom(compactedAt - 1);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        type: 'ERROR',
        object: { kind: 'Status', code: 500, reason: 'InternalError' },
      });
      expect(events[0]!.object.message).toContain('etcd event received with PrevKv=nil');
    }
    // From the compaction revision itself: served (nothing to send within the timeout).
    expect(await watchFrom(compactedAt)).toEqual([]);
    expect(mine.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
  });

  describe.each<Connection['kind']>(['in-cluster', 'kubeconfig'])('the agent (%s)', (kind) => {
    it("enriches only this node's pods with real labels, annotations, owner and namespace labels; a status patch is picked up live", async () => {
      const node = `node-${suffix()}`;
      const ns = `shop-${suffix()}`;
      await createNamespace(k, ns, { team: 'payments', 'cost.example.com/center': 'cc-7' });
      const web = await createPod(k, {
        name: 'web-7d9f8b6c5-x2k4q',
        namespace: ns,
        nodeName: node,
        labels: { app: 'web', 'app.kubernetes.io/name': 'web', 'pod-template-hash': '7d9f8b6c5' },
        annotations: { 'example.com/owner': 'team-a', 'other.io/secret-ish': 'not copied' },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: 'web-7d9f8b6c5',
            uid: '6f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b',
            controller: true,
          },
        ],
        containers: [{ name: 'app', image: 'registry.example/web:1.4' }],
      });
      const elsewhere = await createPod(k, {
        name: 'elsewhere',
        namespace: ns,
        nodeName: `${node}-other`,
        labels: { app: 'elsewhere' },
      });

      const agent = await startRealAgent(node, { kind }, [
        '--kube-namespace-labels',
        '--kube-annotations',
        'example.com/*',
        '--kube-pod-wait-ms',
        '1000',
      ]);
      await waitReady(agent);
      await podLog(web, 'app', [criLine(1, 'before the kubelet reported')]);
      await podLog(elsewhere, 'app', [criLine(1, 'a file whose pod runs on another node')]);
      await es.waitForCount(2, { index: INDEX, timeoutMs: 20_000 });

      const [first] = docsOf(web);
      expect(first).toMatchObject({
        message: 'before the kubelet reported',
        kubernetes: {
          namespace: ns,
          pod: { name: 'web-7d9f8b6c5-x2k4q', uid: web.metadata.uid },
          container: { name: 'app', restart_count: 0 },
          node: { name: node },
          labels: { app: 'web', 'app_kubernetes_io/name': 'web', 'pod-template-hash': '7d9f8b6c5' },
          annotations: { 'example_com/owner': 'team-a' },
          namespace_labels: {
            team: 'payments',
            'cost_example_com/center': 'cc-7',
            'kubernetes_io/metadata_name': ns,
          },
          replicaset: { name: 'web-7d9f8b6c5' },
          deployment: { name: 'web' },
        },
        container: { image: { name: 'registry.example/web:1.4' } },
      });
      expect(Object.keys(first!.kubernetes.annotations)).toEqual(['example_com/owner']);
      // no kubelet yet: no container id, no pod IP
      expect(first!.container.id).toBeUndefined();
      expect(first!.kubernetes.pod.ip).toBeUndefined();

      // The pod on the other node is never listed: its file goes with what its path says.
      const [other] = docsOf(elsewhere);
      expect(other!.kubernetes.labels).toBeUndefined();
      expect(other!.kubernetes.pod).toEqual({ name: 'elsewhere', uid: elsewhere.metadata.uid });

      // The kubelet reports the running container: the next lines carry its id, with no restart.
      const id = containerId();
      await patchPodStatus(k, ns, web.metadata.name, [
        { name: 'app', image: 'registry.example/web:1.4', containerId: `containerd://${id}` },
      ]);
      let i = 2;
      await until('a document with the container id', async () => {
        await podLog(web, 'app', [criLine(i++, `after the status, line ${i}`)]);
        await sleep(300);
        return docsOf(web).some((d) => d.container?.id === id) || undefined;
      });
      const later = docsOf(web).slice(-1)[0]!;
      expect(later).toMatchObject({
        container: { id, runtime: 'containerd', image: { name: 'registry.example/web:1.4' } },
        kubernetes: { pod: { ip: '10.244.1.7' } },
      });
      // needs no verb beyond k8s/rbac.yaml, and said nothing about access
      expect(warnings(agent, /RBAC|401|403/)).toEqual([]);
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
    });
  });

  it.skipIf(!existsSync(CHART) || HELM === undefined)(
    "the Helm chart's RBAC, as rendered, is all the agent needs too",
    async () => {
      const release = `lf-${suffix()}`;
      const releaseNs = `${release}-ns`;
      await createNamespace(k, releaseNs);
      const rendered = spawnSync(
        HELM!,
        ['template', release, CHART, '-n', releaseNs, '--show-only', 'templates/rbac.yaml'],
        { encoding: 'utf8' },
      );
      expect(rendered.status, rendered.stderr).toBe(0);
      const objects = parseAllDocuments(rendered.stdout)
        .map((d) => d.toJS() as Source | null)
        .filter((o): o is Source => o !== null);
      expect(objects.map((o) => o.kind).sort()).toEqual([
        'ClusterRole',
        'ClusterRoleBinding',
        'ServiceAccount',
      ]);
      await kubectl(k, ['apply', '-f', '-'], rendered.stdout);
      const sa = objects.find((o) => o.kind === 'ServiceAccount')!.metadata.name as string;
      const token = await createToken(k, releaseNs, sa);

      const node = `node-${suffix()}`;
      const ns = `helm-${suffix()}`;
      await createNamespace(k, ns, { team: 'charts' });
      const pod = await createPod(k, { name: 'p', namespace: ns, nodeName: node, labels: { via: 'helm' } });
      const agent = await startRealAgent(node, { kind: 'in-cluster', token }, ['--kube-namespace-labels']);
      await waitReady(agent);
      await podLog(pod, 'app', [criLine(1, 'with the chart’s service account')]);
      await until('the line', () => docsOf(pod).length === 1 || undefined);
      expect(docsOf(pod)[0]!.kubernetes).toMatchObject({
        labels: { via: 'helm' },
        namespace_labels: { team: 'charts' },
      });
      expect(warnings(agent, /RBAC|401|403/)).toEqual([]);
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
    },
  );

  it('pods created and deleted (grace period 0) while the agent runs are picked up', async () => {
    const node = `node-${suffix()}`;
    const ns = `churn-${suffix()}`;
    await createNamespace(k, ns);
    const agent = await startRealAgent(node, { kind: 'in-cluster' }, ['--kube-deleted-pod-ttl-ms', '1500']);
    await waitReady(agent);

    const late = await createPod(k, { name: 'late', namespace: ns, nodeName: node, labels: { wave: 'one' } });
    await podLog(late, 'app', [criLine(1, 'from a pod created after the agent synced')]);
    await until(
      'the late pod enriched',
      () => docsOf(late)[0]?.kubernetes?.labels?.wave === 'one' || undefined,
    );

    expect((await statusOf(agent)).metadata.cachedPods).toBe(1);

    // Deleted with grace period 0 (without a kubelet, anything else only sets a deletion timestamp): its last
    // lines still drain enriched, then the TTL evicts it.
    await deletePodNow(k, ns, 'late');
    await podLog(late, 'app', [criLine(2, 'the last line after deletion')]);
    await until('the last line', () => docsOf(late).length === 2 || undefined);
    expect(docsOf(late)[1]).toMatchObject({
      message: 'the last line after deletion',
      kubernetes: { labels: { wave: 'one' } },
    });
    await until(
      'the deleted pod evicted after its TTL',
      async () => (await statusOf(agent)).metadata.cachedPods === 0 || undefined,
    );
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('a watch broken by etcd compaction (410 Gone) is relisted: nothing lost, nothing duplicated', async () => {
    const node = `node-${suffix()}`;
    const ns = `compact-${suffix()}`;
    await createNamespace(k, ns);
    const a = await createPod(k, { name: 'a', namespace: ns, nodeName: node, labels: { version: 'one' } });
    await createPod(k, { name: 'e', namespace: ns, nodeName: node, labels: { doomed: 'yes' } });
    const proxy = await startCutProxy(k.host, k.port);
    proxies.push(proxy);
    const agent = await startRealAgent(node, { kind: 'in-cluster', port: proxy.port }, [
      '--kube-deleted-pod-ttl-ms',
      '1000',
      // d1's file shows up during the partition: it waits for its pod
      '--kube-pod-wait-ms',
      '40000',
    ]);
    await waitReady(agent);
    await podLog(a, 'app', [criLine(1, 'a before')]);
    await until('the first document', () => docsOf(a).length === 1 || undefined);
    expect((await statusOf(agent)).metadata.cachedPods).toBe(2);

    // A partition between the node and the API; meanwhile the cluster moves on and etcd is compacted past the
    // agent's resourceVersion.
    proxy.cut();
    await until('the agent to notice', async () => (await readyz(agent)).status === 503);
    await patchPodMetadata(k, ns, 'a', { labels: { version: 'two' } });
    const d1 = await createPod(k, { name: 'd1', namespace: ns, nodeName: node, labels: { wave: 'during' } });
    const d2 = await createPod(k, { name: 'd2', namespace: ns, nodeName: node, labels: { wave: 'during' } });
    await deletePodNow(k, ns, 'e');
    // the kubelet starts d1 and it logs before the agent can know the pod
    await podLog(d1, 'app', [criLine(1, 'd1 during the partition')]);
    await compactEtcd(k);
    await sleep(1_000);
    proxy.resume();

    await until(
      'the 410 relist',
      () =>
        agent.logs.some((l) => String(l.message).startsWith('kubernetes watch expired (410 Gone')) ||
        undefined,
      40_000,
    );
    await waitReady(agent);
    // What happened during the partition is all there: new pods, the changed label, the deletion.
    await podLog(d2, 'app', [criLine(1, 'd2')]);
    await podLog(a, 'app', [criLine(1, 'a after, restarted')], 1);
    await es.waitForCount(4, { index: INDEX, timeoutMs: 20_000 });
    expect(docsOf(d1)[0]?.kubernetes?.labels).toEqual({ wave: 'during' });
    expect(docsOf(d2)[0]?.kubernetes?.labels).toEqual({ wave: 'during' });
    expect(docsOf(a).find((d) => d.message === 'a after, restarted')?.kubernetes?.labels).toEqual({
      version: 'two',
    });
    await until(
      'the deleted pod evicted',
      async () => (await statusOf(agent)).metadata.cachedPods === 3 || undefined,
    );
    // every line once
    await sleep(500);
    expect(
      docs()
        .map((d) => d.message)
        .sort(),
    ).toEqual(['a after, restarted', 'a before', 'd1 during the partition', 'd2']);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('a watch resumed exactly one revision before the compaction (500 "PrevKv=nil", every time) is relisted', async () => {
    const node = `node-${suffix()}`;
    const ns = `prevkv-${suffix()}`;
    await createNamespace(k, ns);
    await createPod(k, { name: 'p', namespace: ns, nodeName: node, labels: { step: '0' } });
    const proxy = await startCutProxy(k.host, k.port);
    proxies.push(proxy);
    const agent = await startRealAgent(node, { kind: 'in-cluster', port: proxy.port });
    await waitReady(agent);

    // The agent's watch delivers the change at revision X: it would resume from X. Cut, change the pod once more
    // (revision Y) and compact at Y. Resumed from X, the watch starts at Y itself: the 500, not a 410, when
    // nothing else was written between X and Y (the API server renews its own leases now and then: try again).
    let step = 0;
    for (;;) {
      step += 1;
      expect(step).toBeLessThan(6);
      const x = Number(
        (await patchPodMetadata(k, ns, 'p', { labels: { step: `${step}a` } })).metadata.resourceVersion,
      );
      await sleep(1_000);
      proxy.cut();
      await until('the agent to notice', async () => (await readyz(agent)).status === 503);
      const y = Number(
        (await patchPodMetadata(k, ns, 'p', { labels: { step: `${step}b` } })).metadata.resourceVersion,
      );
      if (y === x + 1) {
        await compactEtcd(k, y);
        break;
      }
      proxy.resume();
      await waitReady(agent);
    }
    proxy.resume();
    // Before the fix the agent resumed from X again and again and stayed not ready.
    await until('ready again', async () => (await readyz(agent)).status === 200, 40_000);
    const pod = await apiOk<CreatedPod>(k, 'GET', `/api/v1/namespaces/${ns}/pods/p`);
    await podLog(pod, 'app', [criLine(1, 'after the 500')]);
    await until('the line', () => docsOf(pod).length === 1 || undefined);
    expect(docsOf(pod)[0]!.kubernetes.labels).toEqual({ step: `${step}b` });
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it.each(['watch', 'list'])(
    'a ClusterRole without %s on pods: one warning naming RBAC and the verb, not ready, lines still shipped',
    async (missing) => {
      const node = `node-${suffix()}`;
      const ns = `rbac-${suffix()}`;
      const name = `logferry-no-${missing}-${suffix()}`;
      await createNamespace(k, ns);
      const verbs = ['get', 'list', 'watch'].filter((v) => v !== missing);
      await kubectl(
        k,
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'List',
          items: [
            { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: AGENT_NS } },
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'ClusterRole',
              metadata: { name },
              rules: [{ apiGroups: [''], resources: ['pods', 'namespaces'], verbs }],
            },
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'ClusterRoleBinding',
              metadata: { name },
              roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
              subjects: [{ kind: 'ServiceAccount', name, namespace: AGENT_NS }],
            },
          ],
        }),
      );
      const token = await createToken(k, AGENT_NS, name);
      const pod = await createPod(k, {
        name: 'listed',
        namespace: ns,
        nodeName: node,
        labels: { seen: 'by-list' },
      });
      const agent = await startRealAgent(node, { kind: 'in-cluster', token }, ['--kube-pod-wait-ms', '500']);
      await until('the RBAC warning', () => warnings(agent, /RBAC/).length > 0 || undefined);
      const ready = await readyz(agent);
      expect(ready.status).toBe(503);
      expect(ready.body.metadata).toMatchObject({ ready: false, state: 'unreachable' });

      await podLog(pod, 'app', [criLine(1, 'shipped meanwhile')]);
      await until('the line', () => docsOf(pod).length === 1 || undefined);
      // With list allowed the agent has what the list gave; without it, only what the path says.
      expect(docsOf(pod)[0]!.kubernetes.labels).toEqual(
        missing === 'watch' ? { seen: 'by-list' } : undefined,
      );
      await sleep(2_000); // a few retries later: still one line
      expect(warnings(agent, /RBAC/).map((l) => l.message)).toEqual([
        `kubernetes API: RBAC forbids the agent to ${missing} pods (HTTP 403: pods is forbidden: User "system:serviceaccount:${AGENT_NS}:${name}" cannot ${missing} resource "pods" in API group "" at the cluster scope): its ClusterRole needs get, list and watch on pods (see k8s/rbac.yaml); not ready, retrying with backoff; meanwhile lines ship with the pod metadata cached so far (path metadata only for pods never listed)`,
      ]);
      const metrics = await (await fetch(`${await agent.url()}/metrics`)).text();
      expect(Number(/^logferry_metadata_api_errors_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(1);
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
    },
  );

  it('a rotated projected token: the new token file is picked up without a restart once the old token dies', async () => {
    const node = `node-${suffix()}`;
    const ns = `rotate-${suffix()}`;
    await createNamespace(k, ns);
    // Tokens bound to a pod die with it (checked by the API server on every request), as a projected token
    // does when the kubelet rotates it and the old one expires. The pods run as the agent's ServiceAccount,
    // in its namespace (TokenRequest refuses to bind to a pod of another).
    const holders = [`holder-${suffix()}`, `holder-${suffix()}`];
    for (const name of holders) {
      await createPod(k, {
        name,
        namespace: AGENT_NS,
        nodeName: `${node}-nowhere`,
        serviceAccountName: AGENT_SA,
      });
    }
    const [oldToken, newToken] = await Promise.all(holders.map((h) => createToken(k, AGENT_NS, AGENT_SA, h)));

    const proxy = await startCutProxy(k.host, k.port);
    proxies.push(proxy);
    const agent = await startRealAgent(node, { kind: 'in-cluster', port: proxy.port, token: oldToken });
    await waitReady(agent);
    const saDir = agent.child.spawnargs[agent.child.spawnargs.indexOf('--kube-service-account-dir') + 1]!;

    // The kubelet writes the new token; the old one stops working.
    await writeFile(join(saDir, 'token'), newToken!);
    await deletePodNow(k, AGENT_NS, holders[0]!);
    // the API server caches a token's authentication for 10 s
    await until(
      'the old token to be refused',
      async () =>
        (await api(k, 'GET', '/api/v1/pods?limit=1', undefined, { token: oldToken })).status === 401 ||
        undefined,
      30_000,
    );

    // The next connection needs a token: the watch is cut, as an API server restart would.
    proxy.cut();
    await until('the agent to notice', async () => (await readyz(agent)).status === 503);
    proxy.resume();
    // The client re-reads the token file every minute: ready again within that (plus backoff), no restart.
    await until('ready with the new token', async () => (await readyz(agent)).status === 200, 100_000);
    const pod = await createPod(k, {
      name: 'after-rotation',
      namespace: ns,
      nodeName: node,
      labels: { token: 'new' },
    });
    await podLog(pod, 'app', [criLine(1, 'after the rotation')]);
    await until('the line enriched', () => docsOf(pod)[0]?.kubernetes?.labels?.token === 'new' || undefined);
    expect(agent.child.exitCode).toBeNull();
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  }, 150_000);

  it('a bogus token: 401 reported once and clearly, not ready, lines shipped with path metadata', async () => {
    const node = `node-${suffix()}`;
    const ns = `bogus-${suffix()}`;
    await createNamespace(k, ns);
    const pod = await createPod(k, { name: 'p', namespace: ns, nodeName: node, labels: { never: 'seen' } });
    const agent = await startRealAgent(node, { kind: 'in-cluster', token: 'not-a-real-token' }, [
      '--kube-pod-wait-ms',
      '500',
    ]);
    await until('the warning', () => warnings(agent, /401/).length > 0 || undefined);
    await podLog(pod, 'app', [criLine(1, 'still shipped')]);
    await until('the line', () => docsOf(pod).length === 1 || undefined);
    expect(docsOf(pod)[0]!.kubernetes.labels).toBeUndefined();
    await sleep(1_500);
    expect(warnings(agent, /401/).map((l) => l.message)).toEqual([
      "kubernetes API: the API refused the agent's credentials (HTTP 401: Unauthorized), before any RBAC check: the bearer token (the service account token file in a pod, else the kubeconfig's user) is missing, invalid or expired; not ready, retrying with backoff; meanwhile lines ship with the pod metadata cached so far (path metadata only for pods never listed)",
    ]);
    expect((await readyz(agent)).status).toBe(503);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });
});
