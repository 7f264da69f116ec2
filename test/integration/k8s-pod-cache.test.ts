// KubernetesPodSource against the fake API server (test/fakes/fake-kubernetes.ts), over real HTTP through
// @kubernetes/client-node: list, watch, resume, 410 Gone, disconnects, outages, garbage, hangs and TTL eviction.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KubernetesPodSource, type KubernetesPodSourceOptions } from '../../src/enrich/pod-cache.ts';
import type { Logger } from '../../src/telemetry/logger.ts';
import {
  type FakeKubernetes,
  type FakeResource,
  type FakeVerb,
  makePod,
  startFakeKubernetes,
} from '../fakes/fake-kubernetes.ts';

interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
  context: Record<string, unknown> | undefined;
}

function recorder(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (message, context) => lines.push({ level: 'info', message, context }),
    warn: (message, context) => lines.push({ level: 'warn', message, context }),
    error: (message, context) => lines.push({ level: 'error', message, context }),
  };
}

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let fake: FakeKubernetes | undefined;
let source: KubernetesPodSource | undefined;
let tmp: string | undefined;

afterEach(async () => {
  await source?.stop();
  await fake?.close();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  source = undefined;
  fake = undefined;
  tmp = undefined;
});

async function setup(
  opts: Partial<KubernetesPodSourceOptions> = {},
  fakeOpts: Parameters<typeof startFakeKubernetes>[0] = {},
): Promise<{ fake: FakeKubernetes; source: KubernetesPodSource; log: ReturnType<typeof recorder> }> {
  fake = await startFakeKubernetes(fakeOpts);
  const log = recorder();
  source = new KubernetesPodSource({
    nodeName: 'node-a',
    logger: log,
    connection: { kind: 'url', url: fake.url },
    backoffInitialMs: 20,
    backoffMaxMs: 200,
    healthyAfterMs: 100,
    listTimeoutMs: 1_000,
    ...opts,
  });
  return { fake, source, log };
}

const uidOf = (pod: { metadata?: { uid?: string } }): string => pod.metadata!.uid!;

describe('KubernetesPodSource', () => {
  it('fills the cache from the list, asking only for this node’s pods', async () => {
    const { fake, source, log } = await setup();
    const mine = fake.addPod(
      makePod({
        name: 'web-7c9f8b6d5-x2x9k',
        labels: { app: 'web', 'app.kubernetes.io/name': 'web', 'pod-template-hash': '7c9f8b6d5' },
        owner: { kind: 'ReplicaSet', name: 'web-7c9f8b6d5' },
        containers: [{ name: 'nginx', image: 'nginx:1.27', id: 'containerd://abc123' }],
      }),
    );
    const other = fake.addPod(makePod({ name: 'elsewhere', nodeName: 'node-b' }));
    await source.start();
    await until('synced', () => source.status().state === 'synced');

    expect(source.get(uidOf(mine))).toMatchObject({
      name: 'web-7c9f8b6d5-x2x9k',
      namespace: 'default',
      nodeName: 'node-a',
      podIp: '10.244.0.10',
      labels: { app: 'web', 'app.kubernetes.io/name': 'web' },
      owner: { kind: 'Deployment', name: 'web' },
      controller: { kind: 'ReplicaSet', name: 'web-7c9f8b6d5' },
      containers: { nginx: { id: 'containerd://abc123', image: 'nginx:1.27', restartCount: 0 } },
      deletedAtMs: undefined,
    });
    expect(source.get(uidOf(other))).toBeUndefined();
    expect(source.status()).toEqual({
      state: 'synced',
      cachedPods: 1,
      misses: 0,
      lastError: undefined,
      apiErrors: 0,
    });
    expect(log.lines).toEqual([
      { level: 'info', message: 'kubernetes pod metadata synced', context: { node: 'node-a', pods: 1 } },
    ]);

    await until('a watch', () => fake.openWatches('Pod') === 1);
    const [list, watch] = fake.requests;
    expect(list).toMatchObject({
      path: '/api/v1/pods',
      watch: false,
      query: { fieldSelector: 'spec.nodeName=node-a', resourceVersion: '0' },
    });
    expect(watch).toMatchObject({
      path: '/api/v1/pods',
      watch: true,
      query: { fieldSelector: 'spec.nodeName=node-a', allowWatchBookmarks: 'true', resourceVersion: '3' },
    });
    expect(Number(watch?.query.timeoutSeconds)).toBeGreaterThanOrEqual(300);
    for (const r of fake.requests) expect(r.query.fieldSelector).toBe('spec.nodeName=node-a');
    // A pod of another node added later is not seen either.
    fake.addPod(makePod({ name: 'elsewhere-2', nodeName: 'node-b' }));
    const later = fake.addPod(makePod({ name: 'here-2' }));
    await until('the new pod', () => source.get(uidOf(later)) !== undefined);
    expect(source.status().cachedPods).toBe(2);
  });

  it('follows ADDED, MODIFIED and DELETED from the watch', async () => {
    const { fake, source } = await setup();
    await source.start();
    await until('a watch', () => fake.openWatches('Pod') === 1);

    const pod = fake.addPod(makePod({ name: 'api', labels: { tier: 'a' } }));
    await until('ADDED', () => source.get(uidOf(pod)) !== undefined);
    fake.patchPod('default', 'api', (p) => {
      p.metadata!.labels = { tier: 'b' };
      p.status!.containerStatuses![0]!.containerID = 'containerd://def';
    });
    await until('MODIFIED', () => source.get(uidOf(pod))?.labels.tier === 'b');
    expect(source.get(uidOf(pod))?.containers.app?.id).toBe('containerd://def');

    const before = Date.now();
    fake.deletePod('default', 'api');
    await until('DELETED', () => source.get(uidOf(pod))?.deletedAtMs !== undefined);
    // Still there, with its last state, so the pod's last lines drain enriched.
    expect(source.get(uidOf(pod))).toMatchObject({ name: 'api', labels: { tier: 'b' } });
    expect(source.get(uidOf(pod))!.deletedAtMs).toBeGreaterThanOrEqual(before);
  });

  it('sees a pod scheduled onto this node as it is bound, and finds static pods under their on-disk uid', async () => {
    const { fake, source } = await setup();
    await source.start();
    await until('a watch', () => fake.openWatches('Pod') === 1);
    const pending = fake.addPod(makePod({ name: 'pending', nodeName: '' }));
    fake.patchPod('default', 'pending', (p) => {
      p.spec!.nodeName = 'node-a';
    });
    await until('the bound pod', () => source.get(uidOf(pending)) !== undefined);

    const hash = '6a6e3d0ebfa0e0cb5b4c5e1a2f4b8c6d';
    const mirror = fake.addPod(
      makePod({
        name: 'kube-apiserver-node-a',
        namespace: 'kube-system',
        annotations: { 'kubernetes.io/config.mirror': hash, 'kubernetes.io/config.hash': hash },
        owner: { kind: 'Node', name: 'node-a' },
      }),
    );
    await until('the mirror pod', () => source.get(hash) !== undefined);
    expect(source.get(hash)?.uid).toBe(uidOf(mirror));
  });

  it('waitFor resolves as soon as the pod is added, and counts a miss when it never is', async () => {
    const { fake, source } = await setup();
    await source.start();
    await until('a watch', () => fake.openWatches('Pod') === 1);

    const uid = '0b9e2c8e-6f57-4d0b-9a51-6a1f3c3b2d11';
    const started = Date.now();
    const waiting = source.waitFor(uid, 10_000);
    setTimeout(() => fake!.addPod(makePod({ name: 'late', uid })), 150);
    const meta = await waiting;
    expect(meta?.name).toBe('late');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(source.status().misses).toBe(0);

    expect(await source.waitFor('ffffffff-0000-0000-0000-000000000000', 100)).toBeUndefined();
    expect(source.status().misses).toBe(1);
    // Known pods answer at once.
    expect((await source.waitFor(uid, 0))?.name).toBe('late');
  });

  // Found against a real kube-apiserver: resumed exactly one version before a compaction, the watch gets a 500
  // ERROR event each time; resuming from the same version again never recovers, a relist does.
  it('relists after a 500 ERROR event rather than resuming from the same version again', async () => {
    const { fake, source, log } = await setup();
    const pod = fake.addPod(makePod({ name: 'p' }));
    await source.start();
    await until('a watch', () => fake.openWatches('Pod') === 1);
    await fake.stop();
    fake.patchPod('default', 'p', (p) => {
      p.metadata!.labels = { changed: 'yes' };
    });
    fake.compact();
    fake.clearRequests();
    await fake.restart();

    await until('the relist', () => source.get(uidOf(pod))?.labels.changed === 'yes');
    const requests = fake.requests.map((r) => `${r.watch ? 'watch' : 'list'} ${r.query.resourceVersion}`);
    // the resumed watch got the 500; then a list, not the same watch again
    expect(requests.slice(0, 2)).toEqual([
      `watch ${Number(fake.resourceVersion) - 1}`,
      `list ${Number(fake.resourceVersion) - 1}`,
    ]);
    await until('synced', () => source.status().state === 'synced');
    expect(log.lines.at(-1)?.message).toBe('kubernetes API reachable again; pod metadata synced');
  });

  it('relists after 410 Gone and ends up with the same state as the API', async () => {
    const { fake, source, log } = await setup();
    const stays = fake.addPod(makePod({ name: 'stays' }));
    const goes = fake.addPod(makePod({ name: 'goes' }));
    await source.start();
    await until('a watch', () => fake.openWatches('Pod') === 1);

    // Changes the agent cannot see, then the history it would resume from is compacted away.
    await fake.stop();
    fake.deletePod('default', 'goes');
    const arrives = fake.addPod(makePod({ name: 'arrives' }));
    fake.patchPod('default', 'stays', (p) => {
      p.metadata!.labels = { changed: 'yes' };
    });
    fake.compact();
    fake.clearRequests();
    await fake.restart();

    await until('the relist', () => source.get(uidOf(arrives)) !== undefined);
    expect(source.get(uidOf(stays))?.labels).toEqual({ changed: 'yes' });
    expect(source.get(uidOf(goes))?.deletedAtMs).toBeDefined();
    await until('a new watch', () => fake.openWatches('Pod') === 1);

    const watches = fake.requests.filter((r) => r.watch);
    const lists = fake.requests.filter((r) => !r.watch);
    // The resumed watch got 410; the relist asks for data not older than what was seen, from the API's cache.
    expect(watches[0]?.query.resourceVersion).toBe('3');
    expect(lists[0]?.query).toMatchObject({ resourceVersion: '3', resourceVersionMatch: 'NotOlderThan' });
    expect(watches.at(-1)?.query.resourceVersion).toBe(String(fake.resourceVersion));

    // Still correct afterwards: the new watch delivers.
    const after = fake.addPod(makePod({ name: 'after' }));
    await until('a pod after the relist', () => source.get(uidOf(after)) !== undefined);
    expect(source.status().state).toBe('synced');
    expect(log.lines.filter((l) => l.level !== 'info').length).toBeLessThanOrEqual(1);
  });

  it('reconnects at once after a dropped watch and resumes where it was', async () => {
    const { fake, source, log } = await setup();
    await source.start();
    await until('a watch', () => fake.openWatches('Pod') === 1);
    await sleep(150); // healthy

    expect(fake.dropWatches('destroy')).toBe(1);
    const during = fake.addPod(makePod({ name: 'during' }));
    await until('the reconnect', () => source.get(uidOf(during)) !== undefined, 2_000);
    await until('a watch again', () => fake.openWatches('Pod') === 1);

    await sleep(150);
    fake.dropWatches('end');
    const after = fake.addPod(makePod({ name: 'after' }));
    await until('the second reconnect', () => source.get(uidOf(after)) !== undefined, 2_000);

    const watches = fake.requests.filter((r) => r.watch);
    expect(watches.length).toBe(3);
    // Each resumed from the version it had reached: nothing replayed from scratch, nothing missed.
    expect(watches.map((w) => w.query.resourceVersion)).toEqual(['1', '1', '2']);
    expect(fake.requests.filter((r) => !r.watch).length).toBe(1);
    expect(source.status().state).toBe('synced');
    expect(log.lines.map((l) => l.message)).toEqual(['kubernetes pod metadata synced']);
  });

  it('goes unreachable while the API is down at start, logging once, and syncs when it comes up', async () => {
    const { fake, source, log } = await setup();
    const pod = fake.addPod(makePod({ name: 'early' }));
    await fake.stop();
    await source.start();
    await until('unreachable', () => source.status().state === 'unreachable');
    await sleep(600); // several retries at 20..200 ms
    expect(source.status().lastError).toMatch(/^listing pods: /);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatchObject({
      level: 'warn',
      message: 'kubernetes API unreachable; retrying with backoff, pod metadata may be stale',
    });

    await fake.restart();
    await until('synced', () => source.status().state === 'synced');
    expect(source.get(uidOf(pod))?.name).toBe('early');
    expect(log.lines.map((l) => `${l.level}: ${l.message}`)).toEqual([
      'warn: kubernetes API unreachable; retrying with backoff, pod metadata may be stale',
      'info: kubernetes API reachable again; pod metadata synced',
    ]);
  });

  it('rides out an outage after sync: stale but serving, then caught up', async () => {
    const { fake, source, log } = await setup();
    const pod = fake.addPod(makePod({ name: 'kept' }));
    await source.start();
    await until('a watch', () => fake.openWatches('Pod') === 1);
    await sleep(150);

    await fake.stop();
    await until('unreachable', () => source.status().state === 'unreachable');
    expect(source.get(uidOf(pod))?.name).toBe('kept');
    const added = fake.addPod(makePod({ name: 'while-down' }));
    await sleep(300);
    await fake.restart();
    await until('synced', () => source.status().state === 'synced');
    await until('the missed pod', () => source.get(uidOf(added)) !== undefined);
    expect(log.lines.map((l) => l.level)).toEqual(['info', 'warn', 'info']);
  });

  it('keeps a deleted pod for the TTL, then evicts it', async () => {
    const { fake, source } = await setup({ deletedPodTtlMs: 300 });
    const pod = fake.addPod(makePod({ name: 'short-lived' }));
    await source.start();
    await until('a watch', () => fake.openWatches('Pod') === 1);
    fake.deletePod('default', 'short-lived');
    await until('DELETED', () => source.get(uidOf(pod))?.deletedAtMs !== undefined);
    expect(source.status().cachedPods).toBe(1);
    await sleep(150);
    expect(source.get(uidOf(pod))).toBeDefined();
    // The sweep timer evicts it without anyone asking.
    await until('eviction', () => source.status().cachedPods === 0, 2_000);
    expect(source.get(uidOf(pod))).toBeUndefined();
  });

  it('treats a watch that sends garbage as a failure, and recovers when it stops', async () => {
    const { fake, source, log } = await setup();
    const pod = fake.addPod(makePod({ name: 'p' }));
    await source.start();
    await until('a watch', () => fake.openWatches('Pod') === 1);
    await sleep(150);

    fake.setGarbage(true);
    fake.dropWatches('destroy');
    await until('unreachable', () => source.status().state === 'unreachable');
    const garbageWatches = fake.requests.filter((r) => r.watch).length;
    await sleep(400);
    // Backing off, not spinning: a handful of attempts in 400 ms at 20..200 ms, not hundreds.
    expect(fake.requests.filter((r) => r.watch).length - garbageWatches).toBeLessThan(15);
    expect(source.get(uidOf(pod))?.name).toBe('p');

    fake.setGarbage(false);
    const added = fake.addPod(makePod({ name: 'after-garbage' }));
    await until('synced', () => source.status().state === 'synced', 3_000);
    await until('the pod', () => source.get(uidOf(added)) !== undefined);
    expect(log.lines.map((l) => l.level)).toEqual(['info', 'warn', 'info']);
    expect(source.status().lastError).toBe('the pods watch closed before sending anything');
  });

  it('abandons a hung watch after the idle timeout and resumes without losing events', async () => {
    const { fake, source } = await setup({ watchIdleTimeoutMs: 400 });
    await source.start();
    await until('a watch', () => fake.openWatches('Pod') === 1);

    fake.setHang(true);
    fake.dropWatches('destroy');
    const missed = fake.addPod(makePod({ name: 'missed-while-hung' }));
    await sleep(200);
    expect(source.get(uidOf(missed))).toBeUndefined();
    fake.setHang(false);
    await until('the event, replayed', () => source.get(uidOf(missed)) !== undefined, 3_000);
  });

  it('times out a hung list and reports the API unreachable', async () => {
    const { fake, source } = await setup({ listTimeoutMs: 200 });
    fake.setHang(true);
    await source.start();
    await until('unreachable', () => source.status().state === 'unreachable');
    expect(source.status().lastError).toBe('listing pods timed out after 200 ms');
    fake.setHang(false);
    await until('synced', () => source.status().state === 'synced', 3_000);
  });

  it('sends the bearer token from the token file, and reports a rejected one', async () => {
    tmp = await mkdtemp(join(tmpdir(), 'logferry-k8s-'));
    const good = join(tmp, 'token');
    const bad = join(tmp, 'bad-token');
    await writeFile(good, 's3cr3t');
    await writeFile(bad, 'nope');
    fake = await startFakeKubernetes({ token: 's3cr3t' });
    const pod = fake.addPod(makePod({ name: 'p' }));

    const log = recorder();
    const rejected = new KubernetesPodSource({
      nodeName: 'node-a',
      logger: log,
      connection: { kind: 'url', url: fake.url, tokenFile: bad },
      backoffInitialMs: 20,
      backoffMaxMs: 100,
    });
    await rejected.start();
    await until('unreachable', () => rejected.status().state === 'unreachable');
    expect(rejected.status().lastError).toBe(
      "the API refused the agent's credentials (HTTP 401: Unauthorized), before any RBAC check: the bearer token (the service account token file in a pod, else the kubeconfig's user) is missing, invalid or expired",
    );
    expect(log.lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    await rejected.stop();

    source = new KubernetesPodSource({
      nodeName: 'node-a',
      logger: recorder(),
      connection: { kind: 'url', url: fake.url, tokenFile: good },
    });
    await source.start();
    await until('synced', () => source!.status().state === 'synced');
    expect(source.get(uidOf(pod))).toBeDefined();
    expect(fake.requests.at(-1)?.authorization).toBe('Bearer s3cr3t');
  });

  // What a ClusterRole without one verb does (messages as kube-apiserver v1.34 sends them: the fake's forbid()).
  it.each<[FakeVerb, FakeResource, boolean]>([
    ['list', 'pods', false],
    ['watch', 'pods', false],
    ['list', 'namespaces', true],
    ['watch', 'namespaces', true],
  ])(
    'RBAC refusing %s on %s: one warning naming RBAC and the verb, not synced, synced once granted',
    async (verb, resource, namespaceLabels) => {
      const { fake, source, log } = await setup({ namespaceLabels });
      fake.forbid(verb, resource);
      await source.start();
      await until('refused', () => source.status().state === 'unreachable');
      await sleep(600); // several retries at 20..200 ms
      const warnings = log.lines.filter((l) => l.level === 'warn');
      expect(warnings.map((l) => l.message)).toEqual([
        `kubernetes API: RBAC forbids the agent to ${verb} ${resource} (HTTP 403: ${resource} is forbidden: User "system:serviceaccount:logferry:logferry" cannot ${verb} resource "${resource}" in API group "" at the cluster scope): its ClusterRole needs get, list and watch on ${resource} (see k8s/rbac.yaml); not ready, retrying with backoff; meanwhile lines ship with the pod metadata cached so far (path metadata only for pods never listed)`,
      ]);
      expect(source.status().state).toBe('unreachable');
      expect(source.status().apiErrors).toBeGreaterThan(1);

      fake.allowAll();
      await until('synced', () => source.status().state === 'synced', 3_000);
      expect(log.lines.at(-1)).toMatchObject({
        level: 'info',
        message: 'kubernetes API reachable again; pod metadata synced',
      });
    },
  );

  it('adds namespace labels when enabled, and follows their changes', async () => {
    const { fake, source } = await setup({ namespaceLabels: true });
    fake.addNamespace({ metadata: { name: 'shop', labels: { team: 'payments' } } });
    const pod = fake.addPod(makePod({ name: 'cart', namespace: 'shop' }));
    await source.start();
    await until('synced', () => source.status().state === 'synced');
    await until('labels', () => source.get(uidOf(pod))?.namespaceLabels?.team === 'payments');

    fake.updateNamespace({ metadata: { name: 'shop', labels: { team: 'checkout' } } });
    await until('new labels', () => source.get(uidOf(pod))?.namespaceLabels?.team === 'checkout');
    expect(fake.requests.some((r) => r.path === '/api/v1/namespaces' && r.watch)).toBe(true);
  });

  it('does not touch namespaces when namespace labels are off', async () => {
    const { fake, source } = await setup();
    await source.start();
    await until('synced', () => source.status().state === 'synced');
    expect(fake.requests.every((r) => r.path === '/api/v1/pods')).toBe(true);
  });

  it('stops promptly even with a request hanging', async () => {
    const { fake, source } = await setup();
    fake.setHang(true);
    await source.start();
    await sleep(50);
    const started = Date.now();
    await source.stop();
    expect(Date.now() - started).toBeLessThan(500);
    const waiting = source.waitFor('00000000-0000-0000-0000-000000000001', 50);
    expect(await waiting).toBeUndefined();
  });
});
