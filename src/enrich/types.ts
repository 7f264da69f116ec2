/** Where a kubelet log file belongs: parsed from its path, always available. */
export interface PodRef {
  namespace: string;
  podName: string;
  podUid: string;
  container: string;
  restartCount: number;
}

/** What the Kubernetes API adds, cached by pod uid. */
export interface PodMetadata {
  uid: string;
  namespace: string;
  name: string;
  nodeName: string | undefined;
  podIp: string | undefined;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  /** container name (regular, init and ephemeral containers) -> id (e.g. containerd://abc...) and image */
  containers: Readonly<Record<string, ContainerMetadata>>;
  /** the owning workload, resolved through ReplicaSet -> Deployment and Job -> CronJob */
  owner:
    | {
        kind: 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'Job' | 'CronJob' | 'ReplicaSet' | string;
        name: string;
      }
    | undefined;
  /**
   * The pod's direct controller (its ownerReference with `controller: true`), e.g. the ReplicaSet when `owner` is
   * the Deployment, or the Job when `owner` is the CronJob; equal to `owner` when nothing was resolved.
   */
  controller: { kind: string; name: string } | undefined;
  namespaceLabels: Readonly<Record<string, string>> | undefined;
  /** set when the pod was deleted; the entry is kept for a TTL so its last lines drain enriched */
  deletedAtMs: number | undefined;
}

/**
 * One container of a pod. The kubelet writes a new `<restart>.log` per restart; `id` belongs to the file numbered
 * `restartCount`, `lastTerminatedId` to the one before it, so an older file's container id can still be told.
 */
export interface ContainerMetadata {
  /** `<runtime>://<id>` from the container status; undefined before the container was created */
  id: string | undefined;
  /** the image as written in the pod spec (falls back to the status's resolved image) */
  image: string | undefined;
  /** the container status's restart count, when reported */
  restartCount: number | undefined;
  /** the id of the previous (terminated) instance, from `lastState.terminated.containerID` */
  lastTerminatedId: string | undefined;
}

/** How the metadata source is doing; readiness and metrics read this. */
export interface MetadataStatus {
  /** disabled (--no-kube), syncing (first list not done), synced, or unreachable (API errors, retrying) */
  state: 'disabled' | 'syncing' | 'synced' | 'unreachable';
  cachedPods: number;
  misses: number;
  lastError: string | undefined;
  /** failed API requests (lists and watches) since start */
  apiErrors?: number | undefined;
}

/** The seam between the tail engine and Kubernetes metadata. */
export interface PodMetadataSource {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The pod's metadata if cached now. */
  get(uid: string): PodMetadata | undefined;
  /** Waits up to `timeoutMs` for the pod to appear in the cache; undefined if it does not. */
  waitFor(uid: string, timeoutMs: number): Promise<PodMetadata | undefined>;
  status(): MetadataStatus;
}
