import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export const ROOT = join(import.meta.dirname, '..', '..', '..');
export const K8S_DIR = join(ROOT, 'k8s');

/** Manifests that are examples, deliberately left out of kustomization.yaml. */
export const EXAMPLE_MANIFESTS = ['secret-example.yaml', 'servicemonitor.yaml'] as const;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export interface ManifestDoc {
  file: string;
  /** position in the file, from 0 */
  index: number;
  object: K8sObject;
}

export interface Kustomization {
  resources: string[];
  configMapGenerator?: {
    name: string;
    namespace?: string;
    files?: string[];
    options?: { labels?: Record<string, string> };
  }[];
  images?: { name: string; newName?: string; newTag?: string }[];
  namespace?: string;
}

export function readText(...path: string[]): string {
  return readFileSync(join(ROOT, ...path), 'utf8');
}

/** Every document of a (multi-document) YAML file; a syntax error fails with the file's name. */
export function parseManifests(file: string): ManifestDoc[] {
  const docs = parseAllDocuments(readFileSync(join(K8S_DIR, file), 'utf8'));
  if (!Array.isArray(docs)) throw new Error(`${file}: not a YAML stream`);
  return docs.flatMap((doc, index) => {
    if (doc.errors.length > 0) throw new Error(`${file}, document ${index}: ${doc.errors[0]!.message}`);
    const object = doc.toJS() as K8sObject | null;
    return object === null ? [] : [{ file, index, object }];
  });
}

export function k8sYamlFiles(): string[] {
  return readdirSync(K8S_DIR)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort();
}

export function readKustomization(): Kustomization {
  return parseYaml(readFileSync(join(K8S_DIR, 'kustomization.yaml'), 'utf8')) as Kustomization;
}

/** Files that kustomize turns into ConfigMaps: agent config, not manifests. */
export function generatorFiles(k: Kustomization = readKustomization()): string[] {
  return (k.configMapGenerator ?? []).flatMap((g) => (g.files ?? []).map((f) => f.split('=').at(-1)!));
}

/** The objects `kubectl apply -k k8s/` creates, ConfigMaps from generators included (unhashed names). */
export function kustomizedObjects(): K8sObject[] {
  const k = readKustomization();
  const resources = k.resources.flatMap((f) => parseManifests(f).map((d) => d.object));
  const generated = (k.configMapGenerator ?? []).map(
    (g): K8sObject => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: g.name,
        ...(g.namespace === undefined ? {} : { namespace: g.namespace }),
        ...(g.options?.labels === undefined ? {} : { labels: g.options.labels }),
      },
      data: Object.fromEntries(
        (g.files ?? []).map((entry) => {
          const [key, path] = entry.includes('=') ? entry.split('=') : [entry, entry];
          return [key!.split('/').at(-1)!, readFileSync(join(K8S_DIR, path!), 'utf8')];
        }),
      ),
    }),
  );
  return [...resources, ...generated];
}

export function findObject(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1)
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}

// The parts of a DaemonSet the agent-agreement tests read. Loose on purpose: kubernetes-models
// validates the schema; these types only save casts in the tests.

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
  };
}

export interface Probe {
  httpGet?: { path: string; port: number | string };
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsUser?: number;
    runAsNonRoot?: boolean;
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
    seccompProfile?: { type: string };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
}

export interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string };
  emptyDir?: { medium?: string; sizeLimit?: string };
}

export interface PodSpec {
  serviceAccountName?: string;
  priorityClassName?: string;
  terminationGracePeriodSeconds?: number;
  tolerations?: { operator?: string; key?: string; effect?: string }[];
  securityContext?: { seccompProfile?: { type: string }; runAsUser?: number };
  containers: Container[];
  volumes?: Volume[];
}

export interface DaemonSetShape {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec: {
    selector: { matchLabels: Record<string, string> };
    updateStrategy?: {
      type?: string;
      rollingUpdate?: { maxUnavailable?: number | string; maxSurge?: number | string };
    };
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: PodSpec;
    };
  };
}

/** Kubernetes quantity ('512Mi', '1Gi', '256M') -> MiB. */
export function quantityMiB(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(q);
  if (m === null) throw new Error(`unsupported memory quantity '${q}'`);
  const bytes =
    Number(m[1]) * { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? '']!;
  return bytes / 1024 ** 2;
}
