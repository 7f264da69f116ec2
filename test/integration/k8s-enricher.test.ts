// KubernetesEnricher over a real KubernetesPodSource and the fake API, with real kubelet-style files and
// /var/log/containers-style symlinks in a temp directory.

import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubernetesEnricher } from '../../src/enrich/kubernetes-enricher.ts';
import { KubernetesPodSource } from '../../src/enrich/pod-cache.ts';
import { type FakeKubernetes, makePod, startFakeKubernetes } from '../fakes/fake-kubernetes.ts';

const silent = { info() {}, warn() {}, error() {} };
const CID = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2';

describe('KubernetesEnricher with the pod cache', () => {
  let fake: FakeKubernetes;
  let source: KubernetesPodSource;
  let dir: string;

  beforeEach(async () => {
    fake = await startFakeKubernetes();
    source = new KubernetesPodSource({
      nodeName: 'node-a',
      logger: silent,
      connection: { kind: 'url', url: fake.url },
      backoffInitialMs: 20,
      healthyAfterMs: 100,
    });
    dir = await mkdtemp(join(tmpdir(), 'logferry-enrich-'));
  });

  afterEach(async () => {
    await source.stop();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function podLog(ns: string, pod: string, uid: string, container: string): Promise<string> {
    const path = join(dir, 'pods', `${ns}_${pod}_${uid}`, container, '0.log');
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, '');
    return path;
  }

  it('waits for a pod whose file appeared first, and enriches it when it arrives', async () => {
    await source.start();
    const uid = '5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d';
    const enricher = new KubernetesEnricher(source, { waitForPodMs: 5_000, nodeName: 'node-a' });
    const path = await podLog('shop', 'web-5d8f-abcde', uid, 'app');

    const started = Date.now();
    const pending = enricher.describe(path);
    setTimeout(() => {
      fake.addPod(
        makePod({
          name: 'web-5d8f-abcde',
          namespace: 'shop',
          uid,
          labels: { app: 'web', 'pod-template-hash': '5d8f' },
          owner: { kind: 'ReplicaSet', name: 'web-5d8f' },
          containers: [{ name: 'app', image: 'web:1', id: `containerd://${CID}` }],
        }),
      );
    }, 200);
    const meta = await pending;
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(meta).toMatchObject({
      complete: true,
      exclude: false,
      fields: {
        'kubernetes.namespace': 'shop',
        'kubernetes.deployment.name': 'web',
        'kubernetes.labels.app': 'web',
        'container.id': CID,
        'container.runtime': 'containerd',
      },
    });
  });

  it('waits once for a pod that never comes, then answers at once with the path’s metadata', async () => {
    await source.start();
    const enricher = new KubernetesEnricher(source, { waitForPodMs: 300 });
    const path = await podLog('shop', 'ghost', '0f0f0f0f-0000-4000-8000-000000000000', 'app');

    let started = Date.now();
    const first = await enricher.describe(path);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(first).toMatchObject({ complete: false, fields: { 'kubernetes.pod.name': 'ghost' } });
    expect(source.status().misses).toBe(1);

    started = Date.now();
    const second = await enricher.describe(path);
    expect(Date.now() - started).toBeLessThan(100);
    expect(second.complete).toBe(false);
    expect(source.status().misses).toBe(1);
  });

  it('follows a /var/log/containers symlink to its pod log, and its exclusion annotation', async () => {
    const uid = '6b5c4d3e-2f1a-4b0c-9d8e-7f6a5b4c3d2e';
    fake.addPod(
      makePod({
        name: 'noisy',
        namespace: 'shop',
        uid,
        annotations: { 'logferry.io/exclude-sidecar': 'true' },
        // running containers (with ids): without them the answer would be provisional
        containers: [
          { name: 'app', image: 'app:1', id: `containerd://${CID}` },
          { name: 'sidecar', image: 'sidecar:1', id: `containerd://${CID.replace('a1', 'b2')}` },
        ],
      }),
    );
    await source.start();
    const enricher = new KubernetesEnricher(source, { waitForPodMs: 2_000 });
    const appLog = await podLog('shop', 'noisy', uid, 'app');
    const sidecarLog = await podLog('shop', 'noisy', uid, 'sidecar');
    await mkdir(join(dir, 'containers'));
    const appLink = join(dir, 'containers', `noisy_shop_app-${CID}.log`);
    const sidecarLink = join(dir, 'containers', `noisy_shop_sidecar-${CID.replace('a1', 'b2')}.log`);
    // The kubelet's links are absolute; a relative one must work too.
    await symlink(appLog, appLink);
    await symlink(relative(join(dir, 'containers'), sidecarLog), sidecarLink);

    const app = await enricher.describe(appLink);
    expect(app).toMatchObject({ complete: true, exclude: false, fields: { 'kubernetes.pod.uid': uid } });
    const sidecar = await enricher.describe(sidecarLink);
    expect(sidecar).toMatchObject({ complete: true, exclude: true });

    // A dangling link still says which pod and container.
    const dangling = join(dir, 'containers', `gone_shop_app-${CID.replace('a1', 'c3')}.log`);
    await symlink(join(dir, 'pods', 'nowhere', '0.log'), dangling);
    expect(await enricher.describe(dangling)).toMatchObject({
      complete: true,
      fields: {
        'kubernetes.pod.name': 'gone',
        'kubernetes.namespace': 'shop',
        'kubernetes.container.name': 'app',
      },
    });
  });
});
