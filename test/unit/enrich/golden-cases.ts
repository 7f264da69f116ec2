import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import type { DescribeOptions } from '../../../src/enrich/kubernetes-enricher.ts';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/k8s');

export function loadPod(name: string): V1Pod {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as V1Pod;
}

/** Golden cases: a pod fixture (or none: path-only), a log path, options -> expected/<name>.json. */
export interface GoldenCase {
  name: string;
  pod: string | undefined;
  path: string;
  opts: DescribeOptions;
}

const DEPLOYMENT = '/var/log/pods/shop_checkout-6d9f7c5b8-qx2lp_3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b';
const STATEFULSET = '/var/log/pods/data_postgres-0_7d3e1b2a-4c5d-4e6f-8a9b-0c1d2e3f4a5b';

export const GOLDEN_CASES: readonly GoldenCase[] = [
  {
    name: 'deployment-labels-and-annotations',
    pod: 'deployment-pod',
    path: `${DEPLOYMENT}/app/2.log`,
    opts: { annotationAllowList: ['prometheus.io/*'] },
  },
  {
    name: 'deployment-previous-instance',
    pod: 'deployment-pod',
    path: `${DEPLOYMENT}/app/1.log.20261120-081500.gz`,
    opts: {},
  },
  {
    name: 'deployment-init-container-no-dedot',
    pod: 'deployment-pod',
    path: `${DEPLOYMENT}/migrate/0.log`,
    opts: { dedot: false, annotationAllowList: ['team.example.com/owner'] },
  },
  {
    name: 'statefulset-excluded-container',
    pod: 'statefulset-pod',
    path: `${STATEFULSET}/metrics/0.log`,
    opts: {},
  },
  {
    name: 'statefulset-other-container',
    pod: 'statefulset-pod',
    path: `${STATEFULSET}/postgres/0.log`,
    opts: {},
  },
  {
    name: 'daemonset-docker-runtime',
    pod: 'daemonset-pod',
    path: '/var/log/pods/monitoring_node-exporter-8kq2z_c0ffee00-1234-4abc-8def-0123456789ab/node-exporter/0.log',
    opts: {},
  },
  {
    name: 'cronjob',
    pod: 'cronjob-pod',
    path: '/var/log/pods/batch_nightly-report-29412480-7xk2p_d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f5a/report/0.log',
    opts: {},
  },
  {
    name: 'self-excluded',
    pod: 'self-pod',
    path: '/var/log/pods/logging_logferry-x7k9p_aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee/logferry/0.log',
    opts: { selfPod: { namespace: 'logging', name: 'logferry-x7k9p' } },
  },
  {
    name: 'path-only',
    pod: undefined,
    path: `${DEPLOYMENT}/app/2.log`,
    opts: { nodeName: 'node-a' },
  },
  {
    name: 'container-link-name',
    pod: undefined,
    path: '/var/log/containers/checkout-6d9f7c5b8-qx2lp_shop_app-a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2.log',
    opts: {},
  },
];
