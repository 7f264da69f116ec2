import { describe, expect, it } from 'vitest';
import { oldSpaceMb, SEMI_SPACE_MB } from '../../../src/cli/runtime.ts';
import {
  argumentProblems,
  describeAgentAgreement,
  RenderedAgent,
  variableProblems,
} from './agent-agreement.ts';
import { envPairs, parseDockerfile } from './dockerfile.ts';
import { kustomizedObjects, readText } from './k8s-files.ts';

/**
 * k8s/ against the agent it runs: the checks every rendering of the DaemonSet must pass (shared with the
 * Helm chart, agent-agreement.ts), then what is particular to k8s/: its exact defaults, the image's
 * matching environment and the numbers docs/deploy.md states.
 */

const agent = new RenderedAgent(kustomizedObjects());

describeAgentAgreement('k8s/', () => agent);

describe('the agreement checks themselves', () => {
  it('catch flags the agent would refuse', () => {
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

  it('catch variables the agent does not read', () => {
    expect(variableProblems(['LOGFERRY_ES_PASSWORDD', 'LOGFERRY_ES', 'OTHER'])).toEqual([
      'LOGFERRY_ES_PASSWORDD is not read by logferry',
    ]);
  });
});

describe('k8s/ defaults', () => {
  const { container, pod, ds } = agent;
  const runtimeEnv = () => {
    const runtime = parseDockerfile(readText('Dockerfile')).stages.at(-1)!;
    return Object.assign({}, ...runtime.instructions.filter((i) => i.keyword === 'ENV').map(envPairs));
  };

  it('ships to the configured Elasticsearch and its ConfigMap is the generated logferry-config', () => {
    expect(agent.option<string[]>('output.es').length).toBeGreaterThan(0);
    expect(agent.configMap.metadata.name).toBe('logferry-config');
  });

  it('the image does not fix V8 or malloc settings either (a fixed NODE_OPTIONS would not follow a changed budget)', () => {
    const env = runtimeEnv();
    for (const name of [
      'NODE_OPTIONS',
      'MALLOC_MMAP_THRESHOLD_',
      'MALLOC_TRIM_THRESHOLD_',
      'MALLOC_ARENA_MAX',
    ])
      expect(env[name], name).toBeUndefined();
  });

  it('requests 100m and 256Mi, limits 1 core and 512Mi', () => {
    expect(container.resources).toEqual({
      requests: { cpu: '100m', memory: '256Mi' },
      limits: { cpu: '1', memory: '512Mi' },
    });
  });

  it('docs/deploy.md states the same numbers', () => {
    const doc = readText('docs', 'deploy.md');
    const budget = agent.option<number>('maxBufferBytes');
    expect(doc).toContain(
      `--max-old-space-size=${oldSpaceMb(budget)} --max-semi-space-size=${SEMI_SPACE_MB}`,
    );
    expect(doc).toContain('512Mi');
  });

  it("mounts docker's container log directory at its host path, read-only, for cri-dockerd symlinks", () => {
    const mount = container.volumeMounts!.find((m) => m.mountPath === '/var/lib/docker/containers');
    expect(mount?.readOnly).toBe(true);
    expect(agent.volume(mount!.name).hostPath?.path).toBe('/var/lib/docker/containers');
  });

  it('the only writable mounts are the state directory and /tmp', () => {
    const writable = container.volumeMounts!.filter((m) => !m.readOnly).map((m) => m.mountPath);
    expect(writable.sort()).toEqual([agent.option<string>('stateDir'), '/tmp'].sort());
  });

  it('gives the agent 30 s to stop', () => {
    expect(pod.terminationGracePeriodSeconds).toBe(30);
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
