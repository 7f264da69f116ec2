// The Kubernetes API side of the agent benchmarks: the test suite's fake (test/fakes/fake-kubernetes.ts,
// list + watch of /api/v1/pods, what logferry uses) filled with the workload's pods, and a small
// adapter in front of the same pods for what Fluent Bit's kubernetes filter asks instead: one pod by
// name, `GET /api/v1/namespaces/<ns>/pods/<name>`, which the fake does not serve (it models
// cluster-wide lists and watches only).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { V1Pod } from '@kubernetes/client-node';
import { type FakeKubernetes, makePod, startFakeKubernetes } from '../../test/fakes/fake-kubernetes.ts';
import type { CriTree } from './workload.ts';

export const NODE_NAME = 'bench-node';

/** The bearer token the pod API adapter expects (written to Fluent Bit's Kube_Token_File). */
export const POD_API_TOKEN = 'bench-token';

/** Labels a Deployment's pod typically carries; derived from the pod name so runs are repeatable. */
function podLabels(pod: string, namespace: string): Record<string, string> {
  const parts = pod.split('-');
  const service = parts[0] ?? pod;
  const labels: Record<string, string> = {
    app: service,
    'app.kubernetes.io/name': service,
    'app.kubernetes.io/part-of': namespace,
    'app.kubernetes.io/version': '1.4.2',
    tier: service === 'frontend' ? 'web' : 'backend',
  };
  if (parts.length === 3) labels['pod-template-hash'] = parts[1]!;
  else labels['statefulset.kubernetes.io/pod-name'] = pod;
  return labels;
}

/** The container's 64-hex-digit id, derived from the pod uid (kubelet names its log symlinks with it). */
export function containerId(uid: string): string {
  const hex = uid.replaceAll('-', '');
  return `${hex}${hex.slice(0, 32)}`;
}

/** A fake Kubernetes API serving the tree's pods, with labels, all on NODE_NAME. */
export async function startBenchKube(tree: CriTree): Promise<FakeKubernetes> {
  const kube = await startFakeKubernetes();
  for (const f of tree.files) {
    const service = f.pod.split('-')[0] ?? f.pod;
    const statefulSet = f.pod.split('-').length === 2;
    const pod: V1Pod = makePod({
      name: f.pod,
      namespace: f.namespace,
      nodeName: NODE_NAME,
      uid: f.uid,
      labels: podLabels(f.pod, f.namespace),
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-21T20:00:00Z' },
      owner: statefulSet
        ? { kind: 'StatefulSet', name: service }
        : { kind: 'ReplicaSet', name: f.pod.split('-').slice(0, 2).join('-') },
      containers: [
        {
          name: f.container,
          image: `registry.example.com/shop/${service}:1.4.2`,
          id: `containerd://${containerId(f.uid)}`,
        },
      ],
    });
    kube.addPod(pod);
  }
  return kube;
}

export interface PodApi {
  readonly url: string;
  /** requests answered, and those refused or not understood (as `status METHOD path`) */
  readonly requests: number;
  readonly problems: readonly string[];
  close(): Promise<void>;
}

const POD_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/?]+)$/;

function status(code: number, reason: string, message: string): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  });
}

/** Serves the fake's pods one by name, with a bearer token, as the API server does. */
export async function startPodApi(kube: FakeKubernetes): Promise<PodApi> {
  let requests = 0;
  const problems: string[] = [];
  const send = (res: ServerResponse, code: number, body: string) => {
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    requests++;
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.headers.authorization !== `Bearer ${POD_API_TOKEN}`) {
      problems.push(`401 ${req.method} ${path} (authorization ${JSON.stringify(req.headers.authorization)})`);
      send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const m = POD_PATH.exec(path);
    const pod =
      m === null || req.method !== 'GET'
        ? undefined
        : kube.pods().find((p) => p.metadata?.namespace === m[1] && p.metadata?.name === m[2]);
    if (pod === undefined) {
      problems.push(`404 ${req.method} ${path}`);
      send(res, 404, status(404, 'NotFound', `the server could not find the requested resource (${path})`));
      return;
    }
    send(res, 200, JSON.stringify({ kind: 'Pod', apiVersion: 'v1', ...pod }));
  };
  const sockets = new Set<Socket>();
  const server = createServer(handle);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return requests;
    },
    problems,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
