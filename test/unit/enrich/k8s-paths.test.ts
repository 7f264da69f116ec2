import { describe, expect, it } from 'vitest';
import { parseContainerLinkName, parsePodLogPath } from '../../../src/enrich/k8s-paths.ts';

const UID = '3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b';
const CID = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2';

describe('parsePodLogPath', () => {
  it.each([
    [
      `/var/log/pods/shop_checkout-6d9f7c5b8-qx2lp_${UID}/app/0.log`,
      'shop',
      'checkout-6d9f7c5b8-qx2lp',
      UID,
      'app',
      0,
    ],
    [`/var/log/pods/shop_web_${UID}/app/12.log`, 'shop', 'web', UID, 'app', 12],
    // rotated siblings, plain and gzipped
    [`/var/log/pods/shop_web_${UID}/app/3.log.20261120-081500`, 'shop', 'web', UID, 'app', 3],
    [`/var/log/pods/shop_web_${UID}/app/3.log.20261120-081500.gz`, 'shop', 'web', UID, 'app', 3],
    // another pods directory, and a relative one
    [`/mnt/node/kubelet-logs/default_api-0_${UID}/main/0.log`, 'default', 'api-0', UID, 'main', 0],
    [`default_api-0_${UID}/main/0.log`, 'default', 'api-0', UID, 'main', 0],
    // pod names are DNS-1123 subdomains: dots allowed
    [
      `/var/log/pods/kube-system_coredns.v1-abc_${UID}/coredns/0.log`,
      'kube-system',
      'coredns.v1-abc',
      UID,
      'coredns',
      0,
    ],
    // static pods are logged under the kubelet's config hash
    [
      '/var/log/pods/kube-system_kube-apiserver-node-a_6a6e3d0ebfa0e0cb5b4c5e1a2f4b8c6d/kube-apiserver/1.log',
      'kube-system',
      'kube-apiserver-node-a',
      '6a6e3d0ebfa0e0cb5b4c5e1a2f4b8c6d',
      'kube-apiserver',
      1,
    ],
  ])('%s', (path, namespace, podName, podUid, container, restartCount) => {
    expect(parsePodLogPath(path)).toEqual({ namespace, podName, podUid, container, restartCount });
  });

  it.each([
    ['not under a pod directory', '/var/log/syslog'],
    ['too short', '0.log'],
    ['two parts', `/var/log/pods/shop_${UID}/app/0.log`],
    ['four parts', `/var/log/pods/shop_web_extra_${UID}/app/0.log`],
    ['empty namespace', `/var/log/pods/_web_${UID}/app/0.log`],
    ['uppercase namespace', `/var/log/pods/Shop_web_${UID}/app/0.log`],
    ['uid not hex', `/var/log/pods/shop_web_not-a-uid!/app/0.log`],
    ['container with a dot', `/var/log/pods/shop_web_${UID}/a.b/0.log`],
    ['not a number', `/var/log/pods/shop_web_${UID}/app/x.log`],
    [
      'the kubelet’s temporary file while compressing',
      `/var/log/pods/shop_web_${UID}/app/0.log.20261120-081500.tmp`,
    ],
    ['bad rotation stamp', `/var/log/pods/shop_web_${UID}/app/0.log.2026-11-20`],
    ['a directory', `/var/log/pods/shop_web_${UID}/app`],
    ['a containers link', `/var/log/containers/web_shop_app-${CID}.log`],
  ])('%s -> undefined', (_why, path) => {
    expect(parsePodLogPath(path)).toBeUndefined();
  });
});

describe('parseContainerLinkName', () => {
  it.each([
    [
      `/var/log/containers/web_shop_app-${CID}.log`,
      { namespace: 'shop', podName: 'web', container: 'app', containerId: CID },
    ],
    // container names may contain '-': the id is the last 64 hex digits
    [
      `/var/log/containers/web-7d9_shop_istio-proxy-${CID}.log`,
      { namespace: 'shop', podName: 'web-7d9', container: 'istio-proxy', containerId: CID },
    ],
    [`web_shop_app-${CID}.log`, { namespace: 'shop', podName: 'web', container: 'app', containerId: CID }],
  ])('%s', (path, expected) => {
    expect(parseContainerLinkName(path)).toEqual(expected);
  });

  it.each([
    ['short id', '/var/log/containers/web_shop_app-abc123.log'],
    ['no container', `/var/log/containers/web_shop_${CID}.log`],
    ['a pod log path', `/var/log/pods/shop_web_${UID}/app/0.log`],
    ['uppercase', `/var/log/containers/Web_shop_app-${CID}.log`],
  ])('%s -> undefined', (_why, path) => {
    expect(parseContainerLinkName(path)).toBeUndefined();
  });
});
