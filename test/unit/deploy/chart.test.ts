import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runtimePlan } from '../../../src/cli/runtime.ts';
import { AGENT_OPTIONS } from '../../../src/config/options.ts';
import { describeAgentAgreement, RenderedAgent } from './agent-agreement.ts';
import { CHART_DIR, HELM, HELM_REQUIRED, helm, renderChart, renderError } from './helm.ts';
import {
  type DaemonSetShape,
  findObject,
  K8S_DIR,
  type K8sObject,
  kustomizedObjects,
  parseManifests,
  ROOT,
  readKustomization,
  readText,
} from './k8s-files.ts';
import { CLUSTER_SCOPED, isKnownKind, schemaError, unknownFields } from './k8s-validate.ts';

const MiB = 1024 * 1024;

/**
 * The Helm chart (charts/logferry), rendered by a real helm with its default values and with several
 * other value sets: every object held to the Kubernetes API like k8s/ is, every DaemonSet held to the
 * agent it runs (agent-agreement.ts, shared with k8s/), the defaults equal to k8s/ object for object, and
 * values.schema.json refusing what it should.
 */

it.runIf(HELM_REQUIRED)('helm is available (LOGFERRY_REQUIRE_HELM=1: run scripts/helm.sh)', () => {
  expect(HELM).toBeDefined();
});

describe('scripts/helm.sh', () => {
  const script = join(ROOT, 'scripts', 'helm.sh');
  const run = (args: string[], cacheDir?: string) =>
    spawnSync('bash', [script, ...args], {
      encoding: 'utf8',
      env: cacheDir === undefined ? process.env : { ...process.env, LOGFERRY_HELM_CACHE_DIR: cacheDir },
    });

  it('`path` finds nothing in an empty cache, and never builds', () => {
    const dir = mkdtempSync(join(tmpdir(), 'logferry-helm-cache-'));
    try {
      const r = run(['path'], dir);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown argument in one line naming it', () => {
    const r = run(['--bogus'], tmpdir());
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(
      "helm.sh: unknown argument '--bogus': use no argument (build and print the path) or 'path'",
    );
  });

  it.runIf(HELM !== undefined && process.env.LOGFERRY_HELM === undefined)(
    '`path` prints the cached helm',
    () => {
      expect(run(['path']).stdout.trim()).toBe(HELM);
    },
  );
});

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const chart = parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as {
  version: string;
  appVersion: string;
};
const defaults = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as {
  properties: Record<string, { properties?: Record<string, unknown> }>;
};

/** The agent has an OpenSearch output (#15) when its option table knows output.type. */
const AGENT_HAS_OPENSEARCH = AGENT_OPTIONS.some((o) => o.key === 'output.type');

interface ValueSet {
  name: string;
  values: Record<string, unknown> | undefined;
  release?: string;
  namespace?: string;
}

const VALUE_SETS: ValueSet[] = [
  { name: 'defaults', values: undefined },
  {
    name: 'everything changed',
    release: 'prod',
    namespace: 'observability',
    values: {
      image: { repository: 'ghcr.io/example/logferry', tag: '9.9.9', pullPolicy: 'Always' },
      imagePullSecrets: [{ name: 'ghcr' }],
      output: {
        urls: ['https://es-0.example:9200', 'https://es-1.example:9200'],
        index: 'logs-{kubernetes.namespace}',
      },
      credentials: { create: true, username: 'shipper', password: 's3cret' },
      memory: { bufferMiB: 32 },
      resources: { requests: { cpu: '200m' }, limits: { cpu: '2' } },
      workers: 2,
      http: { port: 2021 },
      hostPaths: { logs: '/mnt/log', dockerContainers: '', state: '/mnt/state/logferry' },
      config: {
        podsDir: '/mnt/log/pods',
        kube: { namespaceLabels: true, annotations: ['example.com/*'] },
        include: { namespaces: ['shop-*'] },
        output: { caFile: '/etc/logferry/es-ca/ca.crt', compression: true },
        multiline: { default: 'auto' },
        shutdownTimeoutMs: 40_000,
      },
      terminationGracePeriodSeconds: 45,
      extraEnv: [{ name: 'LOGFERRY_CONCURRENCY', value: '4' }],
      extraVolumes: [{ name: 'es-ca', secret: { secretName: 'es-ca' } }],
      extraVolumeMounts: [{ name: 'es-ca', mountPath: '/etc/logferry/es-ca', readOnly: true }],
      priorityClassName: 'logging-critical',
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'logs', effect: 'NoSchedule' }],
      nodeSelector: { 'kubernetes.io/os': 'linux', pool: 'general' },
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'spot', operator: 'NotIn', values: ['true'] }] }],
          },
        },
      },
      podAnnotations: { 'example.com/team': 'platform' },
      podLabels: { team: 'platform' },
      prometheusAnnotations: false,
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%', maxSurge: 0 } },
      serviceAccount: { name: 'log-shipper', annotations: { 'example.com/role': 'logs' } },
      createNamespace: true,
      serviceMonitor: { enabled: true, interval: '15s', labels: { release: 'kube-prometheus-stack' } },
    },
  },
  {
    name: 'existing Secret with other keys, API key',
    values: {
      credentials: {
        existingSecret: 'es-creds',
        keys: { username: 'user', password: 'pass', apiKey: 'key' },
      },
    },
  },
  {
    name: 'big budget, IPv6, OnDelete, no tolerations',
    values: {
      memory: { bufferMiB: 256 },
      http: { host: '[::]' },
      updateStrategy: { type: 'OnDelete' },
      tolerations: [],
      priorityClassName: '',
    },
  },
  { name: 'stdout output', values: { output: { urls: [] } } },
  {
    name: 'OpenSearch',
    values: {
      output: { type: 'opensearch', urls: ['https://opensearch.logging.svc:9200'], index: 'logs-k8s' },
    },
  },
];

const rendered = new Map<string, K8sObject[]>();
function objectsOf(set: ValueSet): K8sObject[] {
  let objects = rendered.get(set.name);
  if (objects === undefined) {
    objects = renderChart(set.values, { release: set.release, namespace: set.namespace });
    rendered.set(set.name, objects);
  }
  return objects;
}
const setNamed = (name: string) => VALUE_SETS.find((s) => s.name === name)!;
const daemonSet = (objects: readonly K8sObject[]) =>
  findObject(objects, 'DaemonSet') as unknown as DaemonSetShape;
const configOf = (objects: readonly K8sObject[]) =>
  parseYaml(
    (findObject(objects, 'ConfigMap') as unknown as { data: Record<string, string> }).data['config.yaml']!,
  );

describe('charts/logferry files', () => {
  it('is versioned with the agent', () => {
    expect(chart.version).toBe(pkg.version);
    expect(chart.appVersion).toBe(pkg.version);
  });

  it('values.yaml has every value the schema declares, and only those', () => {
    expect(Object.keys(defaults).sort()).toEqual(Object.keys(schema.properties).sort());
  });

  it('the schema refuses unknown keys in every object but the Kubernetes pass-throughs', () => {
    // Kubernetes structures the chart copies as they are (the API server checks them) and the agent's
    // config sections (the agent checks them at start, and the tests below run its loader on them).
    const OPEN = new Set([
      'config.*',
      'extraEnv[].valueFrom',
      'extraVolumes[]',
      'affinity.nodeAffinity',
      'affinity.podAffinity',
      'affinity.podAntiAffinity',
    ]);
    type Node = {
      type?: string;
      properties?: Record<string, Node>;
      items?: Node;
      additionalProperties?: unknown;
    };
    const open: string[] = [];
    const walk = (node: Node, at: string): void => {
      if (node.type === 'object' && node.additionalProperties !== false) {
        const typedMap = typeof node.additionalProperties === 'object';
        if (!typedMap && !OPEN.has(at)) open.push(at);
      }
      for (const [k, child] of Object.entries(node.properties ?? {}))
        walk(child, at === '' ? k : at.startsWith('config') ? 'config.*' : `${at}.${k}`);
      if (node.items) walk(node.items, `${at}[]`);
    };
    walk(schema as Node, '');
    expect(open).toEqual([]);
  });

  it('values.yaml has a comment above every top-level value', () => {
    const lines = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8').split('\n');
    const uncommented = lines.flatMap((line, i) =>
      /^[a-zA-Z]/.test(line) && !lines[i - 1]?.startsWith('#') ? [line.split(':')[0]] : [],
    );
    expect(uncommented).toEqual([]);
  });

  it("docs/deploy.md's Helm table names every top-level value", () => {
    const doc = readText('docs', 'deploy.md');
    const table = doc.slice(doc.indexOf('## Helm'), doc.indexOf('**Memory follows the budget**'));
    const missing = Object.keys(defaults).filter(
      (k) => !new RegExp(`\\| \`${k}[.\`]|, \`${k}[.\`]`).test(table),
    );
    expect(missing).toEqual([]);
  });

  it("the schema's config keys are the agent's top-level config keys", () => {
    const agentKeys = new Set(AGENT_OPTIONS.map((o) => o.key.split('.')[0]!));
    expect(Object.keys(schema.properties.config!.properties!).sort()).toEqual([...agentKeys].sort());
  });
});

describe.runIf(HELM !== undefined)('charts/logferry rendered by helm', () => {
  describe.each(VALUE_SETS)('with $name', (set) => {
    it('passes helm lint --strict', () => {
      const run = helm(
        ['lint', '--strict', CHART_DIR, '--namespace', set.namespace ?? 'logferry'],
        set.values,
      );
      expect(run.stderr).toBe('');
      expect(run.status, run.stdout).toBe(0);
    });

    it('renders objects of known kinds that validate against the Kubernetes schemas, no unknown field', () => {
      const objects = objectsOf(set);
      expect(objects.length).toBeGreaterThanOrEqual(6);
      for (const o of objects) {
        const id = `${o.kind}/${o.metadata.name}`;
        expect(isKnownKind(o), id).toBe(true);
        expect(o.metadata.name, id).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
        expect(schemaError(o), id).toBeUndefined();
        expect(unknownFields(o), id).toEqual([]);
      }
    });

    it('puts every namespaced object in the release namespace, one object per kind and name', () => {
      const objects = objectsOf(set);
      for (const o of objects) {
        if (CLUSTER_SCOPED.has(o.kind)) expect(o.metadata.namespace, o.kind).toBeUndefined();
        else expect(o.metadata.namespace, o.kind).toBe(set.namespace ?? 'logferry');
      }
      const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
      expect(new Set(ids).size).toBe(ids.length);
    });

    it('binds the role to the ServiceAccount the DaemonSet runs as; the Service selects its pods', () => {
      const objects = objectsOf(set);
      const ds = daemonSet(objects);
      const sa = findObject(objects, 'ServiceAccount');
      const binding = findObject(objects, 'ClusterRoleBinding') as unknown as {
        roleRef: { name: string };
        subjects: unknown[];
      };
      expect(binding.roleRef.name).toBe(findObject(objects, 'ClusterRole').metadata.name);
      expect(binding.subjects).toEqual([
        { kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace },
      ]);
      expect(ds.spec.template.spec.serviceAccountName).toBe(sa.metadata.name);
      const labels = ds.spec.template.metadata.labels;
      expect(labels).toMatchObject(ds.spec.selector.matchLabels);
      const service = findObject(objects, 'Service') as unknown as {
        spec: {
          selector: Record<string, string>;
          ports: { name: string; port: number; targetPort: string }[];
        };
      };
      expect(labels).toMatchObject(service.spec.selector);
      const http = ds.spec.template.spec.containers[0]!.ports!.find((p) => p.name === 'http')!;
      expect(service.spec.ports).toEqual([
        { name: 'http', port: http.containerPort, targetPort: 'http', protocol: 'TCP' },
      ]);
    });

    it('every Secret reference names the credentials Secret, optional, and a created Secret has those keys', () => {
      const objects = objectsOf(set);
      const env = daemonSet(objects).spec.template.spec.containers[0]!.env!;
      const refs = env.flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : []));
      expect(refs).toHaveLength(3);
      expect(new Set(refs.map((r) => r.name)).size).toBe(1);
      for (const ref of refs) expect(ref.optional).toBe(true);
      const secret = objects.find((o) => o.kind === 'Secret') as
        | (K8sObject & { stringData: object })
        | undefined;
      if (secret !== undefined) {
        expect(secret.metadata.name).toBe(refs[0]!.name);
        for (const key of Object.keys(secret.stringData)) expect(refs.map((r) => r.key)).toContain(key);
      }
    });
  });

  describe.each(
    VALUE_SETS.filter(
      (s) => s.values?.output === undefined || (s.values.output as { type?: string }).type !== 'opensearch',
    ),
  )('with $name', (set) => {
    describeAgentAgreement(`the chart with ${set.name}`, () => new RenderedAgent(objectsOf(set)));
  });

  describe('OpenSearch', () => {
    const set = setNamed('OpenSearch');

    it('selects the OpenSearch output in the config file: output.type and output.os, no output.es', () => {
      const output = (configOf(objectsOf(set)) as { output: Record<string, unknown> }).output;
      expect(output).toEqual({
        type: 'opensearch',
        os: ['https://opensearch.logging.svc:9200'],
        index: 'logs-k8s',
      });
    });

    // Until the OpenSearch output (#15) is in the agent, its loader refuses output.type; from then on the
    // whole agreement suite holds for this rendering too.
    describe.runIf(AGENT_HAS_OPENSEARCH)('once the agent has the OpenSearch output', () => {
      describeAgentAgreement('the chart with OpenSearch', () => new RenderedAgent(objectsOf(set)));
    });
  });

  describe('values reach the objects', () => {
    it('a 32 MiB budget: maxBufferBytes 32MiB, old space 160, request 160Mi, limit 384Mi', () => {
      const objects = objectsOf(setNamed('everything changed'));
      const c = daemonSet(objects).spec.template.spec.containers[0]!;
      expect((configOf(objects) as { maxBufferBytes: string }).maxBufferBytes).toBe('32MiB');
      expect(runtimePlan(32 * MiB, { execArgv: [], env: {} })?.execArgv[0]).toBe('--max-old-space-size=160');
      expect(c.resources).toEqual({
        requests: { cpu: '200m', memory: '160Mi' },
        limits: { cpu: '2', memory: '384Mi' },
      });
    });

    it.each([
      [8, 88, '88Mi', '256Mi'],
      [64, 256, '256Mi', '512Mi'],
      [256, 832, '832Mi', '1280Mi'],
    ])('a %i MiB budget: old space %i, request %s, limit %s', (bufferMiB, oldSpace, request, limit) => {
      const objects = renderChart({ memory: { bufferMiB } });
      const c = daemonSet(objects).spec.template.spec.containers[0]!;
      expect((configOf(objects) as { maxBufferBytes: string }).maxBufferBytes).toBe(`${bufferMiB}MiB`);
      // the heap the agent gives itself for that budget (src/cli/runtime.ts)
      expect(runtimePlan(bufferMiB * MiB, { execArgv: [], env: {} })?.execArgv[0]).toBe(
        `--max-old-space-size=${oldSpace}`,
      );
      expect(c.resources?.requests?.memory).toBe(request);
      expect(c.resources?.limits?.memory).toBe(limit);
    });

    it('an explicit memory request and limit win over the derived ones', () => {
      const c = daemonSet(
        renderChart({ resources: { requests: { memory: '300Mi' }, limits: { memory: '1Gi' } } }),
      ).spec.template.spec.containers[0]!;
      expect(c.resources).toEqual({
        requests: { cpu: '100m', memory: '300Mi' },
        limits: { cpu: '1', memory: '1Gi' },
      });
    });

    it('scheduling, pod metadata, image and update strategy come from the values', () => {
      const set = setNamed('everything changed');
      const ds = daemonSet(objectsOf(set));
      const values = set.values as Record<string, Record<string, unknown>>;
      const pod = ds.spec.template.spec as unknown as Record<string, unknown>;
      expect(pod.tolerations).toEqual(values.tolerations);
      expect(pod.nodeSelector).toEqual(values.nodeSelector);
      expect(pod.affinity).toEqual(values.affinity);
      expect(pod.priorityClassName).toBe('logging-critical');
      expect(pod.imagePullSecrets).toEqual([{ name: 'ghcr' }]);
      expect(pod.terminationGracePeriodSeconds).toBe(45);
      expect(ds.spec.template.metadata.labels).toMatchObject({ team: 'platform' });
      const annotations = ds.spec.template.metadata.annotations!;
      expect(annotations['example.com/team']).toBe('platform');
      expect(annotations['prometheus.io/scrape']).toBeUndefined();
      expect(ds.spec.template.spec.containers[0]!.image).toBe('ghcr.io/example/logferry:9.9.9');
      expect(ds.spec.updateStrategy).toEqual(values.updateStrategy);
      expect(ds.metadata.name).toBe('prod-logferry');
    });

    it('extra config is merged into the config file, extra env and mounts into the container', () => {
      const objects = objectsOf(setNamed('everything changed'));
      const cfg = configOf(objects) as Record<string, Record<string, unknown>>;
      expect(cfg.kube).toEqual({ enabled: true, namespaceLabels: true, annotations: ['example.com/*'] });
      expect(cfg.output).toMatchObject({ caFile: '/etc/logferry/es-ca/ca.crt', compression: true });
      expect(cfg.output!.es).toEqual(['https://es-0.example:9200', 'https://es-1.example:9200']);
      const c = daemonSet(objects).spec.template.spec.containers[0]!;
      expect(c.env?.at(-1)).toEqual({ name: 'LOGFERRY_CONCURRENCY', value: '4' });
      expect(c.volumeMounts?.at(-1)).toEqual({
        name: 'es-ca',
        mountPath: '/etc/logferry/es-ca',
        readOnly: true,
      });
      expect(c.volumeMounts?.some((m) => m.name === 'dockercontainers')).toBe(false);
    });

    it('an existing Secret is referred to with its own keys, and none is created', () => {
      const objects = objectsOf(setNamed('existing Secret with other keys, API key'));
      expect(objects.some((o) => o.kind === 'Secret')).toBe(false);
      const refs = daemonSet(objects).spec.template.spec.containers[0]!.env!.flatMap((e) =>
        e.valueFrom?.secretKeyRef
          ? [[e.name, e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key]]
          : [],
      );
      expect(refs).toEqual([
        ['LOGFERRY_ES_USER', 'es-creds', 'user'],
        ['LOGFERRY_ES_PASSWORD', 'es-creds', 'pass'],
        ['LOGFERRY_ES_API_KEY', 'es-creds', 'key'],
      ]);
    });

    it('a change of the config file changes the pods (checksum annotation), other values do not', () => {
      const checksum = (values: unknown) =>
        daemonSet(renderChart(values)).spec.template.metadata.annotations!['checksum/config'];
      const base = checksum(undefined);
      expect(base).toMatch(/^[0-9a-f]{64}$/);
      expect(checksum({ config: { kube: { namespaceLabels: true } } })).not.toBe(base);
      expect(checksum({ podLabels: { team: 'x' } })).toBe(base);
    });
  });

  describe('with default values, the same objects as k8s/', () => {
    /** Labels Helm charts add by convention: not in k8s/, and not the agent's business. */
    const HELM_LABELS = [
      'helm.sh/chart',
      'app.kubernetes.io/managed-by',
      'app.kubernetes.io/instance',
      'app.kubernetes.io/version',
    ];

    interface Normalisable {
      kind: string;
      metadata: { name: string; labels?: Record<string, string> };
      spec?: {
        selector?: Record<string, unknown> & { matchLabels?: Record<string, string> };
        template?: { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } };
      };
      data?: Record<string, unknown>;
    }

    function dropHelmLabels(labels: Record<string, unknown> | undefined): void {
      if (labels === undefined) return;
      for (const l of HELM_LABELS) delete labels[l];
    }

    /** What differs by design (docs/deploy.md, "Helm"): Helm's labels, the checksum, the ConfigMap as text. */
    function normalise(objects: readonly K8sObject[]): Normalisable[] {
      return structuredClone(objects as K8sObject[])
        .map((o) => {
          const x = o as unknown as Normalisable;
          dropHelmLabels(x.metadata.labels);
          dropHelmLabels(x.spec?.selector?.matchLabels);
          if (x.kind === 'Service') dropHelmLabels(x.spec?.selector);
          dropHelmLabels(x.spec?.template?.metadata.labels);
          delete x.spec?.template?.metadata.annotations?.['checksum/config'];
          if (x.kind === 'ConfigMap') x.data = { 'config.yaml': parseYaml(String(x.data?.['config.yaml'])) };
          return x;
        })
        .sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
    }

    /** k8s/ as `kubectl apply -k` applies it: the image mapped by kustomization.yaml `images:`. */
    function k8sObjects({ namespace = false, extra = [] as string[] } = {}): K8sObject[] {
      const image = readKustomization().images![0]!;
      const objects = [
        ...kustomizedObjects(),
        ...extra.flatMap((f) => parseManifests(f).map((d) => d.object)),
      ];
      for (const o of objects.filter((x) => x.kind === 'DaemonSet')) {
        const c = (o as unknown as DaemonSetShape).spec.template.spec.containers[0]!;
        if (c.image === image.name) c.image = `${image.newName}:${image.newTag}`;
      }
      return objects.filter((o) => o.kind !== 'Namespace' || namespace);
    }

    it('the same objects but the Namespace, which Helm needs to exist before it installs', () => {
      expect(normalise(objectsOf(setNamed('defaults')))).toEqual(normalise(k8sObjects()));
    });

    it('with createNamespace and serviceMonitor.enabled, also the Namespace and k8s/servicemonitor.yaml', () => {
      const objects = renderChart({ createNamespace: true, serviceMonitor: { enabled: true } });
      expect(normalise(objects)).toEqual(
        normalise(k8sObjects({ namespace: true, extra: ['servicemonitor.yaml'] })),
      );
    });

    it("with credentials.create, k8s/secret-example.yaml's Secret", () => {
      const objects = renderChart({
        credentials: { create: true, username: 'logferry', password: 'change-me' },
      });
      expect(normalise([findObject(objects, 'Secret')])).toEqual(
        normalise(parseManifests('secret-example.yaml').map((d) => d.object)),
      );
    });

    it('the normalisation keeps what matters: a changed default would show', () => {
      const objects = renderChart({ http: { port: 2021 } });
      expect(normalise(objects)).not.toEqual(normalise(k8sObjects()));
      expect(K8S_DIR).toMatch(/k8s$/);
    });
  });

  describe('refuses bad values, naming them', () => {
    it.each([
      ['an unknown value', { replicas: 2 }, 'replicas'],
      ['an unknown nested value', { image: { tga: 'x' } }, 'tga'],
      ['a misspelt config section', { config: { kubee: { enabled: true } } }, 'kubee'],
      ['a string for a number', { memory: { bufferMiB: '64' } }, 'bufferMiB'],
      ['a budget below 8 MiB', { memory: { bufferMiB: 4 } }, 'bufferMiB'],
      ['an unknown output type', { output: { type: 'kafka' } }, 'type'],
      ['a URL without scheme', { output: { urls: ['es:9200'] } }, 'urls'],
      ['a relative host path', { hostPaths: { state: 'var/lib/logferry' } }, 'state'],
      ['a surge', { updateStrategy: { rollingUpdate: { maxSurge: 1 } } }, 'maxSurge'],
      ['a port out of range', { http: { port: 70000 } }, 'port'],
      ['a list for a map', { nodeSelector: ['linux'] }, 'nodeSelector'],
      ['an unknown toleration field', { tolerations: [{ operatr: 'Exists' }] }, 'operatr'],
    ])('%s (schema)', (_what, values, name) => {
      const err = renderError(values);
      expect(err).toMatch(/values don't meet the specifications of the schema/);
      expect(err).toContain(name);
    });

    it.each([
      [
        'config.stateDir',
        { config: { stateDir: '/x' } },
        'config.stateDir is set by the chart: use the value hostPaths.state instead',
      ],
      [
        'config.maxBufferBytes',
        { config: { maxBufferBytes: '1GiB' } },
        'use the value memory.bufferMiB instead',
      ],
      [
        'config.output.es',
        { config: { output: { es: ['http://x:9200'] } } },
        'config.output.es is set by the chart',
      ],
      [
        'config.http.addr',
        { config: { http: { addr: '0.0.0.0:1' } } },
        'use the values http.host and http.port instead',
      ],
      [
        'podsDir outside the logs mount',
        { config: { podsDir: '/data/pods' } },
        'config.podsDir /data/pods is not under hostPaths.logs /var/log',
      ],
      [
        'a grace period under the shutdown timeout',
        { terminationGracePeriodSeconds: 20 },
        'terminationGracePeriodSeconds 20 must exceed config.shutdownTimeoutMs (25000 ms)',
      ],
      [
        'a pod label that is a selector label',
        { podLabels: { 'app.kubernetes.io/component': 'x' } },
        'podLabels.app.kubernetes.io/component would change a label the DaemonSet and Service select the pods by',
      ],
      [
        'OpenSearch without URLs',
        { output: { type: 'opensearch', urls: [] } },
        'output.type opensearch needs output.urls',
      ],
      [
        'a Secret to create without credentials',
        { credentials: { create: true } },
        'credentials.create needs',
      ],
      [
        'create and existingSecret',
        { credentials: { create: true, existingSecret: 'x', apiKey: 'k' } },
        'exclude each other',
      ],
    ])('%s (template)', (_what, values, message) => {
      // helm's own hint ("Use --debug flag to render out invalid YAML") may follow the one error line
      const errors = renderError(values)
        .split('\n')
        .filter((l) => l.startsWith('Error:'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(message);
    });
  });
});
