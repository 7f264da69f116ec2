import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import type { ContainerMetadata, PodMetadata } from './types.ts';

export interface Workload {
  kind: string;
  name: string;
}

// Minutes since the Unix epoch, as the CronJob controller suffixes its Jobs (`<cronjob>-<minutes>`); the bounds
// (about 2013-09 to 3870) keep Jobs named with a date, like `backup-20240101` (2008 in minutes), out.
const CRONJOB_JOB_NAME = /^(.+)-(\d{8,9})$/;
const CRONJOB_MINUTES_MIN = 23_000_000;

/**
 * The CronJob a Job was created by, guessed from the Job's name: the CronJob controller names its Jobs
 * `<cronjob>-<scheduled time in minutes since the epoch>`. A guess because pods carry no reference to the CronJob
 * and reading the Job needs `jobs` RBAC and one API call per Job; a Job created by hand with such a name is
 * misattributed.
 */
export function cronJobOfJob(jobName: string): string | undefined {
  const match = CRONJOB_JOB_NAME.exec(jobName);
  if (match === null) return undefined;
  return Number(match[2]) >= CRONJOB_MINUTES_MIN ? match[1] : undefined;
}

/**
 * The Deployment a ReplicaSet belongs to, from the pod's `pod-template-hash` label: the Deployment controller
 * names its ReplicaSets `<deployment>-<pod-template-hash>` and copies the hash onto their pods. Without the label
 * (a ReplicaSet created directly) or with a name that does not end in it, undefined. Reading the ReplicaSet's own
 * ownerReferences would be exact but needs `replicasets` RBAC and an API call per ReplicaSet.
 */
export function deploymentOfReplicaSet(
  replicaSetName: string,
  podTemplateHash: string | undefined,
): string | undefined {
  if (podTemplateHash === undefined || podTemplateHash === '') return undefined;
  const suffix = `-${podTemplateHash}`;
  if (replicaSetName.length <= suffix.length || !replicaSetName.endsWith(suffix)) return undefined;
  return replicaSetName.slice(0, -suffix.length);
}

/** The pod's direct controller, and the workload at the top of its chain (ReplicaSet -> Deployment, Job -> CronJob). */
export function resolveOwner(pod: V1Pod): { controller: Workload | undefined; owner: Workload | undefined } {
  const refs = pod.metadata?.ownerReferences ?? [];
  const ref = refs.find((r) => r.controller === true) ?? refs[0];
  if (ref === undefined) return { controller: undefined, owner: undefined };
  const controller = { kind: ref.kind, name: ref.name };
  if (ref.kind === 'ReplicaSet') {
    const deployment = deploymentOfReplicaSet(ref.name, pod.metadata?.labels?.['pod-template-hash']);
    if (deployment !== undefined) return { controller, owner: { kind: 'Deployment', name: deployment } };
  } else if (ref.kind === 'Job') {
    const cronJob = cronJobOfJob(ref.name);
    if (cronJob !== undefined) return { controller, owner: { kind: 'CronJob', name: cronJob } };
  }
  return { controller, owner: controller };
}

function addStatuses(
  containers: Record<string, ContainerMetadata>,
  statuses: readonly V1ContainerStatus[] | undefined,
): void {
  for (const status of statuses ?? []) {
    const known = containers[status.name];
    containers[status.name] = {
      id: status.containerID || undefined,
      image: known?.image ?? (status.image || undefined),
      restartCount: status.restartCount,
      lastTerminatedId: status.lastState?.terminated?.containerID || undefined,
    };
  }
}

/**
 * What logferry keeps of a pod (list items and watch objects alike). Pure; the cache adds `deletedAtMs` and
 * `namespaceLabels`. Returns undefined for an object without a uid, name or namespace (not a pod).
 */
export function podMetadataFromPod(pod: V1Pod): PodMetadata | undefined {
  const meta = pod.metadata;
  if (meta?.uid === undefined || meta.name === undefined || meta.namespace === undefined) return undefined;
  const containers: Record<string, ContainerMetadata> = Object.create(null);
  const spec = pod.spec;
  for (const list of [spec?.initContainers, spec?.containers, spec?.ephemeralContainers]) {
    for (const c of list ?? []) {
      containers[c.name] = {
        id: undefined,
        image: c.image || undefined,
        restartCount: undefined,
        lastTerminatedId: undefined,
      };
    }
  }
  addStatuses(containers, pod.status?.initContainerStatuses);
  addStatuses(containers, pod.status?.containerStatuses);
  addStatuses(containers, pod.status?.ephemeralContainerStatuses);
  const { controller, owner } = resolveOwner(pod);
  return {
    uid: meta.uid,
    namespace: meta.namespace,
    name: meta.name,
    nodeName: spec?.nodeName || undefined,
    podIp: pod.status?.podIP || undefined,
    labels: { ...meta.labels },
    annotations: { ...meta.annotations },
    containers,
    owner,
    controller,
    namespaceLabels: undefined,
    deletedAtMs: undefined,
  };
}

/**
 * The uid the kubelet logs a static pod under (`/var/log/pods/<ns>_<name>_<hash>/`): its mirror pod in the API
 * has a uid of its own, and carries the on-disk one in this annotation.
 */
export function mirrorUid(meta: PodMetadata): string | undefined {
  return meta.annotations['kubernetes.io/config.mirror'] || undefined;
}
