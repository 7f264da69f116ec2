import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { MALLOC_ENV, oldSpaceMb, runtimePlan, SEMI_SPACE_MB } from '../../../src/cli/runtime.ts';
import { type ConfigValues, loadAgentConfig, validateFile } from '../../../src/config/load.ts';
import { AGENT_OPTIONS, envName } from '../../../src/config/options.ts';
import { parseListenAddress } from '../../../src/server/address.ts';
import { stdoutOutput } from '../../../src/server/probe.ts';
import { buildServer } from '../../../src/server/server.ts';
import {
  type Container,
  type DaemonSetShape,
  findObject,
  type K8sObject,
  type PodSpec,
  quantityMiB,
  type Volume,
} from './k8s-files.ts';

/**
 * A DaemonSet against the agent it runs, whoever rendered it (k8s/ through kustomize, or the Helm chart
 * with some values): the flags and variables it passes must exist, its port and probes must be where the
 * agent listens and answers, its mounts must hold the directories the agent's configuration names, its
 * memory must follow the buffer budget. Every value the agent will see comes from the agent's own loader,
 * reading the config file from the ConfigMap the DaemonSet mounts.
 */

/** Read by the Elasticsearch output directly (src/cli/output-flags.ts), not through an option. */
const SECRET_VARIABLES = ['LOGFERRY_ES_PASSWORD', 'LOGFERRY_ES_API_KEY', 'LOGFERRY_ES_BEARER_TOKEN'];
/** Flags of `logferry agent` that are not options (src/config/load.ts, loadAgentConfig). */
const COMMAND_FLAGS = new Map([
  ['config', 'string'],
  ['once', 'bool'],
  ['help', 'bool'],
]);

/** Problems with agent arguments, judged by AGENT_OPTIONS: unknown flags, missing values. */
export function argumentProblems(args: readonly string[]): string[] {
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

export function variableProblems(names: readonly string[]): string[] {
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

function isUnder(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** old space = 3 x budget + 64 MiB (docs/deploy.md, "Sizing"; the agent's own rule, src/cli/runtime.ts) */
export function oldSpaceMiB(budgetMiB: number): number {
  return oldSpaceMb(budgetMiB * 1024 * 1024);
}

/** The DaemonSet, its pod and container, and the ConfigMap holding the config file --config names. */
export class RenderedAgent {
  readonly ds: DaemonSetShape;
  readonly pod: PodSpec;
  readonly container: Container;
  readonly configMap: K8sObject & { data: Record<string, string> };
  /** the agent's values, or why its loader refused the DaemonSet's args, environment and config file */
  readonly loaded: { values: ConfigValues } | { error: unknown };

  constructor(objects: readonly K8sObject[]) {
    this.ds = findObject(objects, 'DaemonSet') as unknown as DaemonSetShape;
    this.pod = this.ds.spec.template.spec;
    this.container = this.pod.containers[0]!;
    const configName = this.volume(this.configMount().name).configMap!.name;
    this.configMap = findObject(objects, 'ConfigMap', configName) as K8sObject & {
      data: Record<string, string>;
    };
    this.loaded = this.load();
  }

  volume(name: string): Volume {
    const v = this.pod.volumes?.find((x) => x.name === name);
    if (v === undefined) throw new Error(`no volume ${name}`);
    return v;
  }

  configMount(): NonNullable<Container['volumeMounts']>[number] {
    const m = this.container.volumeMounts?.find((x) => this.volume(x.name).configMap !== undefined);
    if (m === undefined) throw new Error('the container mounts no ConfigMap');
    return m;
  }

  /** The container's args with the ConfigMap mount replaced by a temp dir holding its files. */
  private load(): RenderedAgent['loaded'] {
    const dir = mkdtempSync(join(tmpdir(), 'logferry-deploy-'));
    try {
      for (const [file, text] of Object.entries(this.configMap.data)) writeFileSync(join(dir, file), text);
      const mountPath = this.configMount().mountPath;
      const args = (this.container.args ?? []).map((a) => a.replace(mountPath, dir));
      const loaded = loadAgentConfig(args, containerEnv(this.container));
      if (loaded === 'help') throw new Error('the container args ask for --help');
      return { values: loaded.values };
    } catch (error) {
      return { error };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  option<T>(key: string): T {
    if ('error' in this.loaded)
      throw new Error(`the agent refuses the DaemonSet's configuration: ${this.loaded.error}`);
    return this.loaded.values.get(key) as T;
  }

  env(name: string): string | undefined {
    return this.container.env?.find((e) => e.name === name)?.value;
  }
}

/**
 * Registers the agreement tests for one rendering. `agent` is called inside the tests, so a rendering
 * that fails is reported by them rather than at collection.
 */
export function describeAgentAgreement(label: string, agent: () => RenderedAgent): void {
  describe(`${label}: the DaemonSet and the agent agree`, () => {
    it('runs the image entrypoint (logferry agent), adding only arguments', () => {
      const { container } = agent();
      expect(container.command).toBeUndefined();
      expect(container.args?.length).toBeGreaterThan(0);
    });

    it('passes only flags that logferry agent knows, each with its value', () => {
      expect(argumentProblems(agent().container.args ?? [])).toEqual([]);
    });

    it('sets only LOGFERRY_* variables that the agent reads', () => {
      expect(variableProblems((agent().container.env ?? []).map((e) => e.name))).toEqual([]);
    });

    it("gives the agent its node's name and its own pod from the downward API", () => {
      const a = agent();
      const fieldPath = (name: string) =>
        a.container.env?.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
      expect(fieldPath('NODE_NAME')).toBe('spec.nodeName');
      expect(fieldPath('POD_NAME')).toBe('metadata.name');
      expect(fieldPath('POD_NAMESPACE')).toBe('metadata.namespace');
      expect(a.option('nodeName')).toBe('from-spec.nodeName');
    });

    it("the agent's loader accepts the args, environment and config file together", () => {
      const { loaded } = agent();
      expect('error' in loaded ? String(loaded.error) : undefined).toBeUndefined();
    });

    it("the ConfigMap's config.yaml passes the agent's config validator", () => {
      const text = agent().configMap.data['config.yaml'];
      expect(text).toBeDefined();
      const values = validateFile(parseYaml(text!), `${label} config.yaml`);
      expect([...values.keys()]).toEqual(expect.arrayContaining(['output.index']));
    });

    it('the config file is where --config points, inside the ConfigMap volume, without subPath', () => {
      const a = agent();
      const mount = a.configMount();
      // a subPath mount never sees ConfigMap updates, so a SIGHUP reload would re-read the old file
      expect(mount.subPath).toBeUndefined();
      expect(a.container.args).toContain(`--config=${mount.mountPath}/config.yaml`);
    });

    it("the container port named http is the port of the agent's http.addr", () => {
      const a = agent();
      const { port } = parseListenAddress(a.option<string>('http.addr'));
      const http = a.container.ports?.find((p) => p.name === 'http');
      expect(http?.containerPort).toBe(port);
      const annotation = a.ds.spec.template.metadata.annotations?.['prometheus.io/port'];
      if (annotation !== undefined) expect(annotation).toBe(String(port));
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
      ] as const)('%s asks %s on the http port, which the agent serves', async (probe, path) => {
        expect(agent().container[probe]?.httpGet).toEqual({ path, port: 'http' });
        const res = await app.inject({ method: 'GET', url: path });
        expect(res.statusCode).not.toBe(404);
      });

      it('the agent serves the metrics path the pods advertise', async () => {
        const path = agent().ds.spec.template.metadata.annotations?.['prometheus.io/path'] ?? '/metrics';
        const res = await app.inject({ method: 'GET', url: path });
        expect(res.statusCode).toBe(200);
      });
    });

    it('mounts the state directory (stateDir) from the host, writable, created if missing', () => {
      const a = agent();
      const stateDir = a.option<string>('stateDir');
      const mount = a.container.volumeMounts!.find((m) => m.mountPath === stateDir);
      expect(mount?.readOnly).toBeFalsy();
      expect(a.volume(mount!.name).hostPath).toEqual({ path: stateDir, type: 'DirectoryOrCreate' });
    });

    it('podsDir lies under a read-only hostPath mounted at the same path (so symlinks resolve)', () => {
      const a = agent();
      const podsDir = a.option<string>('podsDir');
      const mount = a.container.volumeMounts!.find(
        (m) => isUnder(podsDir, m.mountPath) && a.volume(m.name).hostPath?.path === m.mountPath,
      );
      expect(mount).toBeDefined();
      expect(mount!.readOnly).toBe(true);
    });

    it('every host directory but the state directory is read-only, mounted at its host path', () => {
      const a = agent();
      const stateDir = a.option<string>('stateDir');
      for (const m of a.container.volumeMounts!) {
        const hostPath = a.volume(m.name).hostPath;
        if (hostPath === undefined) continue;
        expect(m.mountPath, m.name).toBe(hostPath.path);
        if (m.mountPath !== stateDir) expect(m.readOnly, m.mountPath).toBe(true);
      }
    });

    it('gives the agent longer than its shutdown timeout before the kubelet kills it', () => {
      const a = agent();
      expect(a.pod.terminationGracePeriodSeconds!).toBeGreaterThan(
        a.option<number>('shutdownTimeoutMs') / 1000,
      );
    });

    it("leaves V8's heap and malloc to the agent, which derives an old space of 3 x maxBufferBytes + 64 MiB", () => {
      const a = agent();
      for (const name of ['NODE_OPTIONS', ...Object.keys(MALLOC_ENV)])
        expect(a.env(name), name).toBeUndefined();
      const budget = a.option<number>('maxBufferBytes');
      expect(runtimePlan(budget, { execArgv: [], env: {} })?.execArgv).toEqual([
        `--max-old-space-size=${oldSpaceMiB(budget / (1024 * 1024))}`,
        `--max-semi-space-size=${SEMI_SPACE_MB}`,
      ]);
    });

    it('the memory limit holds old space + the budget + 128 MiB, the request at least the old space', () => {
      const a = agent();
      const budgetMiB = a.option<number>('maxBufferBytes') / (1024 * 1024);
      const { requests, limits } = a.container.resources!;
      expect(quantityMiB(limits!.memory!)).toBeGreaterThanOrEqual(oldSpaceMiB(budgetMiB) + budgetMiB + 128);
      expect(quantityMiB(requests!.memory!)).toBeGreaterThanOrEqual(oldSpaceMiB(budgetMiB));
    });

    it('runs as uid 0 with every capability dropped but DAC_READ_SEARCH, read-only root, no escalation', () => {
      const { container, pod } = agent();
      expect(container.securityContext).toMatchObject({
        runAsUser: 0,
        privileged: false,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'], add: ['DAC_READ_SEARCH'] },
      });
      expect(pod.securityContext?.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    });

    it('/tmp is a bounded emptyDir; the state directory and /tmp are the only writable agent paths', () => {
      const a = agent();
      const tmp = a.container.volumeMounts!.find((m) => m.mountPath === '/tmp');
      expect(a.volume(tmp!.name).emptyDir?.sizeLimit).toBeDefined();
      const writable = a.container.volumeMounts!.filter(
        (m) => !m.readOnly && a.volume(m.name).hostPath !== undefined,
      );
      expect(writable.map((m) => m.mountPath)).toEqual([a.option<string>('stateDir')]);
    });

    it('never surges: the old agent is gone before the new one takes the state lock', () => {
      const strategy = agent().ds.spec.updateStrategy;
      if (strategy?.type !== 'OnDelete') expect(strategy?.rollingUpdate?.maxSurge ?? 0).toBe(0);
    });
  });
}
