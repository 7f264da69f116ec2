// The pod cache's two ways to the API: the built-in client (kube-client.ts) in-cluster over TLS, with the service
// account's token and CA, and @kubernetes/client-node for kubeconfig files, loaded only then.
// (k8s-pod-cache.test.ts and k8s-enricher.test.ts run the built-in client over http through `url` connections.)

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesPodSource } from '../../src/enrich/pod-cache.ts';
import { UsageError } from '../../src/errors.ts';
import { type FakeKubernetes, makePod, startFakeKubernetes } from '../fakes/fake-kubernetes.ts';
import { selfSigned as selfSignedIn } from '../helpers/tls.ts';

const silent = { info() {}, warn() {}, error() {} };
const root = join(import.meta.dirname, '../..');

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let dir: string;
const paths = { key: '', cert: '', otherCert: '', token: '' };

const selfSigned = (name: string) => selfSignedIn(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'logferry-k8s-light-'));
  const api = selfSigned('api');
  paths.key = api.key;
  paths.cert = api.cert;
  paths.otherCert = selfSigned('other').cert;
  paths.token = join(dir, 'token');
  await writeFile(paths.token, 'sa-token\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fake: FakeKubernetes | undefined;
let tls: TlsServer | undefined;
let source: KubernetesPodSource | undefined;
afterEach(async () => {
  await source?.stop();
  await fake?.close();
  if (tls !== undefined) await new Promise((r) => tls!.close(r));
  source = undefined;
  fake = undefined;
  tls = undefined;
});

/** The fake API behind TLS: a proxy that terminates TLS and forwards the bytes, keeping what requests said. */
async function startTlsApi(): Promise<{ fake: FakeKubernetes; port: number; heads: string[] }> {
  fake = await startFakeKubernetes({ token: 'sa-token' });
  const heads: string[] = [];
  const upstreamPort = fake.port;
  const sockets = new Set<Socket>();
  tls = createTlsServer({ key: await readFile(paths.key), cert: await readFile(paths.cert) }, (client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (d: Buffer) => {
      const text = d.toString('latin1');
      if (text.startsWith('GET ')) heads.push(text.slice(0, text.indexOf('\r\n\r\n')));
    });
    client.pipe(upstream).pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  tls.on('close', () => {
    for (const s of sockets) s.destroy();
  });
  await new Promise<void>((r) => tls!.listen(0, '127.0.0.1', r));
  const address = tls.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return { fake, port: address.port, heads };
}

function inCluster(port: number, caFile: string): KubernetesPodSource {
  return new KubernetesPodSource({
    nodeName: 'node-a',
    logger: silent,
    connection: { kind: 'in-cluster' },
    inCluster: {
      env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port) },
      tokenFile: paths.token,
      caFile,
    },
    userAgent: 'logferry/1.2.3',
    backoffInitialMs: 20,
    backoffMaxMs: 200,
    healthyAfterMs: 100,
    listTimeoutMs: 2_000,
  });
}

describe('the built-in client in a pod', () => {
  it('reaches the API over TLS with the service account’s CA and token', async () => {
    const api = await startTlsApi();
    const pod = api.fake.addPod(makePod({ name: 'web' }));
    source = inCluster(api.port, paths.cert);
    await source.start();
    await until('synced', () => source!.status().state === 'synced');
    expect(source.get(pod.metadata!.uid!)?.name).toBe('web');
    await until('a watch', () => api.fake.openWatches('Pod') === 1);
    const later = api.fake.addPod(makePod({ name: 'later' }));
    await until('a watched pod', () => source!.get(later.metadata!.uid!) !== undefined);

    expect(api.fake.requests.map((r) => [r.path, r.watch, r.status, r.authorization])).toEqual([
      ['/api/v1/pods', false, 200, 'Bearer sa-token'],
      ['/api/v1/pods', true, 200, 'Bearer sa-token'],
    ]);
    for (const head of api.heads) {
      expect(head).toMatch(/^user-agent: logferry\/1\.2\.3$/im);
      expect(head).toMatch(/^accept: application\/json$/im);
    }
  });

  it('refuses a server whose certificate the CA file does not vouch for, saying so', async () => {
    const api = await startTlsApi();
    source = inCluster(api.port, paths.otherCert);
    await source.start();
    await until('unreachable', () => source!.status().state === 'unreachable');
    expect(source.status().lastError).toBe(
      `listing pods: the Kubernetes API at https://127.0.0.1:${api.port} presented a certificate not trusted by the CA file ${paths.otherCert} (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate)`,
    );
    expect(api.fake.requests).toHaveLength(0);
  });

  it('reports a missing CA file', async () => {
    const api = await startTlsApi();
    source = inCluster(api.port, join(dir, 'missing-ca.crt'));
    await source.start();
    await until('unreachable', () => source!.status().state === 'unreachable');
    expect(source.status().lastError).toBe(
      `listing pods: cannot read the CA file ${join(dir, 'missing-ca.crt')}: ENOENT`,
    );
  });
});

describe('kubeconfig files through @kubernetes/client-node', () => {
  async function kubeconfig(url: string): Promise<string> {
    const file = join(dir, 'kubeconfig');
    await writeFile(
      file,
      `apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: { server: '${url}', insecure-skip-tls-verify: true }
users:
- name: me
  user: { token: sa-token }
contexts:
- name: fake
  context: { cluster: fake, user: me }
current-context: fake
`,
    );
    return file;
  }

  it('lists and watches through the library for a kubeconfig connection', async () => {
    fake = await startFakeKubernetes({ token: 'sa-token' });
    const pod = fake.addPod(makePod({ name: 'p' }));
    source = await KubernetesPodSource.create({
      nodeName: 'node-a',
      logger: silent,
      connection: { kind: 'kubeconfig', path: await kubeconfig(fake.url) },
      healthyAfterMs: 100,
    });
    await source.start();
    await until('synced', () => source!.status().state === 'synced');
    expect(source.get(pod.metadata!.uid!)?.name).toBe('p');
    await until('a watch', () => fake!.openWatches('Pod') === 1);
    const later = fake.addPod(makePod({ name: 'later' }));
    await until('a watched pod', () => source!.get(later.metadata!.uid!) !== undefined);
    expect(fake.requests.every((r) => r.authorization === 'Bearer sa-token')).toBe(true);
  });

  it('takes a KubeConfig built by the caller', async () => {
    fake = await startFakeKubernetes();
    const pod = fake.addPod(makePod({ name: 'p' }));
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'c', server: fake.url, skipTLSVerify: true }, { name: 'u' });
    source = new KubernetesPodSource({ nodeName: 'node-a', logger: silent, kubeConfig: kc });
    await source.start();
    await until('synced', () => source!.status().state === 'synced');
    expect(source.get(pod.metadata!.uid!)?.name).toBe('p');
  });

  it('create() rejects a kubeconfig that cannot be read with a usage error', async () => {
    await expect(
      KubernetesPodSource.create({
        nodeName: 'node-a',
        logger: silent,
        connection: { kind: 'kubeconfig', path: join(dir, 'no-such-kubeconfig') },
      }),
    ).rejects.toThrow(UsageError);
  });
});

describe('what the agent loads', () => {
  // A child process (the built dist/), recording every module it resolves. Not spawnSync: the fake runs here.
  async function modulesLoaded(connection: object): Promise<{ synced: boolean; library: boolean }> {
    const script = `
      import { registerHooks } from 'node:module';
      let library = false;
      registerHooks({
        resolve(specifier, context, next) {
          const r = next(specifier, context);
          if (r.url.includes('@kubernetes/client-node')) library = true;
          return r;
        },
      });
      const { KubernetesPodSource } = await import('./dist/enrich/pod-cache.js');
      const source = await KubernetesPodSource.create({
        nodeName: 'node-a',
        logger: { info() {}, warn() {}, error() {} },
        connection: ${JSON.stringify(connection)},
      });
      await source.start();
      const deadline = Date.now() + 5000;
      while (source.status().state !== 'synced' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      console.log(JSON.stringify({ synced: source.status().state === 'synced', library }));
      await source.stop();
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
      timeout: 20_000,
    });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as { synced: boolean; library: boolean };
  }

  it('never loads @kubernetes/client-node for an API URL, and loads it for a kubeconfig', async () => {
    fake = await startFakeKubernetes();
    expect(await modulesLoaded({ kind: 'url', url: fake.url })).toEqual({ synced: true, library: false });
    const file = join(dir, 'kubeconfig-child');
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'c', server: fake.url, skipTLSVerify: true }, { name: 'u' });
    await writeFile(file, kc.exportConfig());
    expect(await modulesLoaded({ kind: 'kubeconfig', path: file })).toEqual({ synced: true, library: true });
  });
});
