import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../../src/enrich/kube-config.ts';
import { UsageError } from '../../../src/errors.ts';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
- name: one
  cluster: { server: 'https://one.example:6443' }
- name: two
  cluster: { server: 'https://two.example:6443' }
users:
- name: me
  user: { token: abc }
contexts:
- name: ctx-one
  context: { cluster: one, user: me }
- name: ctx-two
  context: { cluster: two, user: me }
current-context: ctx-one
`;

describe('loadKubeConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'logferry-kubeconfig-'));
  const file = join(dir, 'config');
  writeFileSync(file, KUBECONFIG);

  it.each([
    [
      'an http URL (no TLS to verify)',
      { kind: 'url' as const, url: 'http://127.0.0.1:8001/' },
      'http://127.0.0.1:8001',
      true,
    ],
    ['an https URL', { kind: 'url' as const, url: 'https://10.0.0.1:443' }, 'https://10.0.0.1', false],
    ['a kubeconfig file', { kind: 'kubeconfig' as const, path: file }, 'https://one.example:6443', false],
    [
      'a kubeconfig context',
      { kind: 'kubeconfig' as const, path: file, context: 'ctx-two' },
      'https://two.example:6443',
      false,
    ],
  ])('%s', (_name, conn, server, skipTLSVerify) => {
    const cluster = loadKubeConfig(conn, {}).getCurrentCluster();
    expect(cluster?.server).toBe(server);
    expect(cluster?.skipTLSVerify).toBe(skipTLSVerify);
  });

  it('reads KUBECONFIG when not in a pod', () => {
    expect(loadKubeConfig({ kind: 'auto' }, { KUBECONFIG: file }).getCurrentCluster()?.server).toBe(
      'https://one.example:6443',
    );
  });

  it('uses the service account in a pod', () => {
    const kc = loadKubeConfig(
      { kind: 'auto' },
      { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
    );
    expect(kc.getCurrentUser()?.authProvider).toMatchObject({ name: 'tokenFile' });
  });

  it.each([
    ['nothing configured', { kind: 'auto' as const }, { HOME: dir }],
    ['in-cluster outside a pod', { kind: 'in-cluster' as const }, {}],
    ['a missing file', { kind: 'kubeconfig' as const, path: join(dir, 'missing') }, {}],
    ['a bad URL', { kind: 'url' as const, url: 'not a url' }, {}],
  ])('%s is a usage error', (_name, conn, env) => {
    expect(() => loadKubeConfig(conn, env)).toThrow(UsageError);
  });
});
