import type { KubeConfig, V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../telemetry/logger.ts';
import { type InClusterSource, type KubeApi, KubeClient, lightClientConfig } from './kube-client.ts';
import type { KubeConnection } from './kube-config.ts';
import {
  type ListParams,
  type ListResult,
  ListWatchLoop,
  type LoopState,
  type WatchEventType,
} from './list-watch.ts';
import { mirrorUid, podMetadataFromPod } from './pod-metadata.ts';
import type { MetadataStatus, PodMetadata, PodMetadataSource } from './types.ts';

export interface KubernetesPodSourceOptions {
  /** this node's name (downward API `spec.nodeName`): only its pods are listed and watched */
  nodeName: string;
  logger: Logger;
  /** how to reach the API; default 'auto' (in-cluster in a pod, else KUBECONFIG / ~/.kube/config) */
  connection?: KubeConnection | undefined;
  /** a ready KubeConfig, used instead of `connection` (through @kubernetes/client-node) */
  kubeConfig?: KubeConfig | undefined;
  /** the environment and service account files an in-cluster connection reads (kube.serviceAccountDir) */
  inCluster?: Partial<InClusterSource> | undefined;
  /** the built-in client's User-Agent; default 'logferry' */
  userAgent?: string | undefined;
  /** also list + watch namespaces for their labels (needs `list`/`watch` on namespaces); default false */
  namespaceLabels?: boolean | undefined;
  /** how long a deleted pod stays cached so the last lines of its files are still enriched; default 5 min */
  deletedPodTtlMs?: number | undefined;
  /** first retry delay after an API error; doubles per failure up to backoffMaxMs; default 500 ms */
  backoffInitialMs?: number | undefined;
  /** default 30 s */
  backoffMaxMs?: number | undefined;
  /** a list slower than this is abandoned and retried; default 60 s */
  listTimeoutMs?: number | undefined;
  /**
   * A watch that receives nothing for this long is reopened (from where it was). Longer than the API server's
   * bookmark interval (about a minute) so a quiet but healthy watch is not churned; short enough to notice a
   * connection that died without a FIN. Default 120 s.
   */
  watchIdleTimeoutMs?: number | undefined;
  /** server-side watch duration; default a random 5 to 10 min per watch, as client-go does, to spread reconnects */
  watchTimeoutSeconds?: number | undefined;
  /** a watch open this long without errors counts as recovered (backoff resets); default 2 s */
  healthyAfterMs?: number | undefined;
}

/**
 * Pod metadata for one node, kept by list + watch of `spec.nodeName=<node>` pods (see list-watch.ts for the
 * protocol), keyed by pod uid. In a pod (and for an API URL) it talks to the API through kube-client.ts; for a
 * kubeconfig file (or a ready KubeConfig) through @kubernetes/client-node, imported only then (loading the library
 * costs the agent about 35 MiB of RSS and 0.6 CPU-s: docs/PERFORMANCE.md). Static pods are also found under the
 * uid the kubelet logs them under (their mirror pod's `kubernetes.io/config.mirror` annotation). Deleted pods are
 * kept for `deletedPodTtlMs`.
 *
 * Needs RBAC: `get`, `list`, `watch` on `pods` (and on `namespaces` with namespaceLabels). Owners are resolved
 * from names (see pod-metadata.ts), so no access to ReplicaSets or Jobs is needed.
 */
export class KubernetesPodSource implements PodMetadataSource {
  readonly #opts: KubernetesPodSourceOptions;
  /** set at construction for the built-in client, on start (or create) for the library */
  #api: KubeApi | undefined;
  readonly #ttlMs: number;
  readonly #pods = new Map<string, PodMetadata>();
  /** on-disk uid of a static pod -> its mirror pod's uid */
  readonly #aliases = new Map<string, string>();
  readonly #namespaceLabels = new Map<string, Readonly<Record<string, string>>>();
  readonly #waiters = new Map<string, Set<(meta: PodMetadata | undefined) => void>>();
  #loops: ListWatchLoop<V1Pod | V1Namespace>[] = [];
  #podLoop: ListWatchLoop<V1Pod> | undefined;
  #state: MetadataStatus['state'] = 'syncing';
  #misses = 0;
  #apiErrors = 0;
  /** the access problem last logged, so a refusal is logged once, not at every retry */
  #deniedLogged: string | undefined;
  #evictionTimer: NodeJS.Timeout | undefined;
  #evictionAt = Number.POSITIVE_INFINITY;
  #started = false;
  #stopped = false;

  /** Throws UsageError for an in-cluster or URL connection that cannot work; a kubeconfig is read on start. */
  constructor(opts: KubernetesPodSourceOptions) {
    this.#opts = opts;
    this.#ttlMs = opts.deletedPodTtlMs ?? 5 * 60_000;
    const light =
      opts.kubeConfig === undefined ? lightClientConfig(opts.connection, opts.inCluster) : undefined;
    if (light !== undefined) {
      this.#api = new KubeClient({
        ...light,
        userAgent: opts.userAgent,
        watchIdleTimeoutMs: this.#watchIdleTimeoutMs,
      });
    }
  }

  /** A source with its connection loaded: configuration errors (UsageError) surface here rather than on start. */
  static async create(opts: KubernetesPodSourceOptions): Promise<KubernetesPodSource> {
    const source = new KubernetesPodSource(opts);
    await source.#connect();
    return source;
  }

  get #watchIdleTimeoutMs(): number {
    return this.#opts.watchIdleTimeoutMs ?? 120_000;
  }

  async #connect(): Promise<KubeApi> {
    if (this.#api === undefined) {
      const { libraryApi, loadKubeConfig } = await import('./kube-config.ts');
      const kc =
        this.#opts.kubeConfig ??
        loadKubeConfig(this.#opts.connection, this.#opts.inCluster?.env ?? process.env);
      this.#api ??= libraryApi(kc, this.#watchIdleTimeoutMs);
    }
    return this.#api;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const api = await this.#connect();
    if (this.#stopped) return;
    const fieldSelector = `spec.nodeName=${this.#opts.nodeName}`;
    const list = async <T>(path: string, params: ListParams, selector?: string): Promise<ListResult<T>> => {
      const query = {
        fieldSelector: selector,
        resourceVersion: params.resourceVersion,
        resourceVersionMatch: params.resourceVersionMatch,
      };
      const result = await api.list<T>(path, query, params.signal);
      return { items: result.items, resourceVersion: result.metadata?.resourceVersion ?? '' };
    };
    const common = {
      watch: api,
      backoffInitialMs: this.#opts.backoffInitialMs ?? 500,
      backoffMaxMs: this.#opts.backoffMaxMs ?? 30_000,
      listTimeoutMs: this.#opts.listTimeoutMs ?? 60_000,
      healthyAfterMs: this.#opts.healthyAfterMs ?? 2_000,
      watchTimeoutSeconds: () => this.#opts.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300),
      onStateChange: () => this.#updateState(),
      onError: () => {
        this.#apiErrors += 1;
      },
      onExpired: (resourceVersion: string) =>
        this.#opts.logger.info(
          'kubernetes watch expired (410 Gone: its resourceVersion was compacted away); relisting',
          { node: this.#opts.nodeName, resourceVersion },
        ),
    };
    this.#podLoop = new ListWatchLoop<V1Pod>({
      ...common,
      resource: 'pods',
      path: '/api/v1/pods',
      fieldSelector,
      list: (params) => list<V1Pod>('/api/v1/pods', params, fieldSelector),
      replace: (pods) => this.#replacePods(pods),
      event: (type, pod) => this.#podEvent(type, pod),
    });
    this.#loops = [this.#podLoop as ListWatchLoop<V1Pod | V1Namespace>];
    if (this.#opts.namespaceLabels === true) {
      const nsLoop = new ListWatchLoop<V1Namespace>({
        ...common,
        resource: 'namespaces',
        path: '/api/v1/namespaces',
        list: (params) => list<V1Namespace>('/api/v1/namespaces', params),
        replace: (namespaces) => this.#replaceNamespaces(namespaces),
        event: (type, ns) => this.#namespaceEvent(type, ns),
      });
      this.#loops.push(nsLoop as ListWatchLoop<V1Pod | V1Namespace>);
    }
    // Does not wait for the first list: the agent starts tailing at once, and waitFor() bridges the gap.
    for (const loop of this.#loops) loop.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#loops.map((loop) => loop.stop()));
    this.#api?.close();
    clearTimeout(this.#evictionTimer);
    this.#evictionTimer = undefined;
    for (const waiters of this.#waiters.values()) for (const wake of waiters) wake(undefined);
    this.#waiters.clear();
  }

  get(uid: string): PodMetadata | undefined {
    const key = this.#aliases.get(uid) ?? uid;
    const meta = this.#pods.get(key);
    if (meta?.deletedAtMs !== undefined && Date.now() - meta.deletedAtMs >= this.#ttlMs) {
      this.#evict(key);
      return undefined;
    }
    return meta;
  }

  waitFor(uid: string, timeoutMs: number): Promise<PodMetadata | undefined> {
    const known = this.get(uid);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve) => {
      let waiters = this.#waiters.get(uid);
      if (waiters === undefined) {
        waiters = new Set();
        this.#waiters.set(uid, waiters);
      }
      const wake = (meta: PodMetadata | undefined): void => {
        clearTimeout(timer);
        const set = this.#waiters.get(uid);
        set?.delete(wake);
        if (set?.size === 0) this.#waiters.delete(uid);
        if (meta === undefined) this.#misses += 1;
        resolve(meta);
      };
      const timer = setTimeout(() => wake(undefined), timeoutMs);
      waiters.add(wake);
    });
  }

  status(): MetadataStatus {
    return {
      state: this.#state,
      cachedPods: this.#pods.size,
      misses: this.#misses,
      lastError: this.#loops.map((l) => l.lastError).find((e) => e !== undefined),
      apiErrors: this.#apiErrors,
    };
  }

  #updateState(): void {
    const states: LoopState[] = this.#loops.map((l) => l.state);
    const next: MetadataStatus['state'] = states.includes('unreachable')
      ? 'unreachable'
      : states.includes('syncing')
        ? 'syncing'
        : 'synced';
    const previous = this.#state;
    const denied = next === 'unreachable' ? this.#loops.find((l) => l.accessDenied)?.lastError : undefined;
    const deniedIsNews = denied !== undefined && denied !== this.#deniedLogged;
    if (next === previous && !deniedIsNews) return;
    this.#state = next;
    this.#deniedLogged = denied;
    const context = { node: this.#opts.nodeName, pods: this.#pods.size };
    if (denied !== undefined) {
      // One line that says what is wrong, how to fix it and what happens meanwhile: a refusal does not go away
      // by retrying, and the text logger shows no context fields.
      this.#opts.logger.warn(
        `kubernetes API: ${denied}; not ready, retrying with backoff; meanwhile lines ship with the pod metadata cached so far (path metadata only for pods never listed)`,
        context,
      );
    } else if (next === 'unreachable') {
      this.#opts.logger.warn('kubernetes API unreachable; retrying with backoff, pod metadata may be stale', {
        ...context,
        error: this.status().lastError,
      });
    } else if (next === 'synced') {
      this.#opts.logger.info(
        previous === 'unreachable'
          ? 'kubernetes API reachable again; pod metadata synced'
          : 'kubernetes pod metadata synced',
        context,
      );
    } else {
      this.#opts.logger.info('kubernetes pod metadata syncing', context);
    }
  }

  #store(meta: PodMetadata): void {
    const withNamespace =
      this.#opts.namespaceLabels === true
        ? { ...meta, namespaceLabels: this.#namespaceLabels.get(meta.namespace) }
        : meta;
    this.#pods.set(meta.uid, withNamespace);
    const alias = mirrorUid(meta);
    if (alias !== undefined && alias !== meta.uid) this.#aliases.set(alias, meta.uid);
    if (withNamespace.deletedAtMs !== undefined)
      this.#scheduleEviction(withNamespace.deletedAtMs + this.#ttlMs);
    for (const key of alias === undefined ? [meta.uid] : [meta.uid, alias]) {
      const waiters = this.#waiters.get(key);
      if (waiters !== undefined) for (const wake of [...waiters]) wake(withNamespace);
    }
  }

  #replacePods(pods: V1Pod[]): void {
    const present = new Set<string>();
    for (const pod of pods) {
      const meta = podMetadataFromPod(pod);
      if (meta === undefined) continue;
      present.add(meta.uid);
      this.#store(meta);
    }
    // Deleted while we were not watching: keep them for the TTL like any deleted pod.
    const now = Date.now();
    for (const [uid, meta] of this.#pods) {
      if (!present.has(uid) && meta.deletedAtMs === undefined) this.#store({ ...meta, deletedAtMs: now });
    }
  }

  #podEvent(type: WatchEventType, pod: V1Pod): void {
    const meta = podMetadataFromPod(pod);
    if (meta === undefined) return;
    if (type === 'DELETED') {
      this.#store({ ...meta, deletedAtMs: this.#pods.get(meta.uid)?.deletedAtMs ?? Date.now() });
    } else {
      this.#store(meta);
    }
  }

  #replaceNamespaces(namespaces: V1Namespace[]): void {
    this.#namespaceLabels.clear();
    for (const ns of namespaces) {
      const name = ns.metadata?.name;
      if (name !== undefined) this.#namespaceLabels.set(name, { ...ns.metadata?.labels });
    }
    for (const meta of this.#pods.values()) this.#store(meta);
  }

  #namespaceEvent(type: WatchEventType, ns: V1Namespace): void {
    const name = ns.metadata?.name;
    if (name === undefined) return;
    if (type === 'DELETED') this.#namespaceLabels.delete(name);
    else this.#namespaceLabels.set(name, { ...ns.metadata?.labels });
    for (const meta of this.#pods.values()) if (meta.namespace === name) this.#store(meta);
  }

  #evict(uid: string): void {
    const meta = this.#pods.get(uid);
    this.#pods.delete(uid);
    const alias = meta === undefined ? undefined : mirrorUid(meta);
    if (alias !== undefined && this.#aliases.get(alias) === uid) this.#aliases.delete(alias);
  }

  #scheduleEviction(atMs: number): void {
    if (!this.#started || atMs >= this.#evictionAt) return;
    clearTimeout(this.#evictionTimer);
    this.#evictionAt = atMs;
    this.#evictionTimer = setTimeout(() => this.#sweep(), Math.max(0, atMs - Date.now()));
    // Eviction alone must not keep the process alive.
    this.#evictionTimer.unref();
  }

  #sweep(): void {
    this.#evictionTimer = undefined;
    this.#evictionAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [uid, meta] of [...this.#pods]) {
      if (meta.deletedAtMs === undefined) continue;
      const expiry = meta.deletedAtMs + this.#ttlMs;
      if (expiry <= now) this.#evict(uid);
      else next = Math.min(next, expiry);
    }
    if (next !== Number.POSITIVE_INFINITY) this.#scheduleEviction(next);
  }
}
