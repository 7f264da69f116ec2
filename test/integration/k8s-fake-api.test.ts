// The fake Kubernetes API itself: what a client sees of list and watch, checked over raw HTTP (the wire format)
// and through @kubernetes/client-node (typed deserialization), so the pod cache's tests stand on a faithful fake.

import { CoreV1Api, KubeConfig, type V1Status } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeKubernetes, makePod, startFakeKubernetes } from '../fakes/fake-kubernetes.ts';

interface WatchLine {
  type: string;
  object: {
    kind?: string;
    code?: number;
    reason?: string;
    metadata?: { name?: string; resourceVersion?: string };
    spec?: unknown;
  };
}

/** A watch over raw HTTP: `next()` gives each JSON line, undefined once the stream has ended. */
async function openWatch(
  url: string,
): Promise<{ status: number; next(timeoutMs?: number): Promise<WatchLine | undefined>; close(): void }> {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let ended = false;
  return {
    status: res.status,
    async next(timeoutMs = 2_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const nl = buffered.indexOf('\n');
        if (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          return JSON.parse(line) as WatchLine;
        }
        if (ended) return undefined;
        const timer = new Promise<'timeout'>((r) =>
          setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now())),
        );
        const chunk = await Promise.race([reader.read(), timer]);
        if (chunk === 'timeout') throw new Error('no watch line in time');
        if (chunk.done) ended = true;
        else buffered += decoder.decode(chunk.value, { stream: true });
      }
    },
    close() {
      controller.abort();
    },
  };
}

describe('fake Kubernetes API', () => {
  let fake: FakeKubernetes;

  beforeEach(async () => {
    fake = await startFakeKubernetes();
  });

  afterEach(async () => {
    await fake.close();
  });

  it('lists with the current resourceVersion, filtered by field selector, items without kind', async () => {
    fake.addPod(makePod({ name: 'a' }));
    fake.addPod(makePod({ name: 'b', nodeName: 'node-b' }));
    const res = await fetch(`${fake.url}/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      kind: string;
      metadata: { resourceVersion: string };
      items: WatchLine['object'][];
    };
    expect(body.kind).toBe('PodList');
    expect(body.metadata.resourceVersion).toBe(String(fake.resourceVersion));
    expect(body.items.map((p) => p.metadata?.name)).toEqual(['a']);
    expect(body.items[0]?.kind).toBeUndefined();

    const others = await fetch(`${fake.url}/api/v1/pods?fieldSelector=spec.nodeName!%3Dnode-a`);
    expect(
      ((await others.json()) as { items: WatchLine['object'][] }).items.map((p) => p.metadata?.name),
    ).toEqual(['b']);
  });

  it('rejects a field it cannot select on with a 400 Status', async () => {
    const res = await fetch(`${fake.url}/api/v1/pods?fieldSelector=spec.schedulerName%3Dx`);
    expect(res.status).toBe(400);
    expect((await res.json()) as V1Status).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'BadRequest',
      code: 400,
      message: 'field label not supported: spec.schedulerName',
    });
  });

  it('is read by the official client as typed objects', async () => {
    fake.addPod(
      makePod({ name: 'typed', containers: [{ name: 'c', image: 'busybox', id: 'containerd://0123' }] }),
    );
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'fake', server: fake.url, skipTLSVerify: true }, { name: 'u' });
    const list = await kc
      .makeApiClient(CoreV1Api)
      .listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=node-a' });
    expect(list.items[0]?.metadata?.name).toBe('typed');
    expect(list.items[0]?.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(list.items[0]?.status?.containerStatuses?.[0]?.containerID).toBe('containerd://0123');
  });

  it('starts a watch from "0" with the current objects, then streams changes', async () => {
    fake.addPod(makePod({ name: 'existing' }));
    const w = await openWatch(
      `${fake.url}/api/v1/pods?watch=true&resourceVersion=0&fieldSelector=spec.nodeName%3Dnode-a`,
    );
    expect(w.status).toBe(200);
    expect(await w.next()).toMatchObject({
      type: 'ADDED',
      object: { kind: 'Pod', metadata: { name: 'existing' } },
    });
    fake.patchPod('default', 'existing', (p) => {
      p.metadata!.labels = { x: 'y' };
    });
    fake.deletePod('default', 'existing');
    expect(await w.next()).toMatchObject({
      type: 'MODIFIED',
      object: { metadata: { resourceVersion: '3' } },
    });
    expect(await w.next()).toMatchObject({
      type: 'DELETED',
      object: { metadata: { name: 'existing', resourceVersion: '4' } },
    });
    w.close();
  });

  it('replays changes after a resourceVersion, and shows selector entries and exits as ADDED and DELETED', async () => {
    const from = fake.resourceVersion;
    fake.addPod(makePod({ name: 'unscheduled', nodeName: '' }));
    fake.patchPod('default', 'unscheduled', (p) => {
      p.spec!.nodeName = 'node-a';
    });
    fake.addPod(makePod({ name: 'elsewhere', nodeName: 'node-b' }));
    const w = await openWatch(
      `${fake.url}/api/v1/pods?watch=1&resourceVersion=${from}&fieldSelector=spec.nodeName%3Dnode-a`,
    );
    expect(await w.next()).toMatchObject({
      type: 'ADDED',
      object: { metadata: { name: 'unscheduled', resourceVersion: '3' } },
    });
    fake.patchPod('default', 'unscheduled', (p) => {
      p.spec!.nodeName = 'node-c';
    });
    expect(await w.next()).toMatchObject({ type: 'DELETED', object: { metadata: { name: 'unscheduled' } } });
    w.close();
  });

  it('answers a resume from a compacted version with an ERROR event holding a 410 Status, then ends', async () => {
    const old = fake.resourceVersion;
    fake.addPod(makePod({ name: 'a' }));
    fake.addPod(makePod({ name: 'a2' }));
    fake.compact();
    const w = await openWatch(`${fake.url}/api/v1/pods?watch=true&resourceVersion=${old}`);
    expect(w.status).toBe(200);
    expect(await w.next()).toEqual({
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
    });
    expect(await w.next()).toBeUndefined();
    // Resuming from the compaction point itself is fine.
    const ok = await openWatch(`${fake.url}/api/v1/pods?watch=true&resourceVersion=${fake.resourceVersion}`);
    fake.addPod(makePod({ name: 'b' }));
    expect(await ok.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'b' } } });
    ok.close();
  });

  // Seen against kube-apiserver v1.34.4 with etcd 3.4 (k8s-real-api.test.ts): a watch that starts exactly at
  // the compaction revision gets the change made there without its previous state, and fails with a 500.
  it('answers a resume from one version before the compaction, when it changed a pod, with a 500 ERROR event', async () => {
    fake.addPod(makePod({ name: 'a' }));
    const old = fake.resourceVersion;
    fake.patchPod('default', 'a', (p) => {
      p.metadata!.labels = { changed: 'yes' };
    });
    fake.compact();
    const w = await openWatch(`${fake.url}/api/v1/pods?watch=true&resourceVersion=${old}`);
    const message = `etcd event received with PrevKv=nil (key="/registry/pods/default/a", modRevision=${fake.resourceVersion}, type=PUT)`;
    expect(await w.next()).toEqual({
      type: 'ERROR',
      object: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `Internal error occurred: ${message}`,
        reason: 'InternalError',
        details: { causes: [{ message }] },
        code: 500,
      },
    });
    expect(await w.next()).toBeUndefined();
    // one version back where that version created the object: served (a creation has no previous state)
    const created = fake.resourceVersion;
    fake.addPod(makePod({ name: 'c' }));
    fake.compact();
    const ok = await openWatch(`${fake.url}/api/v1/pods?watch=true&resourceVersion=${created}`);
    expect(await ok.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'c' } } });
    ok.close();
  });

  it('sends bookmarks only to watches that allow them', async () => {
    const rv = fake.resourceVersion;
    const allowed = await openWatch(
      `${fake.url}/api/v1/pods?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true`,
    );
    const plain = await openWatch(`${fake.url}/api/v1/pods?watch=true&resourceVersion=${rv}`);
    await new Promise((r) => setTimeout(r, 50));
    fake.sendBookmarks();
    fake.addPod(makePod({ name: 'after-bookmark' }));
    expect(await allowed.next()).toEqual({
      type: 'BOOKMARK',
      object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(rv) } },
    });
    expect(await plain.next()).toMatchObject({ type: 'ADDED' });
    allowed.close();
    plain.close();
  });

  it('ends a watch after timeoutSeconds', async () => {
    const w = await openWatch(
      `${fake.url}/api/v1/pods?watch=true&resourceVersion=${fake.resourceVersion}&timeoutSeconds=1`,
    );
    const started = Date.now();
    expect(await w.next(3_000)).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('requires the bearer token when configured', async () => {
    const secured = await startFakeKubernetes({ token: 't0k3n' });
    try {
      const denied = await fetch(`${secured.url}/api/v1/pods`);
      expect(denied.status).toBe(401);
      expect(await denied.json()).toMatchObject({ kind: 'Status', code: 401, reason: 'Unauthorized' });
      const allowed = await fetch(`${secured.url}/api/v1/pods`, {
        headers: { authorization: 'Bearer t0k3n' },
      });
      expect(allowed.status).toBe(200);
      expect(secured.requests.map((r) => r.status)).toEqual([401, 200]);
    } finally {
      await secured.close();
    }
  });

  it('goes down and comes back on the same port, keeping its state', async () => {
    fake.addPod(makePod({ name: 'survivor' }));
    const w = await openWatch(`${fake.url}/api/v1/pods?watch=true&resourceVersion=${fake.resourceVersion}`);
    await fake.stop();
    await expect(w.next()).rejects.toThrow();
    await expect(fetch(`${fake.url}/api/v1/pods`)).rejects.toThrow();
    await fake.restart();
    const res = await fetch(`${fake.url}/api/v1/pods`);
    expect(
      ((await res.json()) as { items: WatchLine['object'][] }).items.map((p) => p.metadata?.name),
    ).toEqual(['survivor']);
  });

  it('can send garbage on watches, or hang', async () => {
    fake.setGarbage(true);
    const res = await fetch(`${fake.url}/api/v1/pods?watch=true`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(() => JSON.parse(text.split('\n')[0]!)).toThrow();
    fake.setGarbage(false);

    fake.setHang(true);
    const hung = await fetch(`${fake.url}/api/v1/pods`, { signal: AbortSignal.timeout(300) });
    expect(hung.status).toBe(200);
    await expect(hung.text()).rejects.toThrow();
    fake.setHang(false);
    expect((await fetch(`${fake.url}/api/v1/pods`)).status).toBe(200);
  });

  it('disconnects watches on demand and logs every request', async () => {
    const w = await openWatch(`${fake.url}/api/v1/pods?watch=true&resourceVersion=${fake.resourceVersion}`);
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.openWatches('Pod')).toBe(1);
    expect(fake.dropWatches('end')).toBe(1);
    expect(await w.next()).toBeUndefined();
    expect(fake.openWatches()).toBe(0);
    expect(fake.requests).toEqual([
      expect.objectContaining({ method: 'GET', path: '/api/v1/pods', watch: true, status: 200 }),
    ]);
  });
});
