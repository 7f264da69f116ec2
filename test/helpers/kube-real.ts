// A real kube-apiserver for the real-Kubernetes suite (test/integration/k8s-real-api.test.ts): started by
// scripts/kube-test-server.sh, found through the environment its `env` command prints. The suite talks to it as
// an administrator through its REST API (and kubectl for `apply` and `create token`), and runs the agent as a
// pod would: a service-account directory and KUBERNETES_SERVICE_HOST/PORT.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import * as https from 'node:https';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface RealKube {
  /** https://127.0.0.1:<port> */
  url: string;
  host: string;
  port: number;
  caFile: string;
  ca: Buffer;
  adminToken: string;
  /** an admin kubeconfig (for kubectl) */
  kubeconfig: string;
  /** etcd's client URL, for compaction */
  etcdUrl: string;
  version: string;
}

/** The server `scripts/kube-test-server.sh start` runs, or undefined when its environment is not set. */
export function realKube(env: NodeJS.ProcessEnv = process.env): RealKube | undefined {
  const url = env.LOGFERRY_TEST_KUBE_URL;
  if (url === undefined || url === '') return undefined;
  const need = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') {
      throw new Error(`${name} is not set: use eval "$(scripts/kube-test-server.sh env)"`);
    }
    return value;
  };
  const parsed = new URL(url);
  const caFile = need('LOGFERRY_TEST_KUBE_CA_FILE');
  return {
    url,
    host: parsed.hostname,
    port: Number(parsed.port),
    caFile,
    ca: readFileSync(caFile),
    adminToken: readFileSync(need('LOGFERRY_TEST_KUBE_ADMIN_TOKEN_FILE'), 'utf8').trim(),
    kubeconfig: need('LOGFERRY_TEST_KUBE_KUBECONFIG'),
    etcdUrl: need('LOGFERRY_TEST_KUBE_ETCD_URL'),
    version: env.LOGFERRY_TEST_KUBE_VERSION ?? 'unknown',
  };
}

export interface ApiAnswer<T = unknown> {
  status: number;
  body: T;
  text: string;
}

/** One REST call as the admin (or with `token`); JSON in and out. Never throws on an HTTP status. */
export function api<T = Record<string, unknown>>(
  kube: RealKube,
  method: string,
  path: string,
  body?: unknown,
  opts: { token?: string; contentType?: string } = {},
): Promise<ApiAnswer<T>> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      new URL(path, kube.url),
      {
        method,
        ca: kube.ca,
        headers: {
          Accept: 'application/json',
          Authorization: `Bearer ${opts.token ?? kube.adminToken}`,
          ...(payload === undefined
            ? {}
            : {
                'Content-Type': opts.contentType ?? 'application/json',
                'Content-Length': Buffer.byteLength(payload),
              }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, body: parsed as T, text });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** As api(), but a status outside 2xx throws with the answer. */
export async function apiOk<T = Record<string, unknown>>(
  kube: RealKube,
  method: string,
  path: string,
  body?: unknown,
  contentType?: string,
): Promise<T> {
  const answer = await api<T>(kube, method, path, body, contentType === undefined ? {} : { contentType });
  if (answer.status < 200 || answer.status > 299) {
    throw new Error(`${method} ${path}: HTTP ${answer.status}: ${answer.text.slice(0, 500)}`);
  }
  return answer.body;
}

/** The machine's kubectl (v1.32 has `create token`; Debian's kubernetes-client 1.20 has not). */
export const KUBECTL = process.env.LOGFERRY_TEST_KUBECTL ?? 'kubectl';

export async function kubectl(kube: RealKube, args: string[], input?: string): Promise<string> {
  const child = run(KUBECTL, ['--kubeconfig', kube.kubeconfig, ...args], { maxBuffer: 16 * 1024 * 1024 });
  if (input !== undefined) {
    child.child.stdin!.end(input);
  }
  try {
    const { stdout } = await child;
    return stdout;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(
        `${KUBECTL} not found: the real-Kubernetes suite needs kubectl >= 1.24 (for create token); set LOGFERRY_TEST_KUBECTL`,
      );
    }
    throw err;
  }
}

/** A namespace and the `default` ServiceAccount a controller manager would have created in it. */
export async function createNamespace(
  kube: RealKube,
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  await apiOk(kube, 'POST', '/api/v1/namespaces', { metadata: { name, labels } });
  await apiOk(kube, 'POST', `/api/v1/namespaces/${name}/serviceaccounts`, { metadata: { name: 'default' } });
}

export interface PodSpecInit {
  name: string;
  namespace: string;
  nodeName: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
  }>;
  containers?: Array<{ name: string; image: string }>;
  /** default: the namespace's `default` */
  serviceAccountName?: string;
}

export interface CreatedPod {
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string };
  [key: string]: unknown;
}

export function createPod(kube: RealKube, init: PodSpecInit): Promise<CreatedPod> {
  return apiOk<CreatedPod>(kube, 'POST', `/api/v1/namespaces/${init.namespace}/pods`, {
    metadata: {
      name: init.name,
      labels: init.labels ?? {},
      annotations: init.annotations ?? {},
      ...(init.ownerReferences === undefined ? {} : { ownerReferences: init.ownerReferences }),
    },
    spec: {
      nodeName: init.nodeName,
      ...(init.serviceAccountName === undefined ? {} : { serviceAccountName: init.serviceAccountName }),
      // no kubelet will mount it; a pod that mounts nothing needs no token Secret or projected volume
      automountServiceAccountToken: false,
      containers: init.containers ?? [{ name: 'app', image: 'registry.example/app:1.0' }],
    },
  });
}

/**
 * What a kubelet reports once the containers run: phase, pod IP and a containerStatus (with its
 * `containerd://<id>`) per container, through the `status` subresource as the kubelet writes it.
 */
export function patchPodStatus(
  kube: RealKube,
  namespace: string,
  name: string,
  containers: Array<{ name: string; image: string; containerId: string; restartCount?: number }>,
  podIp = '10.244.1.7',
): Promise<CreatedPod> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return apiOk<CreatedPod>(
    kube,
    'PATCH',
    `/api/v1/namespaces/${namespace}/pods/${name}/status`,
    {
      status: {
        phase: 'Running',
        podIP: podIp,
        podIPs: [{ ip: podIp }],
        startTime: now,
        containerStatuses: containers.map((c) => ({
          name: c.name,
          image: c.image,
          imageID: `${c.image}@sha256:${'0'.repeat(64)}`,
          containerID: c.containerId,
          ready: true,
          started: true,
          restartCount: c.restartCount ?? 0,
          state: { running: { startedAt: now } },
        })),
      },
    },
    'application/merge-patch+json',
  );
}

/** A merge patch of the pod's metadata (labels, annotations). */
export function patchPodMetadata(
  kube: RealKube,
  namespace: string,
  name: string,
  metadata: { labels?: Record<string, string | null>; annotations?: Record<string, string | null> },
): Promise<CreatedPod> {
  return apiOk<CreatedPod>(
    kube,
    'PATCH',
    `/api/v1/namespaces/${namespace}/pods/${name}`,
    { metadata },
    'application/merge-patch+json',
  );
}

/** DELETE with gracePeriodSeconds 0: without a kubelet, anything else only sets a deletion timestamp. */
export async function deletePodNow(kube: RealKube, namespace: string, name: string): Promise<void> {
  await apiOk(kube, 'DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`, {
    kind: 'DeleteOptions',
    apiVersion: 'v1',
    gracePeriodSeconds: 0,
  });
}

/** `kubectl create token` (the TokenRequest API) for a ServiceAccount, optionally bound to a pod's lifetime. */
export async function createToken(
  kube: RealKube,
  namespace: string,
  serviceAccount: string,
  boundPod?: string,
): Promise<string> {
  const args = ['-n', namespace, 'create', 'token', serviceAccount, '--duration', '1h'];
  if (boundPod !== undefined) args.push('--bound-object-kind', 'Pod', '--bound-object-name', boundPod);
  return (await kubectl(kube, args)).trim();
}

/** The directory a projected service-account volume gives a pod: token, ca.crt, namespace. */
export async function writeServiceAccountDir(
  dir: string,
  kube: RealKube,
  token: string,
  namespace: string,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'token'), token);
  await writeFile(join(dir, 'ca.crt'), kube.ca);
  await writeFile(join(dir, 'namespace'), namespace);
  return dir;
}

async function etcd<T>(kube: RealKube, path: string, body: unknown): Promise<T> {
  const res = await fetch(new URL(path, kube.etcdUrl), { method: 'POST', body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

/**
 * Compacts etcd at `at` or its current revision (through etcd's gRPC gateway, as the API server's own compactor
 * does every 5 minutes in a cluster): a watch resumed from an older resourceVersion is then answered 410 Gone.
 * Returns the revision compacted at.
 */
export async function compactEtcd(kube: RealKube, at?: number): Promise<number> {
  // a range over one key just to read the header's revision (key "\0" base64-encoded)
  const range = await etcd<{ header: { revision: string } }>(kube, '/v3/kv/range', { key: 'AA==' });
  const revision = at ?? Number(range.header.revision);
  try {
    await etcd(kube, '/v3/kv/compaction', { revision: String(revision), physical: true });
  } catch (err) {
    // nothing changed since the last compaction: already compacted at this revision
    if (!/has been compacted/.test((err as Error).message)) throw err;
  }
  return revision;
}

/**
 * A TCP proxy in front of the API server (TLS passes through it untouched): `cut()` closes every connection
 * and refuses new ones until `resume()`, as a network partition between a node and the API would.
 */
export interface CutProxy {
  port: number;
  /** connections accepted so far */
  readonly connections: number;
  cut(): void;
  resume(): void;
  close(): Promise<void>;
}

export async function startCutProxy(targetHost: string, targetPort: number): Promise<CutProxy> {
  const sockets = new Set<Socket>();
  let cut = false;
  let connections = 0;
  const server: Server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    connections += 1;
    const upstream = connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy did not bind');
  return {
    port: address.port,
    get connections() {
      return connections;
    },
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    resume() {
      cut = false;
    },
    close() {
      cut = true;
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
