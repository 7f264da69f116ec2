// A fake Kubernetes API server that is a real HTTP server on 127.0.0.1 (port 0), faithful to what a node agent's
// list + watch sees of /api/v1/pods and /api/v1/namespaces:
//
// - one cluster-wide resourceVersion counter (like etcd's revision); every object carries the version of its
//   last change, lists carry the current one;
// - lists filtered by fieldSelector (metadata.name, metadata.namespace, spec.nodeName, status.phase; others are
//   rejected with 400 as the API does), list items without kind/apiVersion, as the API sends them;
// - watches as chunked JSON lines `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}`: from
//   resourceVersion unset or "0" they start with a synthetic ADDED per current object; from a version N they
//   replay every change after N; an object entering or leaving a field selector is seen as ADDED or DELETED;
//   BOOKMARKs only with allowWatchBookmarks; the stream ends after timeoutSeconds;
// - resuming from a version older than the last compact() gives, like the API, HTTP 200 and one ERROR event
//   whose object is a Status with code 410 (reason Expired), then the end of the stream; resuming from exactly
//   one version before it, when that version changed an existing object, gives the real server's 500
//   InternalError ERROR event ("etcd event received with PrevKv=nil");
// - optional bearer token (401 Status otherwise);
// - RBAC refusals on demand (forbid()): 403 with the Status a real API server sends, naming the user and verb;
// - namespaces carry the `kubernetes.io/metadata.name` label, set (and kept) by the API server itself since 1.21.
//
// Checked against a real kube-apiserver v1.34.4 (test/integration/k8s-real-api.test.ts); where the two
// disagreed, the fake was changed to match (the namespace label, the 403 body).
//
// Not modelled: label selectors (recorded, ignored), pagination (limit/continue), namespaced paths, other kinds,
// the 3 s wait before "Too large resource version" (answered at once), HTTP/2.
//
// Test controls: add/update/delete pods and namespaces, compact(), dropWatches(), sendBookmarks(),
// stop()/restart() on the same port, garbage mode (watches get invalid JSON lines and end), hang mode (requests get
// response headers and then nothing, forever), and a log of every request.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { KubernetesObject, V1Namespace, V1Pod, V1Status } from '@kubernetes/client-node';
import { type FastifyInstance, type FastifyReply, type FastifyRequest, fastify } from 'fastify';

// The fake keeps wall-clock time even when a test fakes timers.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const realSetInterval = globalThis.setInterval;
const realClearInterval = globalThis.clearInterval;

type Kind = 'Pod' | 'Namespace';
type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface FakeKubernetesOptions {
  /** when set, every request needs `Authorization: Bearer <token>` */
  token?: string;
  /** port to listen on; 0 (default) picks one. stop()/restart() keep the port bound first */
  port?: number;
  /** send a BOOKMARK to every watch that allows them this often; default: only on sendBookmarks() */
  bookmarkIntervalMs?: number;
  /** the user named in 403 messages; default the agent's service account, system:serviceaccount:logferry:logferry */
  user?: string;
}

export type FakeVerb = 'list' | 'watch';
export type FakeResource = 'pods' | 'namespaces';

export interface RecordedRequest {
  method: string;
  /** path and query as sent */
  url: string;
  path: string;
  query: Record<string, string>;
  watch: boolean;
  /** the response status (200 for watches, hung requests included) */
  status: number | undefined;
  authorization: string | undefined;
}

export interface FakeKubernetes {
  readonly url: string;
  readonly port: number;
  /** every request received, oldest first */
  readonly requests: readonly RecordedRequest[];
  /** the current cluster-wide resourceVersion */
  readonly resourceVersion: number;
  /** Creates a pod (uid, resourceVersion, creationTimestamp and namespace 'default' filled in when missing). */
  addPod(pod: V1Pod): V1Pod;
  /** Replaces the pod with the same namespace/name (keeping its uid). */
  updatePod(pod: V1Pod): V1Pod;
  /** Changes a pod in place: `update(copy)` mutates a copy of the stored pod. */
  patchPod(namespace: string, name: string, update: (pod: V1Pod) => void): V1Pod;
  deletePod(namespace: string, name: string): V1Pod;
  addNamespace(ns: V1Namespace): V1Namespace;
  updateNamespace(ns: V1Namespace): V1Namespace;
  deleteNamespace(name: string): V1Namespace;
  pods(): V1Pod[];
  /**
   * Forgets the change history before the current version, as an etcd compaction at it: watches resuming from
   * two or more versions back get 410 Gone; from one version back, see the 500 above.
   */
  compact(): void;
  /** Ends every open watch: 'destroy' (default) cuts the connection, 'end' finishes the response cleanly. */
  dropWatches(mode?: 'destroy' | 'end'): number;
  /** Sends a BOOKMARK at the current version to every open watch that allows them. */
  sendBookmarks(): void;
  /** Open watch streams (of one kind, or all). */
  openWatches(kind?: Kind): number;
  /** Watches get invalid JSON lines and end (true), or behave (false). */
  setGarbage(on: boolean): void;
  /**
   * New requests get 200 headers and then nothing, like a half-dead connection; turning it off affects new
   * requests only (held ones stay open until the client gives up or the server stops).
   */
  setHang(on: boolean): void;
  /**
   * RBAC refuses `verb` on `resource` from now on (403 Forbidden, the real Status body), until allowAll().
   * A watch is refused before it starts, with an HTTP 403, as a real API server does.
   */
  forbid(verb: FakeVerb, resource: FakeResource): void;
  allowAll(): void;
  /** Clears the request log. */
  clearRequests(): void;
  /** Closes the listener and every connection: clients get "connection refused" until restart(). */
  stop(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

interface StoredEvent {
  rv: number;
  kind: Kind;
  type: EventType;
  object: KubernetesObject;
  /** the object before a MODIFIED change, to tell selector entries and exits */
  previous: KubernetesObject | undefined;
}

interface Watcher {
  kind: Kind;
  matches: (obj: KubernetesObject) => boolean;
  bookmarks: boolean;
  res: ServerResponse;
  timer: NodeJS.Timeout | undefined;
}

type Requirement = { field: string; op: '=' | '!='; value: string };

const SELECTABLE: Record<Kind, readonly string[]> = {
  Pod: ['metadata.name', 'metadata.namespace', 'spec.nodeName', 'status.phase'],
  Namespace: ['metadata.name', 'status.phase'],
};

function status(code: number, reason: string, message: string): V1Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function fieldValue(obj: KubernetesObject, field: string): string {
  const o = obj as {
    metadata?: Record<string, unknown>;
    spec?: Record<string, unknown>;
    status?: Record<string, unknown>;
  };
  const [top, key] = field.split('.') as [string, string];
  const section = top === 'metadata' ? o.metadata : top === 'spec' ? o.spec : o.status;
  const value = section?.[key];
  return typeof value === 'string' ? value : '';
}

/** Parses a field selector; a string is an error message (the API's 400). */
function parseFieldSelector(selector: string | undefined, kind: Kind): Requirement[] | string {
  if (selector === undefined || selector === '') return [];
  const out: Requirement[] = [];
  for (const term of selector.split(',')) {
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(term.trim());
    if (m === null) return `invalid field selector: ${term}`;
    const field = m[1]!;
    if (!SELECTABLE[kind].includes(field)) {
      return `field label not supported: ${field}`;
    }
    out.push({ field, op: m[2] === '!=' ? '!=' : '=', value: m[3]! });
  }
  return out;
}

function matcher(reqs: readonly Requirement[]): (obj: KubernetesObject) => boolean {
  return (obj) => reqs.every((r) => (fieldValue(obj, r.field) === r.value) === (r.op === '='));
}

function clone<T>(obj: T): T {
  return JSON.parse(JSON.stringify(obj)) as T;
}

function withoutTypeMeta(obj: KubernetesObject): KubernetesObject {
  const { kind: _k, apiVersion: _a, ...rest } = obj;
  return rest;
}

function keyOf(kind: Kind, obj: KubernetesObject): string {
  return kind === 'Pod'
    ? `Pod/${obj.metadata?.namespace}/${obj.metadata?.name}`
    : `Namespace/${obj.metadata?.name}`;
}

export async function startFakeKubernetes(opts: FakeKubernetesOptions = {}): Promise<FakeKubernetes> {
  let rv = 1;
  const objects = new Map<string, KubernetesObject>();
  let history: StoredEvent[] = [];
  let compactedRv = 0;
  let requests: RecordedRequest[] = [];
  const watchers = new Set<Watcher>();
  const held = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  let garbage = false;
  let hang = false;
  let closed = false;
  const forbidden = new Set<string>();
  const user = opts.user ?? 'system:serviceaccount:logferry:logferry';

  const server: Server = createServer();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const app: FastifyInstance = fastify({
    logger: false,
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      server.on('request', handler);
      return server;
    },
  });
  const records = new WeakMap<FastifyRequest, RecordedRequest>();

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const url = new URL(req.url, 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const record: RecordedRequest = {
      method: req.method,
      url: req.url,
      path: url.pathname,
      query,
      watch: query.watch === 'true' || query.watch === '1',
      status: undefined,
      authorization: req.headers.authorization,
    };
    requests.push(record);
    records.set(req, record);
    if (opts.token !== undefined && req.headers.authorization !== `Bearer ${opts.token}`) {
      record.status = 401;
      return reply.code(401).send(status(401, 'Unauthorized', 'Unauthorized'));
    }
    const resource = url.pathname.replace(/^\/api\/v1\//, '');
    const verb = record.watch ? 'watch' : 'list';
    if (forbidden.has(`${verb} ${resource}`)) {
      record.status = 403;
      // as kube-apiserver v1.34 answers a ServiceAccount without the verb (cluster-wide list or watch)
      return reply.code(403).send({
        ...status(
          403,
          'Forbidden',
          `${resource} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "" at the cluster scope`,
        ),
        details: { kind: resource },
      });
    }
    if (hang) {
      record.status = 200;
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'application/json' });
      reply.raw.flushHeaders();
      held.add(reply.raw);
      reply.raw.on('close', () => held.delete(reply.raw));
      // Never settles: the route handler does not run, and the response stays open until the connection goes.
      await new Promise<never>(() => {});
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    const record = records.get(req);
    if (record !== undefined && record.status === undefined) record.status = reply.statusCode;
  });

  function write(w: Watcher, type: string, object: unknown): void {
    if (!w.res.writableEnded && !w.res.destroyed) w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  function endWatch(w: Watcher, mode: 'destroy' | 'end'): void {
    watchers.delete(w);
    if (w.timer !== undefined) realClearTimeout(w.timer);
    if (mode === 'destroy') w.res.destroy();
    else w.res.end();
  }

  function bookmark(kind: Kind): KubernetesObject {
    return { kind, apiVersion: 'v1', metadata: { resourceVersion: String(rv) } };
  }

  /** What a watcher with this selector sees of a stored change, if anything. */
  function visible(w: Watcher, ev: StoredEvent): EventType | undefined {
    if (ev.kind !== w.kind) return undefined;
    const now = w.matches(ev.object);
    if (ev.type !== 'MODIFIED') return now ? ev.type : undefined;
    const before = ev.previous !== undefined && w.matches(ev.previous);
    if (before && now) return 'MODIFIED';
    if (now) return 'ADDED';
    if (before) return 'DELETED';
    return undefined;
  }

  function record(
    kind: Kind,
    type: EventType,
    object: KubernetesObject,
    previous: KubernetesObject | undefined,
  ): void {
    const ev: StoredEvent = { rv, kind, type, object: clone(object), previous };
    history.push(ev);
    for (const w of [...watchers]) {
      const seen = visible(w, ev);
      if (seen !== undefined) write(w, seen, ev.object);
    }
  }

  function list(kind: Kind, req: FastifyRequest, reply: FastifyReply): unknown {
    const rec = records.get(req)!;
    const query = rec.query;
    const reqs = parseFieldSelector(query.fieldSelector, kind);
    if (typeof reqs === 'string') return reply.code(400).send(status(400, 'BadRequest', reqs));
    const matches = matcher(reqs);
    if (rec.watch) {
      rec.status = 200;
      return watch(kind, matches, query, reply);
    }
    const asked = query.resourceVersion;
    if (asked !== undefined && asked !== '' && asked !== '0') {
      const n = Number(asked);
      if (!Number.isInteger(n)) {
        return reply.code(400).send(status(400, 'BadRequest', `invalid resource version: ${asked}`));
      }
      if (query.resourceVersionMatch === 'Exact' && n < compactedRv) {
        return reply
          .code(410)
          .send(status(410, 'Expired', 'The resourceVersion for the provided list is too old.'));
      }
      if (n > rv) {
        return reply.code(504).send({
          ...status(504, 'Timeout', `Too large resource version: ${n}, current: ${rv}`),
          details: {
            causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
            retryAfterSeconds: 1,
          },
        });
      }
    }
    const items = [...objects.entries()]
      .filter(([key, obj]) => key.startsWith(`${kind}/`) && matches(obj))
      .map(([, obj]) => withoutTypeMeta(clone(obj)));
    return reply
      .code(200)
      .type('application/json')
      .send({ kind: `${kind}List`, apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items });
  }

  function watch(
    kind: Kind,
    matches: (obj: KubernetesObject) => boolean,
    query: Record<string, string>,
    reply: FastifyReply,
  ): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (garbage) {
      res.write('{"type":"ADDED","object":{"metadata":{"name":\n');
      res.write('<html><body>502 Bad Gateway</body></html>\n');
      res.end('{"type":\n');
      return;
    }
    const w: Watcher = {
      kind,
      matches,
      bookmarks: query.allowWatchBookmarks === 'true',
      res,
      timer: undefined,
    };
    const from = query.resourceVersion;
    if (from !== undefined && from !== '' && from !== '0') {
      const n = Number(from);
      // As kube-apiserver over etcd (pods without a watch cache): a watch from n starts at revision n + 1, so it
      // is "too old" only when n + 1 is below the compaction revision. Starting exactly at it, a change to an
      // existing object comes without its previous state, which the API server needs: a 500 ERROR event.
      if (!Number.isInteger(n) || n + 1 < compactedRv) {
        write(w, 'ERROR', status(410, 'Expired', 'The resourceVersion for the provided watch is too old.'));
        res.end();
        return;
      }
      const first = history.find((ev) => ev.rv === n + 1);
      if (n + 1 === compactedRv && first !== undefined && first.kind === kind && first.type !== 'ADDED') {
        const key = `/registry/${kind === 'Pod' ? 'pods' : 'namespaces'}/${kind === 'Pod' ? `${first.object.metadata?.namespace}/` : ''}${first.object.metadata?.name}`;
        const message = `etcd event received with PrevKv=nil (key="${key}", modRevision=${first.rv}, type=${first.type === 'DELETED' ? 'DELETE' : 'PUT'})`;
        write(w, 'ERROR', {
          ...status(500, 'InternalError', `Internal error occurred: ${message}`),
          details: { causes: [{ message }] },
        });
        res.end();
        return;
      }
      for (const ev of history) {
        if (ev.rv <= n) continue;
        const seen = visible(w, ev);
        if (seen !== undefined) write(w, seen, ev.object);
      }
    } else {
      for (const [key, obj] of objects)
        if (key.startsWith(`${kind}/`) && matches(obj)) write(w, 'ADDED', obj);
    }
    watchers.add(w);
    res.on('close', () => {
      watchers.delete(w);
      if (w.timer !== undefined) realClearTimeout(w.timer);
    });
    const timeoutSeconds = Number(query.timeoutSeconds);
    if (Number.isFinite(timeoutSeconds) && timeoutSeconds > 0) {
      w.timer = realSetTimeout(() => endWatch(w, 'end'), timeoutSeconds * 1000);
    }
  }

  app.get('/api/v1/pods', (req, reply) => list('Pod', req, reply));
  app.get('/api/v1/namespaces', (req, reply) => list('Namespace', req, reply));
  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .send(status(404, 'NotFound', `the server could not find the requested resource (${req.url})`));
  });

  const bookmarkTimer =
    opts.bookmarkIntervalMs === undefined
      ? undefined
      : realSetInterval(() => fake.sendBookmarks(), opts.bookmarkIntervalMs);

  await app.ready();
  const listen = (port: number): Promise<number> =>
    new Promise((resolveListen, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen({ port, host: '127.0.0.1' }, () => {
        server.off('error', onError);
        resolveListen((server.address() as AddressInfo).port);
      });
    });
  const port = await listen(opts.port ?? 0);

  const stopListening = (): Promise<void> =>
    new Promise((resolveStop) => {
      for (const w of [...watchers]) endWatch(w, 'destroy');
      if (!server.listening) {
        resolveStop();
        return;
      }
      server.close(() => resolveStop());
      // An API server that goes down takes its connections with it; keep-alive sockets must not linger.
      for (const socket of sockets) socket.destroy();
    });

  function put<T extends KubernetesObject>(kind: Kind, input: T, mode: 'add' | 'update'): T {
    const obj = clone(input) as T;
    obj.kind = kind;
    obj.apiVersion = 'v1';
    obj.metadata ??= {};
    if (kind === 'Pod') obj.metadata.namespace ??= 'default';
    // the API server sets this label on every namespace and restores it if removed
    if (kind === 'Namespace' && obj.metadata.name !== undefined) {
      obj.metadata.labels = { ...obj.metadata.labels, 'kubernetes.io/metadata.name': obj.metadata.name };
    }
    const key = keyOf(kind, obj);
    const previous = objects.get(key);
    if (mode === 'add' && previous !== undefined) throw new Error(`fake-kubernetes: ${key} already exists`);
    if (mode === 'update' && previous === undefined)
      throw new Error(`fake-kubernetes: ${key} does not exist`);
    rv += 1;
    obj.metadata.uid = previous?.metadata?.uid ?? obj.metadata.uid ?? randomUUID();
    obj.metadata.creationTimestamp = (previous?.metadata?.creationTimestamp ??
      obj.metadata.creationTimestamp ??
      new Date().toISOString()) as unknown as Date;
    obj.metadata.resourceVersion = String(rv);
    objects.set(key, obj);
    record(kind, previous === undefined ? 'ADDED' : 'MODIFIED', obj, previous);
    return clone(obj);
  }

  function remove<T extends KubernetesObject>(kind: Kind, key: string): T {
    const obj = objects.get(key);
    if (obj === undefined) throw new Error(`fake-kubernetes: ${key} does not exist`);
    objects.delete(key);
    rv += 1;
    // The DELETED event carries the object's last state at the deletion's version, as the API sends it.
    const last = clone(obj);
    last.metadata!.resourceVersion = String(rv);
    record(kind, 'DELETED', last, undefined);
    return clone(last) as T;
  }

  const fake: FakeKubernetes = {
    url: `http://127.0.0.1:${port}`,
    port,
    get requests() {
      return requests;
    },
    get resourceVersion() {
      return rv;
    },
    addPod: (pod) => put('Pod', pod, 'add'),
    updatePod: (pod) => put('Pod', pod, 'update'),
    patchPod(namespace, name, update) {
      const current = objects.get(`Pod/${namespace}/${name}`);
      if (current === undefined) throw new Error(`fake-kubernetes: Pod/${namespace}/${name} does not exist`);
      const copy = clone(current) as V1Pod;
      update(copy);
      return put('Pod', copy, 'update');
    },
    deletePod: (namespace, name) => remove('Pod', `Pod/${namespace}/${name}`),
    addNamespace: (ns) => put('Namespace', ns, 'add'),
    updateNamespace: (ns) => put('Namespace', ns, 'update'),
    deleteNamespace: (name) => remove('Namespace', `Namespace/${name}`),
    pods: () =>
      [...objects.entries()].filter(([k]) => k.startsWith('Pod/')).map(([, o]) => clone(o) as V1Pod),
    compact() {
      compactedRv = rv;
      // etcd keeps the revision compacted at
      history = history.filter((ev) => ev.rv >= compactedRv);
    },
    dropWatches(mode = 'destroy') {
      const n = watchers.size;
      for (const w of [...watchers]) endWatch(w, mode);
      return n;
    },
    sendBookmarks() {
      for (const w of watchers) if (w.bookmarks) write(w, 'BOOKMARK', bookmark(w.kind));
    },
    openWatches(kind) {
      return [...watchers].filter((w) => kind === undefined || w.kind === kind).length;
    },
    setGarbage(on) {
      garbage = on;
    },
    setHang(on) {
      hang = on;
    },
    forbid(verb, resource) {
      forbidden.add(`${verb} ${resource}`);
    },
    allowAll() {
      forbidden.clear();
    },
    clearRequests() {
      requests = [];
    },
    async stop() {
      for (const res of held) res.destroy();
      held.clear();
      await stopListening();
    },
    async restart() {
      if (closed) throw new Error('fake-kubernetes: restart() after close()');
      if (server.listening) return;
      await listen(port);
    },
    async close() {
      if (closed) return;
      closed = true;
      if (bookmarkTimer !== undefined) realClearInterval(bookmarkTimer);
      for (const res of held) res.destroy();
      held.clear();
      await stopListening();
      await app.close();
    },
  };
  return fake;
}

/** A pod on a node, with the fields the kubelet and controllers fill in; override what a test cares about. */
export function makePod(init: {
  name: string;
  namespace?: string;
  nodeName?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  owner?: { kind: string; name: string };
  containers?: Array<{ name: string; image: string; id?: string; restartCount?: number }>;
  podIp?: string;
}): V1Pod {
  const containers = init.containers ?? [{ name: 'app', image: 'nginx:1.27' }];
  return {
    metadata: {
      name: init.name,
      namespace: init.namespace ?? 'default',
      ...(init.uid === undefined ? {} : { uid: init.uid }),
      labels: init.labels ?? {},
      annotations: init.annotations ?? {},
      ...(init.owner === undefined
        ? {}
        : {
            ownerReferences: [
              {
                apiVersion:
                  init.owner.kind === 'Job' || init.owner.kind === 'CronJob' ? 'batch/v1' : 'apps/v1',
                kind: init.owner.kind,
                name: init.owner.name,
                uid: randomUUID(),
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          }),
    },
    spec: {
      nodeName: init.nodeName ?? 'node-a',
      containers: containers.map((c) => ({ name: c.name, image: c.image })),
    },
    status: {
      phase: 'Running',
      podIP: init.podIp ?? '10.244.0.10',
      containerStatuses: containers.map((c) => ({
        name: c.name,
        image: c.image,
        imageID: '',
        ready: true,
        restartCount: c.restartCount ?? 0,
        ...(c.id === undefined ? {} : { containerID: c.id }),
      })),
    },
  };
}
