import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cpuSeconds, type MeasuredRun, measureChild } from '../lib/child.ts';
import { profileNotes } from '../lib/cpu-profile.ts';
import { fmt, fmtRange, roundSummary, summarize } from '../lib/stats.ts';
import type { BenchOptions, Scenario, ScenarioResult } from '../lib/types.ts';
import { criFile, type WorkloadMeta } from '../lib/workload.ts';

const HOST = 'bench-node';

interface Counts {
  docs: number;
  json: number;
  partial: number;
  /** documents parsed with JSON.parse as a sample (the first of every chunk) */
  sampled: number;
  wallSeconds: number;
}

function tailArgs(path: string): string[] {
  return ['bin/logferry.js', 'tail', '--once', '--from-beginning', '--host-name', HOST, path];
}

/** One timed run: stdout to /dev/null, the child reporting its own CPU time and peak RSS. */
async function timedRun(root: string, path: string, nodeArgs: string[] = []): Promise<MeasuredRun> {
  const run = await measureChild({ args: tailArgs(path), cwd: root, nodeArgs });
  if (run.stderr.trim() !== '') process.stderr.write(`tail-once: logferry wrote to stderr:\n${run.stderr}\n`);
  return run;
}

/**
 * The correctness run: stdout piped here and counted (documents, `json` fields, `partial` flags),
 * without the preload. Counting costs CPU on this side, so the run is not one of the timed ones.
 */
async function countRun(root: string, path: string): Promise<Counts> {
  const jsonNeedle = Buffer.from(',"json":{');
  const partialNeedle = Buffer.from('"flags":["partial"]');
  const counts: Counts = { docs: 0, json: 0, partial: 0, sampled: 0, wallSeconds: 0 };
  let carry: Buffer = Buffer.alloc(0);
  let stderr = '';
  const count = (buf: Buffer, end: number, needle: Buffer) => {
    let n = 0;
    for (let i = buf.indexOf(needle, 0); i !== -1 && i < end; i = buf.indexOf(needle, i + needle.length)) n++;
    return n;
  };
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, tailArgs(path), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    stderr = (stderr + s).slice(-65536);
  });
  child.stdout.on('data', (chunk: Buffer) => {
    // Whole documents only: the bytes after the last '\n' wait for the next chunk, so a needle is
    // never cut in two.
    const buf = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
    const last = buf.lastIndexOf(10);
    if (last === -1) {
      carry = buf;
      return;
    }
    for (let i = buf.indexOf(10); i !== -1 && i <= last; i = buf.indexOf(10, i + 1)) counts.docs++;
    counts.json += count(buf, last, jsonNeedle);
    counts.partial += count(buf, last, partialNeedle);
    const firstEnd = buf.indexOf(10);
    JSON.parse(buf.toString('utf8', 0, firstEnd));
    counts.sampled++;
    carry = Buffer.from(buf.subarray(last + 1));
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  });
  counts.wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (code !== 0) {
    const how = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
    throw new Error(`counting run: logferry ${how}\n--- stderr (last 4 KiB) ---\n${stderr.slice(-4096)}`);
  }
  if (carry.length > 0)
    throw new Error(`counting run: output ends without a newline (${carry.length} bytes)`);
  return counts;
}

function checkCounts(c: Counts, meta: WorkloadMeta): string[] {
  const problems: string[] = [];
  if (c.docs !== meta.records) problems.push(`${c.docs} documents, expected ${meta.records}`);
  if (c.json !== meta.jsonRecords) problems.push(`${c.json} with a json field, expected ${meta.jsonRecords}`);
  if (c.partial !== meta.partialRecords) {
    problems.push(`${c.partial} flagged partial, expected ${meta.partialRecords}`);
  }
  return problems;
}

async function profileRun(root: string, path: string): Promise<string[]> {
  const dir = join(root, 'bench/results/tmp');
  mkdirSync(dir, { recursive: true });
  const name = `tail-once-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`;
  await timedRun(root, path, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', name]);
  const file = join(dir, name);
  if (!existsSync(file)) return [`profile: no ${file} (files there: ${readdirSync(dir).join(', ')})`];
  return profileNotes(file, root, 'main thread');
}

export const tailOnce: Scenario = {
  name: 'tail-once',
  description:
    'the built CLI, `logferry tail --once --from-beginning <file>`, over a generated CRI file, stdout to /dev/null',
  async run(opts: BenchOptions): Promise<ScenarioResult> {
    if (!existsSync(join(opts.root, 'dist/cli/main.js'))) {
      throw new Error('dist/cli/main.js is missing: run `npm run build` (npm run bench does it first)');
    }
    const file = criFile(opts.lines, opts.seed);
    const { meta } = file;

    const counts = await countRun(opts.root, file.path);
    const problems = checkCounts(counts, meta);
    if (problems.length > 0) throw new Error(`tail-once: wrong output: ${problems.join('; ')}`);

    const runs: MeasuredRun[] = [];
    for (let r = 0; r < opts.reps; r++) runs.push(await timedRun(opts.root, file.path));
    // The fixed cost of a run (Node, module loading, discovery, exit): the same command over one line.
    const tiny = criFile(1, opts.seed);
    const baseline: MeasuredRun[] = [];
    for (let r = 0; r < opts.reps; r++) baseline.push(await timedRun(opts.root, tiny.path));

    const mLines = meta.lines / 1e6;
    const wall = summarize(runs.map((r) => r.wallSeconds));
    const linesPerSecond = summarize(runs.map((r) => meta.lines / r.wallSeconds));
    const mbPerSecond = summarize(runs.map((r) => meta.bytes / 1e6 / r.wallSeconds));
    const cpu = summarize(runs.map((r) => cpuSeconds(r.usage)));
    const userSeconds = summarize(runs.map((r) => r.usage.resourceUsage.userCPUTime / 1e6));
    const systemSeconds = summarize(runs.map((r) => r.usage.resourceUsage.systemCPUTime / 1e6));
    const cpuPerMillion = summarize(runs.map((r) => cpuSeconds(r.usage) / mLines));
    const cores = summarize(runs.map((r) => cpuSeconds(r.usage) / r.wallSeconds));
    const peakRssMiB = summarize(runs.map((r) => r.usage.resourceUsage.maxRSS / 1024));
    const baseCpu = summarize(baseline.map((r) => cpuSeconds(r.usage)));
    const baseRss = summarize(baseline.map((r) => r.usage.resourceUsage.maxRSS / 1024));
    const baseWall = summarize(baseline.map((r) => r.wallSeconds));
    const heapMiB = summarize(runs.map((r) => r.usage.heap.totalHeapSize / 2 ** 20));

    const n = (x: number) => x.toLocaleString('en-US');
    const notes = [
      `workload: ${file.path}${file.cached ? ' (cached)' : ''}`,
      `  ${n(meta.lines)} lines, ${fmt(meta.bytes / 1e6)} MB (${fmt(meta.bytes / meta.lines)} B/line), ${n(meta.records)} records: ${n(meta.jsonRecords)} JSON, ${n(meta.partialRecords)} joined from P/F, ${n(meta.traceLines)} stack-trace lines`,
      `correctness: ${n(counts.docs)} documents (expected ${n(meta.records)}), ${n(counts.json)} with json, ${n(counts.partial)} partial, ${n(counts.sampled)} sampled documents parse: OK`,
      `  the counting run (stdout piped to this process, not timed) took ${fmt(counts.wallSeconds)} s wall`,
      `fixed cost, the same command over a 1-line file: ${fmtRange(baseCpu)} CPU s, ${fmtRange(baseRss)} MiB peak RSS, ${fmtRange(baseWall)} s wall`,
      `V8 heap at exit: ${fmtRange(heapMiB)} MiB`,
      `${runs.length} timed run(s); figures are median (min–max); MB = 10^6 bytes of input; CPU = user + sys of the logferry process, all threads`,
    ];
    if (opts.profile) notes.push(...(await profileRun(opts.root, file.path)));

    const row = (name: string, s: ReturnType<typeof summarize>, digits = 3) => [name, fmtRange(s, digits)];
    return {
      params: {
        lines: meta.lines,
        bytes: meta.bytes,
        records: meta.records,
        seed: opts.seed,
        generatorVersion: meta.generatorVersion,
        reps: opts.reps,
        command: `node ${tailArgs('<file>').join(' ')}`,
        stdout: '/dev/null',
      },
      figures: {
        linesPerSecond: roundSummary(linesPerSecond),
        mbPerSecond: roundSummary(mbPerSecond),
        wallSeconds: roundSummary(wall),
        cpuSeconds: roundSummary(cpu),
        userCpuSeconds: roundSummary(userSeconds),
        systemCpuSeconds: roundSummary(systemSeconds),
        cpuSecondsPerMillionLines: roundSummary(cpuPerMillion),
        coresUsed: roundSummary(cores),
        peakRssMiB: roundSummary(peakRssMiB),
        documents: counts.docs,
        countRunWallSeconds: Number(counts.wallSeconds.toPrecision(4)),
        heapAtExitMiB: roundSummary(heapMiB),
        fixedCost: {
          cpuSeconds: roundSummary(baseCpu),
          peakRssMiB: roundSummary(baseRss),
          wallSeconds: roundSummary(baseWall),
        },
      },
      table: {
        columns: ['figure', 'median (min–max)'],
        rows: [
          row('lines/s', linesPerSecond),
          row('MB/s', mbPerSecond),
          row('wall s', wall),
          row('CPU s (user+sys)', cpu),
          row('  user s', userSeconds),
          row('  sys s', systemSeconds),
          row('CPU s per million lines', cpuPerMillion),
          row('cores used (CPU/wall)', cores),
          row('peak RSS MiB', peakRssMiB),
        ],
      },
      notes,
    };
  },
};
