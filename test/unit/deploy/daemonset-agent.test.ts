import { isAbsolute, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { MALLOC_ENV, oldSpaceMb, runtimePlan, SEMI_SPACE_MB } from '../../../src/cli/runtime.ts';
import { type ConfigValues, loadAgentConfig, validateFile } from '../../../src/config/load.ts';
import { AGENT_OPTIONS, envName } from '../../../src/config/options.ts';
import { parseListenAddress } from '../../../src/server/address.ts';
import { stdoutOutput } from '../../../src/server/probe.ts';
import { buildServer } from '../../../src/server/server.ts';
import { envPairs, parseDockerfile } from './dockerfile.ts';
import {
  type Container,
  type DaemonSetShape,
  findObject,
  K8S_DIR,
  kustomizedObjects,
  quantityMiB,
  readText,
  type Volume,
} from './k8s-files.ts';

/**
 * The DaemonSet against the agent it runs: the flags and variables it passes must exist, its port and
 * probes must be where the agent listens and answers, its mounts must hold the directories the agent's
 * configuration names. Every value the agent will see comes from the agent's own loader.
 */

const objects = kustomizedObjects();
const ds = findObject(objects, 'DaemonSet', 'logferry') as unknown as DaemonSetShape;
const pod = ds.spec.template.spec;
const container = pod.containers[0]!;
const configMap = findObject(objects, 'ConfigMap', 'logferry-config') as unknown as {
  data: Record<string, string>;
};

/** Read by the Elasticsearch output directly (src/cli/output-flags.ts), not through an option. */
const SECRET_VARIABLES = ['LOGFERRY_ES_PASSWORD', 'LOGFERRY_ES_API_KEY', 'LOGFERRY_ES_BEARER_TOKEN'];
/** Flags of `logferry agent` that are not options (src/config/load.ts, loadAgentConfig). */
const COMMAND_FLAGS = new Map([
  ['config', 'string'],
  ['once', 'bool'],
  ['help', 'bool'],
]);

/** Problems with agent arguments, judged by AGENT_OPTIONS: unknown flags, missing values. */
function argumentProblems(args: readonly string[]): string[] {
  const problems: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      problems.push(`'${arg}' is not a flag (the agent takes no positional arguments)`);
      continue;
    }
    const [name, value] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const spec = AGENT_OPTIONS.find((s) => s.flag === name);
    const negated = AGENT_OPTIONS.find((s) => s.type === 'bool' && `no-${s.flag}` === name);
    const type = spec?.type ?? (negated ? 'negated' : COMMAND_FLAGS.get(name));
    if (type === undefined) problems.push(`--${name} is not a flag of logferry agent`);
    else if (type === 'bool' || type === 'negated') {
      if (value !== undefined) problems.push(`--${name} is a switch and takes no value`);
    } else if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined || next.startsWith('--')) problems.push(`--${name} needs a value`);
      else i++;
    }
  }
  return problems;
}

function variableProblems(names: readonly string[]): string[] {
  const known = new Set([...AGENT_OPTIONS.map(envName).filter((n) => n !== undefined), ...SECRET_VARIABLES]);
  return names
    .filter((n) => n.startsWith('LOGFERRY_') && !known.has(n))
    .map((n) => `${n} is not read by logferry`);
}

/** The container's environment as the agent would see it; references resolve to stand-in values. */
function containerEnv(c: Container): NodeJS.ProcessEnv {
  return Object.fromEntries(
    (c.env ?? []).map((e) => [
      e.name,
      e.value ?? (e.valueFrom?.fieldRef ? `from-${e.valueFrom.fieldRef.fieldPath}` : `secret-${e.name}`),
    ]),
  );
}

function volume(name: string): Volume {
  const v = pod.volumes?.find((x) => x.name === name);
  if (v === undefined) throw new Error(`no volume ${name}`);
  return v;
}

function isUnder(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** The container's args with the ConfigMap mount replaced by k8s/, so the real loader reads config.yaml. */
function agentValues(): ConfigValues {
  const configMount = container.volumeMounts!.find((m) => volume(m.name).configMap !== undefined)!;
  const args = (container.args ?? []).map((a) => a.replace(configMount.mountPath, K8S_DIR));
  const loaded = loadAgentConfig(args, containerEnv(container));
  if (loaded === 'help') throw new Error('the container args ask for --help');
  return loaded.values;
}

// Loaded once; a refusal is reported by the test below rather than failing the whole file at import.
let loadError: unknown;
let values: ConfigValues | undefined;
try {
  values = agentValues();
} catch (err) {
  loadError = err;
}
function option<T>(key: string): T {
  if (values === undefined) throw new Error(`the agent refuses the DaemonSet's configuration: ${loadError}`);
  return values.get(key) as T;
}

describe('the DaemonSet and the agent agree', () => {
  it('runs the image entrypoint (logferry agent), adding only arguments', () => {
    expect(container.command).toBeUndefined();
    expect(container.args?.length).toBeGreaterThan(0);
  });

  it('passes only flags that logferry agent knows, each with its value', () => {
    expect(argumentProblems(container.args ?? [])).toEqual([]);
  });

  it('the flag check itself catches what the agent would refuse', () => {
    expect(
      argumentProblems(['--configg=/x', '--kube=yes', '--index', '--no-kube', '--no-index', 'x']),
    ).toEqual([
      '--configg is not a flag of logferry agent',
      '--kube is a switch and takes no value',
      '--index needs a value',
      '--no-index is not a flag of logferry agent',
      "'x' is not a flag (the agent takes no positional arguments)",
    ]);
  });

  it('sets only LOGFERRY_* variables that the agent reads', () => {
    const names = (container.env ?? []).map((e) => e.name);
    expect(variableProblems(names)).toEqual([]);
    expect(variableProblems(['LOGFERRY_ES_PASSWORDD'])).toEqual([
      'LOGFERRY_ES_PASSWORDD is not read by logferry',
    ]);
  });

  it("gives the agent its node's name and its own pod from the downward API", () => {
    const fieldPath = (name: string) =>
      container.env?.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
    expect(fieldPath('NODE_NAME')).toBe('spec.nodeName');
    expect(fieldPath('POD_NAME')).toBe('metadata.name');
    expect(fieldPath('POD_NAMESPACE')).toBe('metadata.namespace');
    expect(option('nodeName')).toBe('from-spec.nodeName');
  });

  it("the agent's loader accepts the args, environment and config file together", () => {
    expect(loadError).toBeUndefined();
    expect(option<string[]>('output.es').length).toBeGreaterThan(0);
  });

  it("the ConfigMap's config.yaml passes the agent's config validator", () => {
    const text = configMap.data['config.yaml']!;
    const values = validateFile(parseYaml(text), 'k8s/config.yaml');
    expect([...values.keys()]).toEqual(expect.arrayContaining(['output.es', 'output.index']));
  });

  it('the config file is where --config points, inside the ConfigMap volume, without subPath', () => {
    const configMount = container.volumeMounts!.find((m) => volume(m.name).configMap !== undefined)!;
    expect(volume(configMount.name).configMap!.name).toBe('logferry-config');
    // a subPath mount never sees ConfigMap updates, so a SIGHUP reload would re-read the old file
    expect(configMount.subPath).toBeUndefined();
    expect(container.args).toContain(`--config=${configMount.mountPath}/config.yaml`);
  });

  it("the container port named http is the port of the agent's http.addr", () => {
    const { port } = parseListenAddress(option<string>('http.addr'));
    const http = container.ports?.find((p) => p.name === 'http');
    expect(http?.containerPort).toBe(port);
    expect(ds.spec.template.metadata.annotations?.['prometheus.io/port']).toBe(String(port));
  });

  describe('probes', () => {
    const app = buildServer({
      probe: {
        waitingBytes: () => 0,
        bufferLimitBytes: 1,
        lastProgressMs: () => Date.now(),
        output: stdoutOutput,
        metadata: () => ({ state: 'synced', cachedPods: 0, misses: 0, lastError: undefined }),
        files: () => [],
        startedMs: Date.now(),
        version: '0.0.0',
      },
      metrics: { contentType: 'text/plain', metrics: async () => '' },
      stallTimeoutMs: 60_000,
      eventLoop: { delayMs: () => 0 },
    });
    afterAll(() => app.close());

    it.each([
      ['livenessProbe', '/healthz'],
      ['readinessProbe', '/readyz'],
    ] as const)('%s asks %s on the http port', (probe, path) => {
      expect(container[probe]?.httpGet).toEqual({ path, port: 'http' });
    });

    it.each(['/healthz', '/readyz', '/metrics', '/status'])('the agent serves GET %s', async (url) => {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode).not.toBe(404);
    });
  });

  it('mounts the state directory (stateDir) from the host, writable, created if missing', () => {
    const stateDir = option<string>('stateDir');
    const mount = container.volumeMounts!.find((m) => m.mountPath === stateDir);
    expect(mount?.readOnly).toBeFalsy();
    expect(volume(mount!.name).hostPath).toEqual({ path: stateDir, type: 'DirectoryOrCreate' });
  });

  it('podsDir lies under a read-only hostPath mounted at the same path (so symlinks resolve)', () => {
    const podsDir = option<string>('podsDir');
    const mount = container.volumeMounts!.find(
      (m) => isUnder(podsDir, m.mountPath) && volume(m.name).hostPath?.path === m.mountPath,
    );
    expect(mount).toBeDefined();
    expect(mount!.readOnly).toBe(true);
  });

  it("mounts docker's container log directory at its host path, read-only, for cri-dockerd symlinks", () => {
    const mount = container.volumeMounts!.find((m) => m.mountPath === '/var/lib/docker/containers');
    expect(mount?.readOnly).toBe(true);
    expect(volume(mount!.name).hostPath?.path).toBe('/var/lib/docker/containers');
  });

  it('every other host directory is read-only', () => {
    const stateDir = option<string>('stateDir');
    for (const m of container.volumeMounts!) {
      if (volume(m.name).hostPath !== undefined && m.mountPath !== stateDir)
        expect(m.readOnly, m.mountPath).toBe(true);
    }
  });

  it('gives the agent longer than its shutdown timeout before the kubelet kills it', () => {
    expect(pod.terminationGracePeriodSeconds).toBe(30);
    expect(pod.terminationGracePeriodSeconds!).toBeGreaterThan(option<number>('shutdownTimeoutMs') / 1000);
  });
});

describe('memory: heap limit, buffer budget and container limit', () => {
  const budgetMiB = () => option<number>('maxBufferBytes') / (1024 * 1024);
  const oldSpaceMiB = () => oldSpaceMb(option<number>('maxBufferBytes'));
  const runtimeEnv = ['NODE_OPTIONS', ...Object.keys(MALLOC_ENV)];

  it("leaves V8's heap and malloc to the agent, which derives them from config.yaml's budget", () => {
    for (const name of runtimeEnv)
      expect(
        container.env?.find((e) => e.name === name),
        name,
      ).toBeUndefined();
    // what the agent will add for this pod's configuration: the whole set, nothing already fixed
    expect(runtimePlan(option<number>('maxBufferBytes'), { execArgv: [], env: {} })?.execArgv).toEqual([
      `--max-old-space-size=${oldSpaceMiB()}`,
      `--max-semi-space-size=${SEMI_SPACE_MB}`,
    ]);
  });

  it('the image does not fix them either (a fixed NODE_OPTIONS would not follow a changed budget)', () => {
    const runtime = parseDockerfile(readText('Dockerfile')).stages.at(-1)!;
    const env = Object.assign({}, ...runtime.instructions.filter((i) => i.keyword === 'ENV').map(envPairs));
    for (const name of runtimeEnv) expect(env[name], name).toBeUndefined();
  });

  it('the memory limit holds old space + the budget + 128 MiB, the request at least the old space', () => {
    const { requests, limits } = container.resources!;
    expect(quantityMiB(limits!.memory!)).toBeGreaterThanOrEqual(oldSpaceMiB() + budgetMiB() + 128);
    expect(quantityMiB(requests!.memory!)).toBeGreaterThanOrEqual(oldSpaceMiB());
    expect(container.resources).toEqual({
      requests: { cpu: '100m', memory: '256Mi' },
      limits: { cpu: '1', memory: '512Mi' },
    });
  });

  it('docs/deploy.md states the same numbers', () => {
    const doc = readText('docs', 'deploy.md');
    expect(doc).toContain(`--max-old-space-size=${oldSpaceMiB()} --max-semi-space-size=${SEMI_SPACE_MB}`);
    expect(doc).toContain('512Mi');
  });
});

describe('the pod runs locked down, on every node', () => {
  it('as uid 0 with every capability dropped but DAC_READ_SEARCH, read-only root, no escalation', () => {
    expect(container.securityContext).toMatchObject({
      runAsUser: 0,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], add: ['DAC_READ_SEARCH'] },
    });
    expect(pod.securityContext?.seccompProfile).toEqual({ type: 'RuntimeDefault' });
  });

  it('/tmp is a bounded emptyDir, the only writable path besides the state directory', () => {
    const tmp = container.volumeMounts!.find((m) => m.mountPath === '/tmp');
    expect(volume(tmp!.name).emptyDir?.sizeLimit).toBeDefined();
    const writable = container.volumeMounts!.filter((m) => !m.readOnly).map((m) => m.mountPath);
    expect(writable.sort()).toEqual([option<string>('stateDir'), '/tmp'].sort());
  });

  it('tolerates every taint and is node-critical', () => {
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(pod.priorityClassName).toBe('system-node-critical');
  });

  it('rolls one node at a time, the old agent gone before the new one takes the state lock', () => {
    expect(ds.spec.updateStrategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: 1, maxSurge: 0 },
    });
  });
});
