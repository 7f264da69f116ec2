import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { dirname } from 'node:path';
import type { ScenarioResult, Table } from './types.ts';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  availableParallelism: number;
  totalMemoryBytes: number;
  node: string;
  v8: string;
  platform: string;
  arch: string;
  osRelease: string;
  /**
   * 1, 5 and 15 minute load averages just before the scenario started: other work on the machine
   * (a test suite, a local Elasticsearch) slows every figure, most on few cores.
   */
  loadAverage: number[];
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    availableParallelism: availableParallelism(),
    totalMemoryBytes: totalmem(),
    node: process.version,
    v8: process.versions.v8,
    platform: process.platform,
    arch: process.arch,
    osRelease: release(),
    loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
  };
}

export interface GitInfo {
  commit: string | undefined;
  /** tracked files differ from the commit: the figures are for the working tree, not `commit` */
  dirty: boolean | undefined;
}

export function gitInfo(root: string): GitInfo {
  const git = (args: string[]) =>
    execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  let commit: string | undefined;
  let dirty: boolean | undefined;
  try {
    commit = git(['rev-parse', '--short', 'HEAD']);
  } catch {
    commit = undefined;
  }
  try {
    dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
  } catch {
    dirty = undefined;
  }
  return { commit, dirty };
}

export function printTable(title: string, table: Table, notes: string[]): void {
  const all = [table.columns, ...table.rows];
  const widths = table.columns.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  // the first column is a label: left-aligned; figures are right-aligned
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [`\n== ${title}`, line(table.columns), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of table.rows) out.push(line(r));
  for (const n of notes) out.push(`  ${n}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

export interface ResultLine {
  scenario: string;
  timestamp: string;
  git: GitInfo;
  machine: MachineInfo;
  params: Record<string, unknown>;
  figures: Record<string, unknown>;
}

export function appendResult(
  file: string,
  scenario: string,
  git: GitInfo,
  machine: MachineInfo,
  r: ScenarioResult,
): void {
  const line: ResultLine = {
    scenario,
    timestamp: new Date().toISOString(),
    git,
    machine,
    params: r.params,
    figures: r.figures,
  };
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(line)}\n`);
}
