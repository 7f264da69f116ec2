import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readlink, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = join(ROOT, 'bin/logferry.js');

export interface Doc {
  '@timestamp': string;
  message: string;
  stream?: string;
  log: { file: { path: string }; offset: number; flags?: string[]; part?: number };
  host: { name: string };
  json?: Record<string, unknown>;
  error?: { type: string; message: string };
  [key: string]: unknown;
}

export async function tempDir(prefix = 'logferry-test-'): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Another user to run the CLI as (root reads every file): a node binary and a bin/logferry.js that
 * user can reach, e.g. from shareCli (run-as.ts).
 */
export interface RunAs {
  uid: number;
  gid: number;
  node: string;
  bin: string;
}

/** spawn's command, arguments and ids for running the CLI with `args`, as `user` if given */
function command(args: string[], user: RunAs | undefined) {
  return {
    file: user?.node ?? process.execPath,
    argv: [user?.bin ?? BIN, ...args],
    ids: user === undefined ? {} : { uid: user.uid, gid: user.gid },
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  docs: Doc[];
}

export function parseDocs(stdout: string): Doc[] {
  return stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Doc);
}

/** Runs the CLI to completion (for --once runs and argument errors). */
export function runCli(
  args: string[],
  opts: {
    timeoutMs?: number;
    env?: NodeJS.ProcessEnv;
    /** run as another user (the test runs as root) */
    user?: RunAs | undefined;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const { file, argv, ids } = command(args, opts.user);
    const child = spawn(file, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
      ...ids,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`logferry ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout,
        stderr,
        // not every run prints documents (--help, --version); parse on first use
        get docs() {
          return parseDocs(stdout);
        },
      });
    });
  });
}

/** A follow-mode CLI process whose documents are collected as they arrive. */
export class Follower {
  readonly child: ChildProcess;
  readonly docs: Doc[] = [];
  stderr = '';
  #partial = '';
  #exit: Promise<number | null>;
  #listeners = new Set<() => void>();

  /** `user`: run as another user (the test runs as root) */
  constructor(args: string[], user?: RunAs) {
    const { file, argv, ids } = command(args, user);
    this.child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...ids });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const text = this.#partial + d;
      const lines = text.split('\n');
      this.#partial = lines.pop() ?? '';
      for (const l of lines) if (l.length > 0) this.docs.push(JSON.parse(l) as Doc);
      for (const f of this.#listeners) f();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      // conditions may be about stderr too
      for (const f of this.#listeners) f();
    });
    this.#exit = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  /** Resolves once `pred(docs)` holds; rejects after `timeoutMs` with what was seen. */
  waitFor(pred: (docs: Doc[]) => boolean, timeoutMs = 20_000): Promise<void> {
    if (pred(this.docs)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pred(this.docs)) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `condition not met in ${timeoutMs} ms; ${this.docs.length} docs: ${this.docs
              .slice(-5)
              .map((d) => d.message)
              .join(' | ')}; stderr: ${this.stderr}`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
    });
  }

  /**
   * Resolves once the process holds `path` open (Linux /proc): from then on, bytes appended are
   * read, whatever the start position rule. Tests wait for this instead of sleeping.
   */
  async opened(path: string, timeoutMs = 10_000): Promise<void> {
    const target = await realpath(path);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const fds = await readdir(`/proc/${this.child.pid}/fd`).catch(() => [] as string[]);
      for (const fd of fds) {
        const link = await readlink(`/proc/${this.child.pid}/fd/${fd}`).catch(() => '');
        if (link === target) return;
      }
      await sleep(20);
    }
    throw new Error(`logferry did not open ${path} within ${timeoutMs} ms; stderr: ${this.stderr}`);
  }

  waitForCount(n: number, timeoutMs?: number): Promise<void> {
    return this.waitFor((d) => d.length >= n, timeoutMs);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    this.child.kill(signal);
    return this.#exit;
  }

  exited(): Promise<number | null> {
    return this.#exit;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function criLine(i: number, msg: string, stream = 'stdout', tag = 'F'): string {
  const ns = String(i % 1_000_000_000).padStart(9, '0');
  return `2026-11-22T01:02:03.${ns}Z ${stream} ${tag} ${msg}\n`;
}

/** Runs the CLI for `ms`, then SIGKILLs it; resolves with what it wrote on stderr (for log checks). */
export async function stderrOfRun(args: string[], ms: number): Promise<string> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  await sleep(ms);
  child.kill('SIGKILL');
  await new Promise((r) => child.on('close', r));
  return stderr;
}
