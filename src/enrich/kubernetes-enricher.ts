import { readlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Enricher, FileMetadata as PipelineFileMetadata, SourceFile } from '../pipeline/types.ts';
import { dedotRecord } from './dedot.ts';
import { compileGlobs, type GlobMatcher } from './glob.ts';
import { type ContainerLinkRef, parseContainerLinkName, parsePodLogPath } from './k8s-paths.ts';
import type { PodMetadata, PodMetadataSource, PodRef } from './types.ts';

/** Name globs (see glob.ts) for one kind of name; an empty or absent list means "no condition". */
export interface NameFilters {
  namespaces?: readonly string[] | undefined;
  /** matched against the pod name (not namespace/name) */
  pods?: readonly string[] | undefined;
  containers?: readonly string[] | undefined;
}

export interface DescribeOptions {
  /** replace '.' by '_' in label and annotation keys (see dedot.ts); default true */
  dedot?: boolean | undefined;
  /** annotation keys to copy into documents (globs); default none */
  annotationAllowList?: readonly string[] | undefined;
  /** add `kubernetes.namespace_labels.*` (the source must watch namespaces); default false */
  namespaceLabels?: boolean | undefined;
  /** when a list is non-empty, only files whose namespace / pod / container matches it are shipped */
  include?: NameFilters | undefined;
  /** files whose namespace / pod / container matches are not shipped */
  exclude?: NameFilters | undefined;
  /** logferry's own pod (downward API), excluded unless its annotations say otherwise: its logs talk about logs */
  selfPod?: { namespace: string; name: string } | undefined;
  /** this node's name, for `kubernetes.node.name` when the pod's metadata is not known */
  nodeName?: string | undefined;
}

/** The pipeline's per-file answer (pipeline/types.ts), plus what a multiline stage can use. */
export interface FileMetadata extends PipelineFileMetadata {
  /** `logferry.io/multiline[-<container>]` annotation */
  multiline?: string | undefined;
}

const ANNOTATION_PREFIX = 'logferry.io/';

/** Top-level workload kinds and their field names; a ReplicaSet or Job owner gets its own field below. */
const WORKLOAD_FIELDS: ReadonlyMap<string, string> = new Map([
  ['Deployment', 'deployment'],
  ['StatefulSet', 'statefulset'],
  ['DaemonSet', 'daemonset'],
  ['CronJob', 'cronjob'],
]);

interface Compiled {
  dedot: boolean;
  annotations: GlobMatcher;
  namespaceLabels: boolean;
  include: {
    namespaces: GlobMatcher | undefined;
    pods: GlobMatcher | undefined;
    containers: GlobMatcher | undefined;
  };
  exclude: { namespaces: GlobMatcher; pods: GlobMatcher; containers: GlobMatcher };
  selfPod: { namespace: string; name: string } | undefined;
  nodeName: string | undefined;
}

// Options objects are long-lived (one per agent); compiling their globs once per object keeps describeFile pure
// for its callers without recompiling per file.
const compiledCache = new WeakMap<DescribeOptions, Compiled>();

function includeMatcher(patterns: readonly string[] | undefined): GlobMatcher | undefined {
  return patterns === undefined || patterns.length === 0 ? undefined : compileGlobs(patterns);
}

function compile(opts: DescribeOptions): Compiled {
  let compiled = compiledCache.get(opts);
  if (compiled === undefined) {
    compiled = {
      dedot: opts.dedot ?? true,
      annotations: compileGlobs(opts.annotationAllowList ?? []),
      namespaceLabels: opts.namespaceLabels ?? false,
      include: {
        namespaces: includeMatcher(opts.include?.namespaces),
        pods: includeMatcher(opts.include?.pods),
        containers: includeMatcher(opts.include?.containers),
      },
      exclude: {
        namespaces: compileGlobs(opts.exclude?.namespaces ?? []),
        pods: compileGlobs(opts.exclude?.pods ?? []),
        containers: compileGlobs(opts.exclude?.containers ?? []),
      },
      selfPod: opts.selfPod,
      nodeName: opts.nodeName,
    };
    compiledCache.set(opts, compiled);
  }
  return compiled;
}

/** 'true' / 'false' (any case, trimmed), else undefined: an annotation that says nothing leaves the decision to config. */
function flag(value: string | undefined): boolean | undefined {
  const v = value?.trim().toLowerCase();
  return v === 'true' ? true : v === 'false' ? false : undefined;
}

function excluded(
  c: Compiled,
  namespace: string,
  pod: string,
  container: string,
  annotations: Readonly<Record<string, string>>,
): boolean {
  // An annotation is the pod owner's explicit word and wins over the agent's config; the container's over the pod's.
  const byAnnotation =
    flag(annotations[`${ANNOTATION_PREFIX}exclude-${container}`]) ??
    flag(annotations[`${ANNOTATION_PREFIX}exclude`]);
  if (byAnnotation !== undefined) return byAnnotation;
  if (c.selfPod !== undefined && c.selfPod.namespace === namespace && c.selfPod.name === pod) return true;
  if (c.include.namespaces !== undefined && !c.include.namespaces(namespace)) return true;
  if (c.include.pods !== undefined && !c.include.pods(pod)) return true;
  if (c.include.containers !== undefined && !c.include.containers(container)) return true;
  return c.exclude.namespaces(namespace) || c.exclude.pods(pod) || c.exclude.containers(container);
}

/** `containerd://abc` -> { id: 'abc', runtime: 'containerd' }; a bare id has no known runtime. */
export function splitContainerId(raw: string): { id: string; runtime: string | undefined } {
  const sep = raw.indexOf('://');
  return sep < 0 ? { id: raw, runtime: undefined } : { id: raw.slice(sep + 3), runtime: raw.slice(0, sep) };
}

/** The container id of the instance that wrote log file number `restartCount`, when the status tells it. */
function containerIdFor(meta: PodMetadata, container: string, restartCount: number): string | undefined {
  const c = meta.containers[container];
  if (c === undefined) return undefined;
  if (c.restartCount === undefined || c.restartCount === restartCount) return c.id;
  if (c.restartCount === restartCount + 1) return c.lastTerminatedId;
  return undefined;
}

/**
 * Whether the pod's status may still bring the container id of this file: a log file exists once the container
 * runs, but the kubelet reports its status (with the id) in a later update of the pod, so a pod first seen
 * without it is provisional and asked about again (seen against a real API server: a pod is created, then its
 * status is patched). Final when the id is there, when the status is past this file's instance (an older
 * restart, whose id comes with the status's lastState or not at all), when the container is not in the pod, or
 * when the pod is deleted.
 */
function containerIdPending(meta: PodMetadata, container: string, restartCount: number): boolean {
  if (meta.deletedAtMs !== undefined) return false;
  const c = meta.containers[container];
  if (c === undefined) return false;
  if (c.restartCount === undefined) return true;
  if (c.restartCount === restartCount) return c.id === undefined;
  // a file newer than the status: the status has not caught up with this restart yet
  return c.restartCount < restartCount;
}

function nonEmpty(record: Record<string, string>): boolean {
  for (const _ in record) return true;
  return false;
}

/**
 * Everything logferry adds to the documents of one file, from what its path says and, when known, its pod's
 * metadata. Pure. Field names follow ECS / Filebeat: `kubernetes.namespace`, `kubernetes.pod.{name,uid,ip}`,
 * `kubernetes.container.{name,restart_count}`, `kubernetes.node.name`, `kubernetes.labels.*`,
 * `kubernetes.annotations.*` (allow-listed), `kubernetes.namespace_labels.*`, `kubernetes.<workload>.name`
 * (replicaset, deployment, statefulset, daemonset, job, cronjob), `container.id`, `container.image.name`,
 * `container.runtime`.
 *
 * A `/var/log/containers` link name (no uid, so no metadata) gives namespace, pod, container and container id.
 */
export function describeFile(
  ref: PodRef | ContainerLinkRef,
  meta: PodMetadata | undefined,
  opts: DescribeOptions,
): FileMetadata {
  const c = compile(opts);
  const isLink = !('podUid' in ref);
  const pod = isLink ? undefined : meta;
  const annotations = pod?.annotations ?? {};
  const fields: Record<string, string> = Object.create(null);
  const k8s: Record<string, unknown> = {};
  const set = (field: string, value: string): void => {
    fields[field] = value;
  };

  k8s.namespace = ref.namespace;
  set('kubernetes.namespace', ref.namespace);
  const podObj: Record<string, string> = { name: ref.podName };
  set('kubernetes.pod.name', ref.podName);
  const uid = pod?.uid ?? (isLink ? undefined : (ref as PodRef).podUid);
  if (uid !== undefined) {
    podObj.uid = uid;
    set('kubernetes.pod.uid', uid);
  }
  if (pod?.podIp !== undefined) {
    podObj.ip = pod.podIp;
    set('kubernetes.pod.ip', pod.podIp);
  }
  k8s.pod = podObj;
  const containerObj: Record<string, string | number> = { name: ref.container };
  set('kubernetes.container.name', ref.container);
  if (!isLink) {
    const restarts = (ref as PodRef).restartCount;
    containerObj.restart_count = restarts;
    set('kubernetes.container.restart_count', String(restarts));
  }
  k8s.container = containerObj;
  const nodeName = pod?.nodeName ?? c.nodeName;
  if (nodeName !== undefined) {
    k8s.node = { name: nodeName };
    set('kubernetes.node.name', nodeName);
  }

  if (pod !== undefined) {
    const maps: Array<
      [string, Readonly<Record<string, string>> | undefined, ((key: string) => boolean) | undefined]
    > = [
      ['labels', pod.labels, undefined],
      ['annotations', pod.annotations, c.annotations],
      ['namespace_labels', c.namespaceLabels ? pod.namespaceLabels : undefined, undefined],
    ];
    for (const [name, source, allow] of maps) {
      if (source === undefined) continue;
      let picked: Readonly<Record<string, string>> = source;
      if (allow !== undefined) {
        const filtered: Record<string, string> = {};
        for (const key of Object.keys(source)) if (allow(key)) filtered[key] = source[key]!;
        picked = filtered;
      }
      const out = dedotRecord(picked, c.dedot);
      if (!nonEmpty(out)) continue;
      k8s[name] = out;
      for (const key of Object.keys(out)) set(`kubernetes.${name}.${key}`, out[key]!);
    }

    const workloads: Array<[string, string]> = [];
    const { controller, owner } = pod;
    if (controller?.kind === 'ReplicaSet') workloads.push(['replicaset', controller.name]);
    if (controller?.kind === 'Job') workloads.push(['job', controller.name]);
    if (owner !== undefined) {
      const kind = WORKLOAD_FIELDS.get(owner.kind);
      if (kind !== undefined) workloads.push([kind, owner.name]);
    }
    for (const [kind, name] of workloads) {
      k8s[kind] = { name };
      set(`kubernetes.${kind}.name`, name);
    }
  }

  const container: Record<string, unknown> = {};
  const rawId = isLink
    ? (ref as ContainerLinkRef).containerId
    : pod === undefined
      ? undefined
      : containerIdFor(pod, ref.container, (ref as PodRef).restartCount);
  if (rawId !== undefined) {
    const { id, runtime } = splitContainerId(rawId);
    container.id = id;
    set('container.id', id);
    const image = pod?.containers[ref.container]?.image;
    if (image !== undefined) {
      container.image = { name: image };
      set('container.image.name', image);
    }
    if (runtime !== undefined) {
      container.runtime = runtime;
      set('container.runtime', runtime);
    }
  } else {
    const image = pod?.containers[ref.container]?.image;
    if (image !== undefined) {
      container.image = { name: image };
      set('container.image.name', image);
    }
  }

  let fragment = `,"kubernetes":${JSON.stringify(k8s)}`;
  if (Object.keys(container).length > 0) fragment += `,"container":${JSON.stringify(container)}`;

  const perContainer = (key: string): string | undefined =>
    annotations[`${ANNOTATION_PREFIX}${key}-${ref.container}`] ?? annotations[`${ANNOTATION_PREFIX}${key}`];
  const result: FileMetadata = {
    exclude: excluded(c, ref.namespace, ref.podName, ref.container, annotations),
    fragment,
    fields,
    complete:
      isLink ||
      (pod !== undefined &&
        (rawId !== undefined || !containerIdPending(pod, ref.container, (ref as PodRef).restartCount))),
  };
  const parser = perContainer('parser');
  if (parser !== undefined) result.parser = parser;
  const multiline = perContainer('multiline');
  if (multiline !== undefined) result.multiline = multiline;
  return result;
}

/** A file that is not a kubelet pod log: nothing to add, nothing to decide. */
function notAPod(): FileMetadata {
  return { exclude: false, fragment: '', fields: {}, complete: true };
}

export interface KubernetesEnricherOptions extends DescribeOptions {
  /**
   * How long describe() waits for a pod that is not cached yet (a file can appear before the watch reports its
   * pod). Waited once per pod uid: later files of the same pod are answered from the cache at once. Default 2 s.
   */
  waitForPodMs?: number | undefined;
}

// Uids already waited for. Bounded so a long-lived agent on a node with heavy pod churn does not grow without end;
// forgetting an old uid only means one more bounded wait if a file of that (long gone) pod shows up again.
const MAX_WAITED = 10_000;

/** Per-file Kubernetes metadata for the tail engine, from a PodMetadataSource. */
export class KubernetesEnricher implements Enricher {
  readonly #source: PodMetadataSource;
  #opts: DescribeOptions;
  readonly #waitMs: number;
  readonly #waited = new Set<string>();
  readonly #inflight = new Map<string, Promise<PodMetadata | undefined>>();

  constructor(source: PodMetadataSource, opts: KubernetesEnricherOptions = {}) {
    this.#source = source;
    this.#opts = opts;
    this.#waitMs = opts.waitForPodMs ?? 2_000;
  }

  /**
   * The file's metadata. For a pod not yet cached, waits up to `waitForPodMs` the first time its uid is asked
   * about, then answers with path-only metadata (`complete: false`); asked again, answers from the cache at once.
   * A `/var/log/containers` symlink is resolved to the pod log file it points to. Takes the pipeline's SourceFile
   * (the Enricher contract) or a path. Never throws.
   */
  async describe(file: SourceFile | string): Promise<FileMetadata> {
    const path = typeof file === 'string' ? file : file.path;
    const ref = parsePodLogPath(path) ?? (await this.#resolveLink(path));
    if (ref === undefined) return notAPod();
    if (!('podUid' in ref)) return describeFile(ref, undefined, this.#opts);
    let meta = this.#source.get(ref.podUid);
    if (meta === undefined && this.#source.status().state !== 'disabled' && !this.#waited.has(ref.podUid)) {
      meta = await this.#waitOnce(ref.podUid);
    }
    return describeFile(ref, meta, this.#opts);
  }

  /** The same from the cache only, without waiting or following symlinks. */
  describeNow(path: string): FileMetadata {
    const ref = parsePodLogPath(path) ?? parseContainerLinkName(path);
    if (ref === undefined) return notAPod();
    return describeFile(ref, 'podUid' in ref ? this.#source.get(ref.podUid) : undefined, this.#opts);
  }

  /**
   * New options (config reload of include/exclude rules or the annotation allow-list); the tail engine then asks
   * about every file again. `waitForPodMs` is fixed at construction.
   */
  setOptions(opts: DescribeOptions): void {
    this.#opts = opts;
  }

  #waitOnce(uid: string): Promise<PodMetadata | undefined> {
    let pending = this.#inflight.get(uid);
    if (pending === undefined) {
      pending = this.#source
        .waitFor(uid, this.#waitMs)
        .catch(() => undefined)
        .finally(() => {
          this.#inflight.delete(uid);
          this.#waited.add(uid);
          if (this.#waited.size > MAX_WAITED) this.#waited.delete(this.#waited.values().next().value!);
        });
      this.#inflight.set(uid, pending);
    }
    return pending;
  }

  async #resolveLink(path: string): Promise<PodRef | ContainerLinkRef | undefined> {
    const link = parseContainerLinkName(path);
    if (link === undefined) return undefined;
    try {
      const target = await readlink(path);
      const ref = parsePodLogPath(resolve(dirname(path), target));
      if (ref !== undefined) return ref;
    } catch {
      // not a symlink, or gone: the name alone still says which pod and container
    }
    return link;
  }
}
