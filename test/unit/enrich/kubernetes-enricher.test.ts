import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type ContainerLinkRef,
  parseContainerLinkName,
  parsePodLogPath,
} from '../../../src/enrich/k8s-paths.ts';
import {
  type DescribeOptions,
  describeFile,
  KubernetesEnricher,
  splitContainerId,
} from '../../../src/enrich/kubernetes-enricher.ts';
import { podMetadataFromPod } from '../../../src/enrich/pod-metadata.ts';
import type { MetadataStatus, PodMetadata, PodMetadataSource, PodRef } from '../../../src/enrich/types.ts';
import { FIXTURES, GOLDEN_CASES, loadPod } from './golden-cases.ts';

function meta(fixture: string, patch: (m: PodMetadata) => PodMetadata = (m) => m): PodMetadata {
  return patch(podMetadataFromPod(loadPod(fixture))!);
}

function refOf(path: string): PodRef | ContainerLinkRef {
  const ref = parsePodLogPath(path) ?? parseContainerLinkName(path);
  if (ref === undefined) throw new Error(`not a pod path: ${path}`);
  return ref;
}

describe('describeFile golden cases (test/fixtures/k8s/expected)', () => {
  it.each(GOLDEN_CASES)('$name', (c) => {
    const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected', `${c.name}.json`), 'utf8'));
    const out = describeFile(refOf(c.path), c.pod === undefined ? undefined : meta(c.pod), c.opts);
    expect(out).toEqual(expected);
    expect(out.fragment).toBe(expected.fragment);
    // The fragment completes a document: valid JSON, and no key twice (Elasticsearch rejects duplicate keys;
    // JSON.parse would silently keep the last, so a round trip would come out shorter).
    const doc = `{"message":"x"${out.fragment}}`;
    expect(JSON.stringify(JSON.parse(doc))).toBe(doc);
  });

  it('keeps `app` and `app.kubernetes.io/name` apart, under keys Elasticsearch can map together', () => {
    const out = describeFile(refOf(GOLDEN_CASES[0]!.path), meta('deployment-pod'), {});
    const labels = JSON.parse(`{${out.fragment.slice(1)}}`).kubernetes.labels;
    expect(labels).toEqual({
      app: 'checkout',
      'app_kubernetes_io/name': 'checkout',
      'app_kubernetes_io/part-of': 'shop',
      'pod-template-hash': '6d9f7c5b8',
    });
    expect(Object.keys(labels).some((k) => k.includes('.'))).toBe(false);
  });
});

describe('describeFile decisions', () => {
  const path = '/var/log/pods/shop_checkout-6d9f7c5b8-qx2lp_3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b/app/0.log';
  const withAnnotations =
    (annotations: Record<string, string>) =>
    (m: PodMetadata): PodMetadata => ({ ...m, annotations: { ...m.annotations, ...annotations } });

  it.each<[string, Record<string, string>, DescribeOptions, boolean]>([
    ['nothing said', {}, {}, false],
    ['pod annotation', { 'logferry.io/exclude': 'true' }, {}, true],
    ['pod annotation, any case and spaces', { 'logferry.io/exclude': ' True ' }, {}, true],
    ['pod annotation false', { 'logferry.io/exclude': 'false' }, {}, false],
    ['pod annotation, unclear value', { 'logferry.io/exclude': 'yes please' }, {}, false],
    ['this container', { 'logferry.io/exclude-app': 'true' }, {}, true],
    ['another container only', { 'logferry.io/exclude-envoy': 'true' }, {}, false],
    [
      'container overrides pod',
      { 'logferry.io/exclude': 'true', 'logferry.io/exclude-app': 'false' },
      {},
      false,
    ],
    ['exclude namespace glob', {}, { exclude: { namespaces: ['sh*'] } }, true],
    ['exclude pod glob', {}, { exclude: { pods: ['checkout-*'] } }, true],
    ['exclude container', {}, { exclude: { containers: ['app'] } }, true],
    [
      'exclude glob no match',
      {},
      { exclude: { namespaces: ['kube-*'], pods: ['x'], containers: ['y'] } },
      false,
    ],
    ['include namespace match', {}, { include: { namespaces: ['shop', 'web'] } }, false],
    ['include namespace miss', {}, { include: { namespaces: ['web'] } }, true],
    ['include container miss', {}, { include: { containers: ['envoy'] } }, true],
    [
      'empty include lists: no condition',
      {},
      { include: { namespaces: [], pods: [], containers: [] } },
      false,
    ],
    [
      'annotation opts back in past config',
      { 'logferry.io/exclude': 'false' },
      { exclude: { namespaces: ['shop'] } },
      false,
    ],
    ['self pod', {}, { selfPod: { namespace: 'shop', name: 'checkout-6d9f7c5b8-qx2lp' } }, true],
    [
      'self pod elsewhere',
      {},
      { selfPod: { namespace: 'logging', name: 'checkout-6d9f7c5b8-qx2lp' } },
      false,
    ],
    [
      'self pod that asks to be shipped',
      { 'logferry.io/exclude': 'false' },
      { selfPod: { namespace: 'shop', name: 'checkout-6d9f7c5b8-qx2lp' } },
      false,
    ],
  ])('exclude: %s', (_name, annotations, opts, excluded) => {
    expect(
      describeFile(refOf(path), meta('deployment-pod', withAnnotations(annotations)), opts).exclude,
    ).toBe(excluded);
  });

  it.each<[string, DescribeOptions, boolean]>([
    ['globs apply without metadata', { exclude: { namespaces: ['shop'] } }, true],
    [
      'self pod from the path alone',
      { selfPod: { namespace: 'shop', name: 'checkout-6d9f7c5b8-qx2lp' } },
      true,
    ],
    ['nothing to exclude', {}, false],
  ])('exclude without metadata: %s', (_name, opts, excluded) => {
    expect(describeFile(refOf(path), undefined, opts).exclude).toBe(excluded);
  });

  it.each<[string, Record<string, string>, string | undefined, string | undefined]>([
    ['none', {}, undefined, undefined],
    ['pod-wide', { 'logferry.io/parser': 'json', 'logferry.io/multiline': 'java' }, 'json', 'java'],
    [
      'per container wins',
      { 'logferry.io/parser': 'json', 'logferry.io/parser-app': 'text', 'logferry.io/multiline-envoy': 'go' },
      'text',
      undefined,
    ],
  ])('parser and multiline: %s', (_name, annotations, parser, multiline) => {
    const base = (m: PodMetadata): PodMetadata => ({ ...m, annotations });
    const out = describeFile(refOf(path), meta('deployment-pod', base), {});
    expect(out.parser).toBe(parser);
    expect(out.multiline).toBe(multiline);
  });

  it('adds namespace labels only when asked to', () => {
    const m = meta('deployment-pod', (x) => ({ ...x, namespaceLabels: { 'team.example.com/name': 'shop' } }));
    expect(
      describeFile(refOf(path), m, {}).fields['kubernetes.namespace_labels.team_example_com/name'],
    ).toBeUndefined();
    const out = describeFile(refOf(path), m, { namespaceLabels: true });
    expect(out.fields['kubernetes.namespace_labels.team_example_com/name']).toBe('shop');
    expect(out.fragment).toContain(',"namespace_labels":{"team_example_com/name":"shop"}');
  });

  it('leaves out a container id it cannot attribute to this file', () => {
    // File 0 of a container that restarted twice: neither the current nor the last instance wrote it.
    const old = '/var/log/pods/shop_checkout-6d9f7c5b8-qx2lp_3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b/app/0.log';
    const out = describeFile(refOf(old), meta('deployment-pod'), {});
    expect(out.fields['container.id']).toBeUndefined();
    expect(out.fields['container.image.name']).toBe('registry.example.com/shop/checkout:2.3.1');
  });

  // A real API server shows a pod before its status: the kubelet patches containerStatuses (with the container
  // id) later. Until the id of the file's instance can be told, the answer is provisional and asked again.
  const statusOf =
    (status: Partial<PodMetadata['containers'][string]> | 'absent', deleted = false) =>
    (m: PodMetadata): PodMetadata => {
      const containers = { ...m.containers };
      if (status === 'absent') delete containers.app;
      else
        containers.app = {
          id: undefined,
          image: 'registry.example.com/shop/checkout:2.3.1',
          restartCount: undefined,
          lastTerminatedId: undefined,
          ...status,
        };
      return { ...m, containers, deletedAtMs: deleted ? 1 : undefined };
    };
  it.each<[string, number, ReturnType<typeof statusOf>, boolean]>([
    ['no container status yet', 0, statusOf({}), false],
    ['status without an id yet (ContainerCreating)', 0, statusOf({ restartCount: 0 }), false],
    ['status with the id of this file', 0, statusOf({ restartCount: 0, id: 'containerd://a' }), true],
    [
      'status behind the file (restart 1, status still at 0)',
      1,
      statusOf({ restartCount: 0, id: 'containerd://a' }),
      false,
    ],
    [
      'previous instance with lastState',
      0,
      statusOf({ restartCount: 1, id: 'c://b', lastTerminatedId: 'c://a' }),
      true,
    ],
    ['previous instance without lastState: never known', 0, statusOf({ restartCount: 1, id: 'c://b' }), true],
    ['an instance two restarts back: never known', 0, statusOf({ restartCount: 2, id: 'c://c' }), true],
    ['a container not in the pod', 0, statusOf('absent'), true],
    ['a deleted pod without status: nothing more will come', 0, statusOf({}, true), true],
  ])('%s: restart %i -> complete %s', (_name, restart, patch, complete) => {
    const file = `/var/log/pods/shop_checkout-6d9f7c5b8-qx2lp_3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b/app/${restart}.log`;
    const out = describeFile(refOf(file), meta('deployment-pod', patch), {});
    expect(out.complete).toBe(complete);
    // provisional or not, what is known is shipped: labels always, the id when it belongs to this file
    expect(out.fields['kubernetes.labels.app']).toBe('checkout');
  });

  it('escapes whatever the API sends', () => {
    const m = meta('deployment-pod', (x) => ({ ...x, labels: { 'quote"key': 'line\nbreak \u2028' } }));
    const doc = `{${describeFile(refOf(path), m, {}).fragment.slice(1)}}`;
    expect(JSON.parse(doc).kubernetes.labels).toEqual({ 'quote"key': 'line\nbreak \u2028' });
  });
});

describe('splitContainerId', () => {
  it.each([
    ['containerd://abc', { id: 'abc', runtime: 'containerd' }],
    ['docker://0f1e', { id: '0f1e', runtime: 'docker' }],
    ['cri-o://9c8b', { id: '9c8b', runtime: 'cri-o' }],
    ['abc', { id: 'abc', runtime: undefined }],
  ])('%s', (raw, expected) => {
    expect(splitContainerId(raw)).toEqual(expected);
  });
});

/** A PodMetadataSource in memory; waitFor resolves on add() or after its timeout (fake timers). */
class MemorySource implements PodMetadataSource {
  pods = new Map<string, PodMetadata>();
  waits: Array<[string, number]> = [];
  state: MetadataStatus['state'] = 'synced';
  #waiters = new Map<string, Array<(m: PodMetadata) => void>>();
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  get(uid: string): PodMetadata | undefined {
    return this.pods.get(uid);
  }
  waitFor(uid: string, timeoutMs: number): Promise<PodMetadata | undefined> {
    this.waits.push([uid, timeoutMs]);
    const known = this.pods.get(uid);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      const list = this.#waiters.get(uid) ?? [];
      list.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
      this.#waiters.set(uid, list);
    });
  }
  add(m: PodMetadata): void {
    this.pods.set(m.uid, m);
    for (const wake of this.#waiters.get(m.uid) ?? []) wake(m);
    this.#waiters.delete(m.uid);
  }
  status(): MetadataStatus {
    return { state: this.state, cachedPods: this.pods.size, misses: 0, lastError: undefined };
  }
}

describe('KubernetesEnricher', () => {
  const uid = '3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b';
  const path = `/var/log/pods/shop_checkout-6d9f7c5b8-qx2lp_${uid}/app/2.log`;
  let source: MemorySource;

  beforeEach(() => {
    vi.useFakeTimers();
    source = new MemorySource();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers a file that is not a pod log at once, with nothing', async () => {
    const enricher = new KubernetesEnricher(source);
    expect(await enricher.describe('/var/log/syslog')).toEqual({
      exclude: false,
      fragment: '',
      fields: {},
      complete: true,
    });
    expect(source.waits).toEqual([]);
  });

  it('answers a cached pod at once, complete', async () => {
    source.add(meta('deployment-pod'));
    const out = await new KubernetesEnricher(source).describe(path);
    expect(out.complete).toBe(true);
    expect(out.fields['kubernetes.deployment.name']).toBe('checkout');
    expect(source.waits).toEqual([]);
  });

  it('takes the SourceFile of the Enricher contract', async () => {
    source.add(meta('deployment-pod'));
    const file = { key: '1:2', identity: { dev: 1, ino: 2, id: 'x' }, path };
    expect((await new KubernetesEnricher(source).describe(file)).complete).toBe(true);
  });

  it('waits once per uid for an unknown pod, then answers from the cache at once', async () => {
    const enricher = new KubernetesEnricher(source, { waitForPodMs: 2_000, nodeName: 'node-a' });
    const first = enricher.describe(path);
    // A second file of the same pod while the first waits: one wait, shared.
    const sibling = enricher.describe(path.replace('/2.log', '/1.log'));
    await vi.advanceTimersByTimeAsync(2_000);
    const [a, b] = await Promise.all([first, sibling]);
    expect(a.complete).toBe(false);
    expect(a.fields['kubernetes.pod.uid']).toBe(uid);
    expect(a.fields['kubernetes.node.name']).toBe('node-a');
    expect(b.complete).toBe(false);
    expect(source.waits).toEqual([[uid, 2_000]]);

    // Asked again: no second wait.
    const again = await enricher.describe(path);
    expect(again.complete).toBe(false);
    expect(source.waits).toHaveLength(1);

    // Once the pod shows up, the next answer is complete.
    source.add(meta('deployment-pod'));
    expect((await enricher.describe(path)).complete).toBe(true);
  });

  it('answers as soon as the pod arrives during the wait', async () => {
    const enricher = new KubernetesEnricher(source, { waitForPodMs: 5_000 });
    const pending = enricher.describe(path);
    await vi.advanceTimersByTimeAsync(100);
    source.add(meta('deployment-pod'));
    const out = await pending;
    expect(out.complete).toBe(true);
    expect(out.fields['kubernetes.pod.ip']).toBe('10.244.1.17');
  });

  it('does not wait when metadata is disabled', async () => {
    source.state = 'disabled';
    const out = await new KubernetesEnricher(source).describe(path);
    expect(out.complete).toBe(false);
    expect(source.waits).toEqual([]);
  });

  it('never throws, even if the source does', async () => {
    source.waitFor = () => Promise.reject(new Error('boom'));
    const out = await new KubernetesEnricher(source).describe(path);
    expect(out.complete).toBe(false);
  });

  it('applies new options after setOptions (config reload)', async () => {
    source.add(meta('deployment-pod'));
    const enricher = new KubernetesEnricher(source);
    expect((await enricher.describe(path)).exclude).toBe(false);
    enricher.setOptions({ exclude: { namespaces: ['shop'] } });
    expect((await enricher.describe(path)).exclude).toBe(true);
  });

  it('describeNow never waits', () => {
    const enricher = new KubernetesEnricher(source);
    expect(enricher.describeNow(path).complete).toBe(false);
    source.add(meta('deployment-pod'));
    expect(enricher.describeNow(path).complete).toBe(true);
    expect(source.waits).toEqual([]);
  });
});
