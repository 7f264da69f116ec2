import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeWatch } from './kube-client.ts';

/**
 * One Kubernetes collection kept in sync by list + watch, the way client-go's reflector does it:
 *
 * - list, then watch from the list's resourceVersion, and resume every later watch from the last resourceVersion
 *   seen (events and bookmarks; bookmarks are requested so a quiet watch still advances and can resume);
 * - a watch that ends normally (the server's `timeoutSeconds`, an idle timeout, a proxy) is resumed at once;
 * - "410 Gone" (a watch ERROR event with a Status of code 410, or a list answered 410) means the resume point was
 *   compacted away: relist. Relists ask for data "not older than" the last version seen, served from the API
 *   server's cache; if even that is refused, the next list is a consistent read;
 * - any other ERROR event from the server (a 500 inside the stream) relists after a backoff, as client-go does;
 * - errors and disconnects retry with exponential backoff (with jitter, so a DaemonSet's agents do not reconnect
 *   in lockstep after an API server restart), reset by the first sign of health.
 *
 * The library's ListWatch informer was not used because, as of @kubernetes/client-node 2.0.1 (dist/cache.js), it
 * stops for good after a failed list or a watch error (the caller must notice and restart it, which resets its
 * backoff), cannot request bookmarks or a server-side timeout, backs off even after watches that ended normally
 * (so a quiet watch can go up to 30 s without a connection), and keys objects by namespace/name rather than uid.
 * The stream itself comes from kube-client.ts (in-cluster and URL connections) or the library's Watch class
 * (kubeconfig files): both authenticate, split lines, skip garbage and end an idle watch with a TimeoutError.
 *
 * Never throws: every failure becomes a state change reported through `onStateChange` and a retry.
 */

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export type LoopState = 'syncing' | 'synced' | 'unreachable';

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface ListParams {
  /** '0' (any version, from the API server's cache), a version to be not older than, or undefined (consistent) */
  resourceVersion: string | undefined;
  resourceVersionMatch: 'NotOlderThan' | undefined;
  signal: AbortSignal;
}

export interface ListWatchOptions<T extends KubernetesObject> {
  /** for messages: 'pods', 'namespaces' */
  resource: string;
  /** the collection's path, e.g. '/api/v1/pods' */
  path: string;
  fieldSelector?: string | undefined;
  list(params: ListParams): Promise<ListResult<T>>;
  watch: KubeWatch;
  /** the complete current collection, after each (re)list */
  replace(items: T[]): void;
  event(type: WatchEventType, object: T): void;
  onStateChange(state: LoopState, error: string | undefined): void;
  /** every failure, for a metric (onStateChange only tells changes) */
  onError?: ((message: string, accessDenied: boolean) => void) | undefined;
  /** a watch was answered 410 Gone (its resourceVersion was compacted away): the loop relists */
  onExpired?: ((resourceVersion: string) => void) | undefined;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** a list taking longer than this is abandoned and retried */
  listTimeoutMs: number;
  /** a watch that stays open this long (or delivers an event) counts as healthy: backoff resets */
  healthyAfterMs: number;
  /** the server-side `timeoutSeconds` of each watch request */
  watchTimeoutSeconds(): number;
}

interface WatchEnd {
  /** the server answered 200 */
  connected: boolean;
  /** the watch reported 410 Gone */
  expired: boolean;
  /** valid events (including bookmarks) received */
  events: number;
  /** the watch was healthy (events, or open for healthyAfterMs) */
  healthy: boolean;
  error: string | undefined;
  /** the API refused access (401/403) */
  denied: boolean;
  /** the server sent an ERROR event other than 410 inside the stream */
  serverError: boolean;
  /** the library's idle timeout ended it */
  idleTimeout: boolean;
}

/** A Kubernetes API error's HTTP status: ApiException.code (lists), statusCode (watch), or a Status object's code. */
export function errorStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** A short message for an API error: the Status message when there is one, not the library's header dump. */
export function describeError(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const status = errorStatus(err);
  const body = (err as { body?: unknown }).body;
  let detail: string | undefined;
  if (typeof body === 'string') {
    try {
      detail = (JSON.parse(body) as { message?: string }).message;
    } catch {
      detail = body.slice(0, 200);
    }
  } else if (typeof body === 'object' && body !== null) {
    detail = (body as { message?: string }).message;
  }
  const cause = (err as { cause?: unknown }).cause;
  const message =
    detail ??
    (status !== undefined
      ? ((err as Error).message.split('\n')[1]?.replace(/^Message: /, '') ?? (err as Error).message)
      : (err as Error).message);
  const causeText = cause instanceof Error && cause.message !== message ? ` (${cause.message})` : '';
  return status !== undefined ? `HTTP ${status}: ${message}` : `${message}${causeText}`;
}

/**
 * For an answer of 401 or 403, one line saying what the agent lacks, naming RBAC; undefined for anything else.
 * A 403 is RBAC refusing the verb (the Status message names the user, e.g. `pods is forbidden: User
 * "system:serviceaccount:logferry:logferry" cannot watch resource "pods" in API group "" at the cluster scope`);
 * a 401 comes before any RBAC check: the token itself was refused.
 */
export function accessProblem(err: unknown, verb: 'list' | 'watch', resource: string): string | undefined {
  const status = errorStatus(err);
  if (status !== 401 && status !== 403) return undefined;
  const detail = describeError(err);
  if (status === 403) {
    return `RBAC forbids the agent to ${verb} ${resource} (${detail}): its ClusterRole needs get, list and watch on ${resource} (see k8s/rbac.yaml)`;
  }
  return `the API refused the agent's credentials (${detail}), before any RBAC check: the bearer token (the service account token file in a pod, else the kubeconfig's user) is missing, invalid or expired`;
}

function validObject(obj: unknown): obj is KubernetesObject {
  if (typeof obj !== 'object' || obj === null) return false;
  const meta = (obj as KubernetesObject).metadata;
  return typeof meta === 'object' && meta !== null && typeof meta.resourceVersion === 'string';
}

export class ListWatchLoop<T extends KubernetesObject> {
  readonly #opts: ListWatchOptions<T>;
  #state: LoopState = 'syncing';
  #listed = false;
  /** where the next watch resumes; undefined: list first */
  #resumeFrom: string | undefined;
  /** the newest version seen, for a relist that must not go back in time */
  #lastSeen: string | undefined;
  /** the API refused to list at #lastSeen: the next list is a consistent read */
  #lastSeenUnavailable = false;
  #failures = 0;
  #expiredStreak = 0;
  #lastError: string | undefined;
  /** the last failure was a 401 or 403 (see accessProblem) */
  #accessDenied = false;
  readonly #stop = new AbortController();
  #running: Promise<void> | undefined;
  #abortWatch: (() => void) | undefined;

  constructor(opts: ListWatchOptions<T>) {
    this.#opts = opts;
  }

  get state(): LoopState {
    return this.#state;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** the last failure was the API refusing access (401, or 403 from RBAC): retrying alone will not fix it */
  get accessDenied(): boolean {
    return this.#accessDenied;
  }

  start(): void {
    this.#running ??= this.#run().catch((err: unknown) => {
      // Unreachable by design; if it happens, report it rather than leave an unhandled rejection.
      this.#fail(`internal error in the ${this.#opts.resource} watch loop: ${describeError(err)}`);
    });
  }

  /** Ends the loop: aborts the list or watch in flight and resolves once the loop has exited. */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#abortWatch?.();
    await this.#running;
  }

  get #stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      if (this.#resumeFrom === undefined) {
        // Repeated 410s without progress in between: do not hammer the API with relists.
        if (this.#expiredStreak > 1) await this.#sleep(this.#delay(this.#expiredStreak - 1));
        if (this.#stopped) break;
        const listed = await this.#list();
        if (!listed) {
          if (!this.#stopped && this.#expiredStreak === 0) await this.#sleep(this.#delay(this.#failures));
          continue;
        }
      }
      const end = await this.#watchOnce(this.#resumeFrom!);
      if (this.#stopped) break;
      // Progress since the last relist: a 410 now is news, not a loop.
      if (end.healthy) this.#expiredStreak = 0;
      if (end.expired) {
        this.#opts.onExpired?.(this.#resumeFrom!);
        this.#expiredStreak += 1;
        this.#resumeFrom = undefined;
        continue;
      }
      // An ERROR event other than 410 is the server failing to serve this resume point; resuming from it again
      // can fail the same way forever. Seen against a real kube-apiserver 1.34: a watch resumed exactly one
      // revision before an etcd compaction gets `500 InternalError: etcd event received with PrevKv=nil` every
      // time. So relist (after the backoff below), as client-go's reflector does after a watch error.
      if (end.serverError) this.#resumeFrom = undefined;
      if (end.healthy || (end.connected && end.idleTimeout)) continue;
      this.#fail(end.error ?? `the ${this.#opts.resource} watch closed before sending anything`, end.denied);
      await this.#sleep(this.#delay(this.#failures));
    }
  }

  /** true when the cache now holds a fresh list */
  async #list(): Promise<boolean> {
    const params: Omit<ListParams, 'signal'> =
      this.#lastSeen === undefined
        ? { resourceVersion: '0', resourceVersionMatch: undefined }
        : this.#lastSeenUnavailable
          ? { resourceVersion: undefined, resourceVersionMatch: undefined }
          : { resourceVersion: this.#lastSeen, resourceVersionMatch: 'NotOlderThan' };
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(this.#opts.listTimeoutMs)]);
    let result: ListResult<T>;
    try {
      result = await this.#opts.list({ ...params, signal });
    } catch (err) {
      if (this.#stopped) return false;
      const status = errorStatus(err);
      // 410 Gone (compacted) or 504 "Too large resource version" (an API server behind the version we saw):
      // only a consistent read can answer.
      if (
        (status === 410 || status === 504) &&
        params.resourceVersion !== undefined &&
        this.#lastSeen !== undefined
      ) {
        this.#lastSeenUnavailable = true;
        this.#expiredStreak += 1;
        return false;
      }
      this.#expiredStreak = 0;
      const timedOut =
        (err as { name?: string }).name === 'TimeoutError' || signal.reason?.name === 'TimeoutError';
      const denied = accessProblem(err, 'list', this.#opts.resource);
      this.#fail(
        timedOut
          ? `listing ${this.#opts.resource} timed out after ${this.#opts.listTimeoutMs} ms`
          : (denied ?? `listing ${this.#opts.resource}: ${describeError(err)}`),
        denied !== undefined,
      );
      return false;
    }
    if (this.#stopped) return false;
    this.#opts.replace(result.items);
    this.#resumeFrom = result.resourceVersion;
    this.#lastSeen = result.resourceVersion;
    this.#lastSeenUnavailable = false;
    this.#listed = true;
    this.#succeed();
    return true;
  }

  #watchOnce(resourceVersion: string): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      const end: WatchEnd = {
        connected: false,
        expired: false,
        events: 0,
        healthy: false,
        error: undefined,
        denied: false,
        serverError: false,
        idleTimeout: false,
      };
      let finished = false;
      let controller: AbortController | undefined;
      let healthyTimer: NodeJS.Timeout | undefined;
      const markHealthy = (): void => {
        if (end.healthy) return;
        end.healthy = true;
        this.#succeed();
      };
      const finish = (err: unknown): void => {
        if (finished) return;
        finished = true;
        clearTimeout(healthyTimer);
        this.#stop.signal.removeEventListener('abort', abort);
        this.#abortWatch = undefined;
        controller?.abort();
        if (err !== null && err !== undefined && end.error === undefined && !this.#stopped) {
          if ((err as { name?: string }).name === 'TimeoutError') end.idleTimeout = true;
          else if (errorStatus(err) === 410) end.expired = true;
          else {
            const denied = accessProblem(err, 'watch', this.#opts.resource);
            end.denied = denied !== undefined;
            end.error = denied ?? `watching ${this.#opts.resource}: ${describeError(err)}`;
          }
        }
        resolve(end);
      };
      const abort = (): void => finish(null);
      this.#abortWatch = abort;
      this.#stop.signal.addEventListener('abort', abort, { once: true });

      const onEvent = (type: string, object: unknown): void => {
        if (finished) return;
        if (type === 'ERROR') {
          const status = object as { code?: number; message?: string; reason?: string };
          if (status?.code === 410) {
            end.expired = true;
          } else {
            end.serverError = true;
            end.error = `watching ${this.#opts.resource}: ${status?.code ?? 'error'} ${status?.reason ?? ''}: ${status?.message ?? ''}`;
          }
          // The API server closes the stream after an ERROR event; do not depend on it.
          finish(null);
          return;
        }
        if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED' && type !== 'BOOKMARK') return;
        // Anything else is garbage (a proxy's page, a truncated object): skipped, and it does not count as health.
        if (!validObject(object)) return;
        end.events += 1;
        this.#resumeFrom = object.metadata!.resourceVersion;
        this.#lastSeen = object.metadata!.resourceVersion;
        if (type !== 'BOOKMARK') this.#opts.event(type, object as T);
        markHealthy();
      };

      const query: Record<string, string | number | boolean> = {
        resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: this.#opts.watchTimeoutSeconds(),
      };
      if (this.#opts.fieldSelector !== undefined) query.fieldSelector = this.#opts.fieldSelector;
      this.#opts.watch.watch(this.#opts.path, query, onEvent, finish).then(
        (ctrl) => {
          controller = ctrl;
          if (finished) {
            ctrl.abort();
            return;
          }
          // Watch.watch resolves once the server answered 200 (failures call `done` first).
          end.connected = true;
          healthyTimer = setTimeout(markHealthy, this.#opts.healthyAfterMs);
        },
        (err: unknown) => finish(err),
      );
    });
  }

  #succeed(): void {
    this.#failures = 0;
    this.#accessDenied = false;
    if (this.#listed && this.#state !== 'synced') this.#setState('synced', undefined);
  }

  #fail(message: string, accessDenied = false): void {
    this.#failures += 1;
    this.#lastError = message;
    const deniedNow = accessDenied && !this.#accessDenied;
    this.#accessDenied = accessDenied;
    this.#opts.onError?.(message, accessDenied);
    // Already unreachable (the network), now refused (RBAC): that is news worth a line of its own.
    if (deniedNow && this.#state === 'unreachable') this.#opts.onStateChange('unreachable', message);
    this.#setState('unreachable', message);
  }

  #setState(state: LoopState, error: string | undefined): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#opts.onStateChange(state, error);
  }

  /** Exponential backoff with "equal jitter": between half and all of min(max, initial * 2^(n-1)). */
  #delay(attempt: number): number {
    const exp = Math.min(
      this.#opts.backoffMaxMs,
      this.#opts.backoffInitialMs * 2 ** Math.max(0, attempt - 1),
    );
    return exp / 2 + Math.random() * (exp / 2);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stopped) {
        resolve();
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        this.#stop.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#stop.signal.addEventListener('abort', done, { once: true });
    });
  }
}
