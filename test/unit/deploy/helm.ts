import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { type K8sObject, ROOT } from './k8s-files.ts';

/**
 * Helm for the chart tests. It is not installed on these machines: scripts/helm.sh builds it once into
 * ~/.cache/logferry-helm (CI does, `npm run test:helm`); these tests never build it, they use
 * LOGFERRY_HELM or what the script finds in the cache, and are skipped without one (unless
 * LOGFERRY_REQUIRE_HELM=1, which CI sets so that a missing helm fails instead of passing quietly).
 */

export const CHART_DIR = join(ROOT, 'charts', 'logferry');

function findHelm(): string | undefined {
  if (process.env.LOGFERRY_HELM) return process.env.LOGFERRY_HELM;
  const found = spawnSync('bash', [join(ROOT, 'scripts', 'helm.sh'), 'path'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

export const HELM = findHelm();
export const HELM_REQUIRED = process.env.LOGFERRY_REQUIRE_HELM === '1';

export interface HelmRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
}

/** Runs helm with a values file written from `values` (if any) appended as `-f FILE`. */
export function helm(args: readonly string[], values?: unknown): HelmRun {
  if (HELM === undefined) throw new Error('helm is not available: run scripts/helm.sh');
  const dir = mkdtempSync(join(tmpdir(), 'logferry-helm-'));
  try {
    const extra: string[] = [];
    if (values !== undefined) {
      const file = join(dir, 'values.yaml');
      writeFileSync(file, stringify(values));
      extra.push('-f', file);
    }
    const run = spawnSync(HELM, [...args, ...extra], {
      encoding: 'utf8',
      // keep helm's own state (repositories, cache, plugins) out of the user's home
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(dir, 'cache'),
        HELM_CONFIG_HOME: join(dir, 'config'),
        HELM_DATA_HOME: join(dir, 'data'),
      },
    });
    if (run.error) throw run.error;
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `helm template` of the chart; any failure throws with helm's message. */
export function renderChart(values?: unknown, opts: RenderOptions = {}): K8sObject[] {
  const run = helm(
    ['template', opts.release ?? 'logferry', CHART_DIR, '--namespace', opts.namespace ?? 'logferry'],
    values,
  );
  if (run.status !== 0) throw new Error(`helm template failed: ${run.stderr.trim()}`);
  return parseAllDocuments(run.stdout).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`helm template printed bad YAML: ${doc.errors[0]!.message}`);
    const object = doc.toJS() as K8sObject | null;
    return object === null ? [] : [object];
  });
}

/** `helm template` that is expected to fail: its error output. */
export function renderError(values: unknown): string {
  const run = helm(['template', 'logferry', CHART_DIR, '--namespace', 'logferry'], values);
  if (run.status === 0) throw new Error('helm template accepted the values');
  return run.stderr;
}
