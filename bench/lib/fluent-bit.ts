// The reference agent for `--compare fluent-bit`: Fluent Bit 5.1.1 and its DaemonSet-style config
// from ../shared/peers/fluent-bit/ (README there), or the binary named by FLUENT_BIT. Its `${...}`
// placeholders are filled in per run; it tails the kubelet symlinks, asks the pod API adapter
// (bench-kube.ts) for pod metadata and ships to the counting Elasticsearch.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type RunningAgent, startProcess } from './agent.ts';
import { POD_API_TOKEN } from './bench-kube.ts';
import type { KubeletLayout } from './kubelet.ts';

export interface FluentBit {
  binary: string;
  /** the config template (fluent-bit.conf next to the binary, else the peers' one) */
  config: string;
  /** the first line of `--version` */
  version: string;
}

/** Where the peers' copy is, relative to the repository root. */
export function defaultFluentBitPath(root: string): string {
  return resolve(root, '..', 'shared/peers/fluent-bit/fluent-bit');
}

/** The binary and its config, or why there is none: one line saying where it looked. */
export function findFluentBit(root: string): FluentBit | string {
  const fromEnv = process.env.FLUENT_BIT;
  const binary = fromEnv !== undefined && fromEnv !== '' ? resolve(fromEnv) : defaultFluentBitPath(root);
  const where =
    fromEnv !== undefined && fromEnv !== '' ? `${binary} (from FLUENT_BIT)` : `${binary} (FLUENT_BIT unset)`;
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    return `--compare fluent-bit: no Fluent Bit binary at ${where}; set FLUENT_BIT=/path/to/fluent-bit to compare. Running logferry alone.`;
  }
  const config = [
    join(dirname(binary), 'fluent-bit.conf'),
    join(dirname(defaultFluentBitPath(root)), 'fluent-bit.conf'),
  ].find((c) => existsSync(c));
  if (config === undefined) {
    return `--compare fluent-bit: no fluent-bit.conf next to ${binary} nor in ${dirname(defaultFluentBitPath(root))}. Running logferry alone.`;
  }
  let version: string;
  try {
    version = execFileSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 })
      .split('\n')[0]!
      .trim();
  } catch (err) {
    return `--compare fluent-bit: ${binary} --version failed (${(err as Error).message.split('\n')[0]}). Running logferry alone.`;
  }
  return { binary, config, version };
}

export interface FluentBitRun {
  layout: KubeletLayout;
  /** a fresh directory: its tail DB and storage go there, and the filled-in config and token */
  stateDir: string;
  /** the pod API adapter (Fluent Bit asks for pods by name) */
  kubeUrl: string;
  esUrl: string;
}

/** The config with every placeholder filled in (README: ROOT_TAG is ROOT without its `/`, dots for slashes). */
export function fluentBitConfig(template: string, r: FluentBitRun, tokenFile: string): string {
  const es = new URL(r.esUrl);
  const values: Record<string, string> = {
    ROOT: r.layout.root,
    ROOT_TAG: r.layout.root.replace(/^\//, '').replaceAll('/', '.'),
    STATE_DIR: r.stateDir,
    KUBE_URL: r.kubeUrl,
    TOKEN_FILE: tokenFile,
    SINK_HOST: es.hostname,
    SINK_PORT: es.port,
  };
  const text = template.replace(/\$\{([A-Z_]+)\}/g, (m, name: string) => values[name] ?? m);
  const left = /\$\{[A-Z_]+\}/.exec(text);
  if (left !== null) throw new Error(`fluent-bit.conf: no value for the placeholder ${left[0]}`);
  return text;
}

/** Fluent Bit over the layout's containers/ links, until SIGTERM (its `Grace` is 5 s). */
export function startFluentBit(fb: FluentBit, r: FluentBitRun): RunningAgent {
  // no trailing newline: Fluent Bit would copy it into the Authorization header (README)
  const tokenFile = join(r.stateDir, 'token');
  writeFileSync(tokenFile, POD_API_TOKEN);
  const config = join(r.stateDir, 'fluent-bit.conf');
  writeFileSync(config, fluentBitConfig(readFileSync(fb.config, 'utf8'), r, tokenFile));
  return startProcess(fb.binary, ['-c', config], { cwd: r.stateDir, env: process.env, logStdout: true });
}
