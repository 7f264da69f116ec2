import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  cronJobOfJob,
  deploymentOfReplicaSet,
  mirrorUid,
  podMetadataFromPod,
  resolveOwner,
} from '../../../src/enrich/pod-metadata.ts';
import { loadPod } from './golden-cases.ts';

describe('deploymentOfReplicaSet', () => {
  it.each<[string, string | undefined, string | undefined]>([
    ['web-6d9f7c5b8', '6d9f7c5b8', 'web'],
    ['my-app-v2-6d9f7c5b8', '6d9f7c5b8', 'my-app-v2'],
    ['web-6d9f7c5b8', undefined, undefined],
    ['web-6d9f7c5b8', '', undefined],
    ['web-other', '6d9f7c5b8', undefined],
    ['6d9f7c5b8', '6d9f7c5b8', undefined],
    ['-6d9f7c5b8', '6d9f7c5b8', undefined],
  ])('%s with hash %s -> %s', (rs, hash, expected) => {
    expect(deploymentOfReplicaSet(rs, hash)).toBe(expected);
  });
});

describe('cronJobOfJob', () => {
  it.each<[string, string | undefined]>([
    ['nightly-report-29412480', 'nightly-report'],
    ['a-b-c-29412480', 'a-b-c'],
    ['backup-20240101', undefined], // a date, not minutes since the epoch
    ['migrate', undefined],
    ['job-1234567', undefined],
    ['job-1234567890', undefined],
    ['-29412480', undefined],
  ])('%s -> %s', (job, expected) => {
    expect(cronJobOfJob(job)).toBe(expected);
  });
});

function owned(
  refs: Array<{ kind: string; name: string; controller?: boolean }>,
  labels: Record<string, string> = {},
): V1Pod {
  return {
    metadata: {
      name: 'p',
      namespace: 'n',
      uid: 'u',
      labels,
      ownerReferences: refs.map((r) => ({ apiVersion: 'v1', uid: 'x', ...r })),
    },
  };
}

describe('resolveOwner', () => {
  it.each<[string, V1Pod, unknown]>([
    ['no owner', owned([]), { controller: undefined, owner: undefined }],
    [
      'ReplicaSet of a Deployment',
      owned([{ kind: 'ReplicaSet', name: 'web-5d8f', controller: true }], { 'pod-template-hash': '5d8f' }),
      { controller: { kind: 'ReplicaSet', name: 'web-5d8f' }, owner: { kind: 'Deployment', name: 'web' } },
    ],
    [
      'bare ReplicaSet',
      owned([{ kind: 'ReplicaSet', name: 'web', controller: true }]),
      { controller: { kind: 'ReplicaSet', name: 'web' }, owner: { kind: 'ReplicaSet', name: 'web' } },
    ],
    [
      'Job of a CronJob',
      owned([{ kind: 'Job', name: 'nightly-29412480', controller: true }]),
      { controller: { kind: 'Job', name: 'nightly-29412480' }, owner: { kind: 'CronJob', name: 'nightly' } },
    ],
    [
      'Job created by hand',
      owned([{ kind: 'Job', name: 'migrate-db', controller: true }]),
      { controller: { kind: 'Job', name: 'migrate-db' }, owner: { kind: 'Job', name: 'migrate-db' } },
    ],
    [
      'StatefulSet',
      owned([{ kind: 'StatefulSet', name: 'pg', controller: true }]),
      { controller: { kind: 'StatefulSet', name: 'pg' }, owner: { kind: 'StatefulSet', name: 'pg' } },
    ],
    [
      'DaemonSet',
      owned([{ kind: 'DaemonSet', name: 'agent', controller: true }]),
      { controller: { kind: 'DaemonSet', name: 'agent' }, owner: { kind: 'DaemonSet', name: 'agent' } },
    ],
    [
      'the controller reference wins over others',
      owned([
        { kind: 'ConfigMap', name: 'cm' },
        { kind: 'StatefulSet', name: 'pg', controller: true },
      ]),
      { controller: { kind: 'StatefulSet', name: 'pg' }, owner: { kind: 'StatefulSet', name: 'pg' } },
    ],
    [
      'no controller flag: the first reference',
      owned([{ kind: 'Node', name: 'node-a' }]),
      { controller: { kind: 'Node', name: 'node-a' }, owner: { kind: 'Node', name: 'node-a' } },
    ],
  ])('%s', (_name, pod, expected) => {
    expect(resolveOwner(pod)).toEqual(expected);
  });
});

describe('podMetadataFromPod', () => {
  it('keeps what enrichment needs from a real-shaped pod', () => {
    expect(podMetadataFromPod(loadPod('deployment-pod'))).toEqual({
      uid: '3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b',
      namespace: 'shop',
      name: 'checkout-6d9f7c5b8-qx2lp',
      nodeName: 'node-a',
      podIp: '10.244.1.17',
      labels: {
        app: 'checkout',
        'app.kubernetes.io/name': 'checkout',
        'app.kubernetes.io/part-of': 'shop',
        'pod-template-hash': '6d9f7c5b8',
      },
      annotations: {
        'kubectl.kubernetes.io/restartedAt': '2026-11-20T08:15:00Z',
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '9090',
        'team.example.com/owner': 'payments',
        'logferry.io/parser': 'json',
      },
      containers: {
        migrate: {
          id: 'containerd://5e2b0c1d9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c',
          image: 'registry.example.com/shop/migrate:2.3.1',
          restartCount: 0,
          lastTerminatedId: undefined,
        },
        app: {
          id: 'containerd://a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2',
          image: 'registry.example.com/shop/checkout:2.3.1',
          restartCount: 2,
          lastTerminatedId: 'containerd://ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100',
        },
        // the spec's image, as written, over the status's resolved one
        envoy: {
          id: 'containerd://0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0',
          image: 'envoyproxy/envoy:v1.31.0',
          restartCount: 0,
          lastTerminatedId: undefined,
        },
      },
      owner: { kind: 'Deployment', name: 'checkout' },
      controller: { kind: 'ReplicaSet', name: 'checkout-6d9f7c5b8' },
      namespaceLabels: undefined,
      deletedAtMs: undefined,
    });
  });

  it.each<[string, V1Pod]>([
    ['no metadata', {}],
    ['no uid', { metadata: { name: 'a', namespace: 'b' } }],
    ['no namespace', { metadata: { name: 'a', uid: 'u' } }],
  ])('%s -> undefined', (_name, pod) => {
    expect(podMetadataFromPod(pod)).toBeUndefined();
  });

  it('copes with a pod not yet scheduled or started', () => {
    const meta = podMetadataFromPod({
      metadata: { name: 'p', namespace: 'n', uid: 'u' },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    expect(meta).toMatchObject({
      nodeName: undefined,
      podIp: undefined,
      labels: {},
      containers: { c: { id: undefined, image: 'busybox', restartCount: undefined } },
    });
  });

  it('finds the on-disk uid of a static pod', () => {
    const meta = podMetadataFromPod({
      metadata: {
        name: 'etcd-node-a',
        namespace: 'kube-system',
        uid: 'u',
        annotations: { 'kubernetes.io/config.mirror': 'abc' },
      },
    })!;
    expect(mirrorUid(meta)).toBe('abc');
    expect(mirrorUid(podMetadataFromPod(loadPod('daemonset-pod'))!)).toBeUndefined();
  });
});
