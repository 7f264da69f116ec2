import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  type DaemonSetShape,
  EXAMPLE_MANIFESTS,
  findObject,
  generatorFiles,
  K8S_DIR,
  type K8sObject,
  k8sYamlFiles,
  kustomizedObjects,
  parseManifests,
  ROOT,
  readKustomization,
} from './k8s-files.ts';
import {
  CLUSTER_SCOPED,
  declarationFile,
  isKnownKind,
  MODELS,
  schemaError,
  typeKey,
  unknownFields,
} from './k8s-validate.ts';
import { undeclaredFields } from './strict-fields.ts';

const files = k8sYamlFiles();
const configFiles = generatorFiles();
const manifestFiles = files.filter((f) => f !== 'kustomization.yaml' && !configFiles.includes(f));
const docs = manifestFiles.flatMap((f) => parseManifests(f));
const applied = kustomizedObjects();

describe('k8s/ manifests', () => {
  it('are found', () => {
    expect(manifestFiles).toEqual(
      expect.arrayContaining(['daemonset.yaml', 'namespace.yaml', 'rbac.yaml', 'service.yaml']),
    );
    expect(docs.length).toBeGreaterThanOrEqual(7);
  });

  describe.each(docs.map((d) => [`${d.file} #${d.index} ${d.object.kind} ${d.object.metadata?.name}`, d]))(
    '%s',
    (_label, { object }) => {
      it('is a known kind with a name', () => {
        expect(isKnownKind(object)).toBe(true);
        expect(object.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      });

      it.runIf(MODELS[typeKey(object)] !== undefined)(
        'validates against the Kubernetes OpenAPI schema',
        () => {
          expect(schemaError(object)).toBeUndefined();
        },
      );

      it.runIf(MODELS[typeKey(object)] !== undefined)(
        'declares no field unknown to the Kubernetes API',
        () => {
          expect(unknownFields(object)).toEqual([]);
        },
      );

      it('lives in the logferry namespace unless cluster-scoped', () => {
        if (CLUSTER_SCOPED.has(object.kind)) expect(object.metadata.namespace).toBeUndefined();
        else expect(object.metadata.namespace).toBe('logferry');
      });
    },
  );

  it('the generated ConfigMap validates too', () => {
    const cm = findObject(applied, 'ConfigMap', 'logferry-config');
    expect(schemaError(cm)).toBeUndefined();
    expect(unknownFields(cm)).toEqual([]);
  });

  it('the field check itself catches a misspelt field', () => {
    const ds = structuredClone(findObject(applied, 'DaemonSet')) as unknown as DaemonSetShape;
    const sc = ds.spec.template.spec.containers[0]!.securityContext as Record<string, unknown>;
    sc.readOnlyRootFileSystem = true;
    expect(undeclaredFields(ds, declarationFile(ds as unknown as K8sObject))).toEqual([
      'spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem',
    ]);
  });
});

describe('kustomization.yaml', () => {
  const k = readKustomization();

  it('lists every manifest except the examples, and every listed file exists', () => {
    const expected = manifestFiles.filter((f) => !(EXAMPLE_MANIFESTS as readonly string[]).includes(f));
    expect([...k.resources].sort()).toEqual(expected);
    for (const f of [...k.resources, ...configFiles]) expect(existsSync(join(K8S_DIR, f))).toBe(true);
  });

  it.each(EXAMPLE_MANIFESTS)('leaves out the example %s, which exists', (file) => {
    expect(k.resources).not.toContain(file);
    expect(existsSync(join(K8S_DIR, file))).toBe(true);
  });

  it('does not set a namespace: the manifests name theirs (see the comment in the file)', () => {
    expect(k.namespace).toBeUndefined();
  });

  it('maps the image name to a registry, tagged with the package version', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const ds = findObject(applied, 'DaemonSet') as unknown as DaemonSetShape;
    const image = ds.spec.template.spec.containers[0]!.image;
    const mapping = k.images?.find((i) => i.name === image);
    expect(image).toBe('logferry');
    expect(mapping?.newName).toMatch(/\/logferry$/);
    expect(mapping?.newTag).toBe(pkg.version);
  });

  it('creates one object of each name and kind', () => {
    const ids = applied.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('RBAC', () => {
  it('grants get, list and watch on pods and namespaces, nothing more', () => {
    const role = findObject(applied, 'ClusterRole', 'logferry') as unknown as {
      rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    };
    const grants = role.rules.flatMap((r) =>
      r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`))),
    );
    expect(grants.sort()).toEqual(
      [
        '/namespaces:get',
        '/namespaces:list',
        '/namespaces:watch',
        '/pods:get',
        '/pods:list',
        '/pods:watch',
      ].sort(),
    );
  });

  it('binds the role to the service account the DaemonSet runs as', () => {
    const binding = findObject(applied, 'ClusterRoleBinding', 'logferry') as unknown as {
      roleRef: { kind: string; name: string };
      subjects: { kind: string; name: string; namespace: string }[];
    };
    const ds = findObject(applied, 'DaemonSet') as unknown as DaemonSetShape;
    const sa = findObject(applied, 'ServiceAccount');
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: 'logferry' });
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace },
    ]);
    expect(ds.spec.template.spec.serviceAccountName).toBe(sa.metadata.name);
  });
});

describe('Service and ServiceMonitor', () => {
  const ds = findObject(applied, 'DaemonSet') as unknown as DaemonSetShape;
  const podLabels = ds.spec.template.metadata.labels;
  const service = findObject(applied, 'Service') as unknown as K8sObject & {
    spec: {
      selector: Record<string, string>;
      ports: { name: string; port: number; targetPort: string | number }[];
    };
  };
  const monitor = parseManifests('servicemonitor.yaml')[0]!.object as K8sObject & {
    spec: {
      selector: { matchLabels: Record<string, string> };
      namespaceSelector?: { matchNames?: string[] };
      endpoints: { port: string; path?: string }[];
    };
  };

  it('the DaemonSet selector matches its pod template', () => {
    expect(podLabels).toMatchObject(ds.spec.selector.matchLabels);
  });

  it('the Service selects the agent pods and exposes the named http port', () => {
    expect(podLabels).toMatchObject(service.spec.selector);
    const containerPorts = ds.spec.template.spec.containers[0]!.ports!;
    const port = service.spec.ports.find((p) => p.name === 'http');
    expect(port).toBeDefined();
    expect(containerPorts.map((p) => p.name)).toContain(port!.targetPort);
    expect(port!.port).toBe(containerPorts.find((p) => p.name === 'http')!.containerPort);
  });

  it('the ServiceMonitor is a monitoring.coreos.com/v1 ServiceMonitor selecting that Service', () => {
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.kind).toBe('ServiceMonitor');
    expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(monitor.spec.namespaceSelector?.matchNames ?? [monitor.metadata.namespace]).toContain(
      service.metadata.namespace,
    );
    expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'http', path: '/metrics' })]);
    expect(service.spec.ports.map((p) => p.name)).toContain(monitor.spec.endpoints[0]!.port);
  });
});

describe('the example Secret', () => {
  const secret = parseManifests('secret-example.yaml')[0]!.object as K8sObject & {
    stringData: Record<string, string>;
  };
  const env = (findObject(applied, 'DaemonSet') as unknown as DaemonSetShape).spec.template.spec
    .containers[0]!.env!;
  const refs = env.flatMap((e) =>
    e.valueFrom?.secretKeyRef ? [{ env: e.name, ...e.valueFrom.secretKeyRef }] : [],
  );

  it('is what the DaemonSet refers to, and every reference is optional', () => {
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      expect(ref.name).toBe(secret.metadata.name);
      expect(ref.optional).toBe(true);
    }
    expect(refs.find((r) => r.key === 'password')?.env).toBe('LOGFERRY_ES_PASSWORD');
  });

  it('shows the keys that hold credentials, with placeholders only', () => {
    for (const ref of refs.filter((r) => r.key !== 'api-key'))
      expect(Object.keys(secret.stringData)).toContain(ref.key);
    expect(secret.stringData.password).toBe('change-me');
    expect(readFileSync(join(K8S_DIR, 'secret-example.yaml'), 'utf8')).toMatch(/# api-key:/);
  });
});

// kubectl is not a dependency: where it is installed, render k8s/ with its built-in kustomize, exactly
// as `kubectl apply -k k8s/` would, and check what kustomize itself adds.
const rendered = spawnSync('kubectl', ['kustomize', K8S_DIR], { encoding: 'utf8' });

describe.runIf(rendered.status === 0)('kubectl kustomize k8s/', () => {
  const objects = parseAllDocuments(rendered.stdout ?? '').map((d) => d.toJS() as K8sObject);

  it('renders the objects the tests above read, no more', () => {
    const ids = (list: readonly K8sObject[]) => list.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    const generated = objects.find((o) => o.kind === 'ConfigMap')!.metadata.name;
    expect(ids(objects)).toEqual(
      ids(applied)
        .map((id) => (id === 'ConfigMap/logferry-config' ? `ConfigMap/${generated}` : id))
        .sort(),
    );
  });

  it('the DaemonSet mounts the hash-named ConfigMap and runs the mapped image', () => {
    const cm = objects.find((o) => o.kind === 'ConfigMap')!;
    expect(cm.metadata.name).toMatch(/^logferry-config-[a-z0-9]{10}$/);
    const ds = objects.find((o) => o.kind === 'DaemonSet') as unknown as DaemonSetShape;
    expect(ds.spec.template.spec.volumes?.find((v) => v.configMap)?.configMap?.name).toBe(cm.metadata.name);
    const image = readKustomization().images![0]!;
    expect(ds.spec.template.spec.containers[0]!.image).toBe(`${image.newName}:${image.newTag}`);
    expect(() => new DaemonSet(ds as never).validate()).not.toThrow();
  });
});
