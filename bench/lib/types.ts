import type { FluentBit } from './fluent-bit.ts';

/** Options every scenario gets from the runner (bench/run.ts). */
export interface BenchOptions {
  /** CRI lines in the generated workload */
  lines: number;
  /** timed repetitions; the median is the headline */
  reps: number;
  /** workload seed: the same seed gives the same bytes */
  seed: number;
  /** also record a CPU profile where the scenario supports it */
  profile: boolean;
  /** repository root (where bin/ and dist/ are) */
  root: string;
  /**
   * agent scenarios: the CLI script to run instead of bin/logferry.js (which needs dist/), e.g.
   * bench/lib/cli-source.ts (src/ directly) or another build's bin/logferry.js
   */
  cli: string | undefined;
  /** steady: seconds of writing; idle: the quiet window (undefined: the scenario's default, 60 s) */
  duration: number | undefined;
  /** steady: lines per second over all containers (undefined: 10,000) */
  rate: number | undefined;
  /** `--compare fluent-bit` found the reference agent: the scenarios that can run it do */
  fluentBit: FluentBit | undefined;
}

export interface Table {
  columns: string[];
  rows: string[][];
}

export interface ScenarioResult {
  /** what was measured with what: goes into results.jsonl */
  params: Record<string, unknown>;
  /** the numbers: goes into results.jsonl */
  figures: Record<string, unknown>;
  table: Table;
  /** printed under the table */
  notes: string[];
}

export interface Scenario {
  name: string;
  description: string;
  run(opts: BenchOptions): Promise<ScenarioResult>;
}
