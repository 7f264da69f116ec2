import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import {
  type ConfigurationOptions,
  CoreV1Api,
  KubeConfig,
  Observable,
  type ObservableMiddleware,
  Watch,
} from '@kubernetes/client-node';
import { UsageError } from '../errors.ts';
import type { KubeApi, KubeList, Query } from './kube-client.ts';

// This module loads @kubernetes/client-node (about 35 MiB of the agent's RSS and 0.6 CPU-s: its index pulls in
// every generated API model). Only kubeconfig files need it; pod-cache.ts imports it on use, and in-cluster and URL connections
// go through kube-client.ts instead.

/**
 * How to reach the Kubernetes API. `in-cluster`, `url`, and `auto` in a pod use the built-in client
 * (kube-client.ts); kubeconfig files use @kubernetes/client-node.
 */
export type KubeConnection =
  /** in-cluster when running in a pod (KUBERNETES_SERVICE_HOST is set), else KUBECONFIG, else ~/.kube/config */
  | { kind: 'auto' }
  /** the pod's service account: token and CA under /var/run/secrets/kubernetes.io/serviceaccount */
  | { kind: 'in-cluster' }
  /** a kubeconfig file (default: KUBECONFIG, which may list several files, else ~/.kube/config) */
  | { kind: 'kubeconfig'; path?: string | undefined; context?: string | undefined }
  /**
   * An API URL, for local runs (`kubectl proxy`) and tests. The token file is re-read every minute by the client,
   * so a rotated projected token is picked up.
   */
  | {
      kind: 'url';
      url: string;
      tokenFile?: string | undefined;
      caFile?: string | undefined;
      insecureSkipTlsVerify?: boolean | undefined;
    };

function loadFiles(kc: KubeConfig, files: readonly string[]): void {
  const [first, ...rest] = files;
  if (first === undefined) throw new UsageError('no kubeconfig file to load');
  kc.loadFromFile(first);
  for (const file of rest) {
    const more = new KubeConfig();
    more.loadFromFile(file);
    // Like kubectl: the first file that sets current-context wins.
    kc.mergeConfig(more, true);
  }
}

function kubeconfigFiles(env: NodeJS.ProcessEnv): string[] {
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');
  return fromEnv.length > 0 ? fromEnv : [join(env.HOME ?? homedir(), '.kube', 'config')];
}

/** A KubeConfig for the connection; throws UsageError when the configuration cannot be found or read. */
export function loadKubeConfig(
  conn: KubeConnection = { kind: 'auto' },
  env: NodeJS.ProcessEnv = process.env,
): KubeConfig {
  const kc = new KubeConfig();
  try {
    switch (conn.kind) {
      case 'auto':
        if (env.KUBERNETES_SERVICE_HOST) {
          kc.loadFromCluster();
        } else {
          const files = kubeconfigFiles(env);
          if (!env.KUBECONFIG && !existsSync(files[0]!)) {
            throw new UsageError(
              'no Kubernetes API configured: not in a pod (KUBERNETES_SERVICE_HOST unset), no KUBECONFIG and no ~/.kube/config',
            );
          }
          loadFiles(kc, files);
        }
        break;
      case 'in-cluster':
        if (!env.KUBERNETES_SERVICE_HOST) {
          throw new UsageError(
            'in-cluster Kubernetes config: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)',
          );
        }
        kc.loadFromCluster();
        break;
      case 'kubeconfig':
        loadFiles(kc, conn.path === undefined ? kubeconfigFiles(env) : [conn.path]);
        if (conn.context !== undefined) kc.setCurrentContext(conn.context);
        break;
      case 'url': {
        const url = new URL(conn.url);
        kc.loadFromClusterAndUser(
          {
            name: 'logferry',
            server: url.href.replace(/\/$/, ''),
            // Over plain http (kubectl proxy, tests) there is no TLS to verify, but the client refuses http:
            // URLs unless this is set.
            skipTLSVerify: url.protocol === 'http:' || (conn.insecureSkipTlsVerify ?? false),
            ...(conn.caFile === undefined ? {} : { caFile: conn.caFile }),
          },
          {
            name: 'logferry',
            ...(conn.tokenFile === undefined
              ? {}
              : { authProvider: { name: 'tokenFile', config: { tokenFile: conn.tokenFile } } }),
          },
        );
        break;
      }
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot load the Kubernetes client configuration: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (kc.getCurrentCluster() === null)
    throw new UsageError('the Kubernetes client configuration names no cluster');
  return kc;
}

/** Sets a request's AbortSignal: the generated API client has no other way to cancel or time out a call. */
function withSignal(signal: AbortSignal): ConfigurationOptions {
  const middleware: ObservableMiddleware = {
    pre(ctx) {
      ctx.setSignal(signal);
      return new Observable(Promise.resolve(ctx));
    },
    post(rsp) {
      return new Observable(Promise.resolve(rsp));
    },
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

const text = (v: Query[string]): string | undefined => (v === undefined ? undefined : String(v));

/**
 * List and watch through @kubernetes/client-node, for a KubeConfig (authentication from the kubeconfig: tokens,
 * exec plugins, auth providers, client certificates). Lists the two collections the pod cache watches.
 */
export function libraryApi(kc: KubeConfig, watchIdleTimeoutMs: number): KubeApi {
  const core = kc.makeApiClient(CoreV1Api);
  const watch = new Watch(kc);
  // Watch keeps its idle timeout in a field that its typings mark private (30 s in 2.0.1).
  const timeouts = watch as unknown as { requestTimeoutMs?: number };
  if (typeof timeouts.requestTimeoutMs === 'number') timeouts.requestTimeoutMs = watchIdleTimeoutMs;
  return {
    async list<T>(path: string, query: Query, signal: AbortSignal): Promise<KubeList<T>> {
      const params = {
        fieldSelector: text(query.fieldSelector),
        resourceVersion: text(query.resourceVersion),
        resourceVersionMatch: text(query.resourceVersionMatch),
      };
      if (path === '/api/v1/pods') {
        return (await core.listPodForAllNamespaces(params, withSignal(signal))) as unknown as KubeList<T>;
      }
      if (path === '/api/v1/namespaces') {
        return (await core.listNamespace(params, withSignal(signal))) as unknown as KubeList<T>;
      }
      throw new Error(`libraryApi: cannot list ${path}`);
    },
    watch: (path, query, onEvent, done) => watch.watch(path, { ...query }, onEvent, done),
    close() {},
  };
}
