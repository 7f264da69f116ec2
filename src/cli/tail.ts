import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { workerCount } from '../config/load.ts';
import { AGENT_OPTIONS } from '../config/options.ts';
import { UsageError } from '../errors.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import type { FormatOption } from '../pipeline/types.ts';
import { hasGlob } from '../source/discovery.ts';
import type { TailerOptions } from '../source/tailer.ts';
import { SourceCounters } from '../telemetry/counters.ts';
import { textLogger } from '../telemetry/logger.ts';
import {
  type RecordOptions,
  RecordTransforms,
  recordOptionProblems,
  recordOptions,
} from '../transform/resolve.ts';
import { WorkerPool } from '../worker/pool.ts';
import {
  createOutput,
  OUTPUT_OPTIONS,
  OUTPUT_USAGE,
  type OutputConfig,
  outputConfig,
} from './output-flags.ts';
import { startProgress } from './progress.ts';
import { argvError, parseBytes, parseChoice, parsePositiveInt } from './values.ts';

export const TAIL_USAGE = `Usage: logferry tail [options] <path|glob>...

Follows files like tail -F and prints one JSON document per log record on stdout.

Options:
  --format <auto|cri|docker|json|text>  input format, detected per file by default (default: auto)
  --from-beginning             read files that exist at start from their beginning
                               (default: from their end, like tail -F; files created later are read whole)
  --once                       read every file to its current end, wait until every record is written,
                               save positions, exit 0
  --positions <file>           checkpoint file: resume exactly where the last run stopped
  --max-line-bytes <size>      longer lines are cut into pieces flagged "split" (default: 256KiB)
  --max-buffer-bytes <size>    encoded documents not yet written/acknowledged before reading pauses (default: 64MiB)
  --max-open-files <n>         files held open at once; quiet files are parked beyond it (default: 1024)
  --poll-interval-ms <n>       how often open files are checked for growth, rotation, truncation (default: 250)
  --host-name <name>           value of host.name (default: this machine's host name)
  --multiline <rule>           join stack traces into one record: none, auto, java, python, go, node,
                               ruby, dotnet (default: none; docs/multiline.md)
  --multiline-flush-ms <ms>    a pending multiline record is emitted after this much silence (default: 1000)
  --parser <name>              message fields: json, logfmt or none (default: json; docs/parsing.md)
  --workers <n|auto>           threads that parse and encode, for many files at once (default: 0, all on the main thread)
  -h, --help                   show this help

${OUTPUT_USAGE.replace('%INDEX%', 'logs-logferry-default')}`;

export const TAIL_DEFAULTS = {
  format: 'auto' as FormatOption,
  maxLineBytes: 256 * 1024,
  maxBufferBytes: 64 * 1024 * 1024,
  maxOpenFiles: 1024,
  pollIntervalMs: 250,
  scanIntervalMs: 1000,
  rotateGraceMs: 2000,
  deletedMaxMs: 5 * 60 * 1000,
  checkpointIntervalMs: 1000,
  forgetAfterMs: 24 * 60 * 60 * 1000,
  readers: 2,
  shutdownTimeoutMs: 25_000,
};

const FORMATS = ['auto', 'cri', 'docker', 'json', 'text'] as const;

export const TAIL_DEFAULT_INDEX = 'logs-logferry-default';

export interface TailCommand {
  patterns: string[];
  once: boolean;
  output: OutputConfig | undefined;
  tailer: TailerOptions;
  maxBufferBytes: number;
  /** multiline and parser choices (the agent's defaults for everything else) */
  records: RecordOptions;
  /** worker threads (0: everything on the main thread) */
  workers: number;
}

/** The agent's defaults for the record options, with `tail`'s flags over them. */
function tailRecordOptions(v: ReturnType<typeof parse>['values']): RecordOptions {
  const values = new Map<string, unknown>(AGENT_OPTIONS.map((s) => [s.key, s.default]));
  if (v.multiline !== undefined) values.set('multiline.default', v.multiline);
  if (v['multiline-flush-ms'] !== undefined) {
    values.set('multiline.flushMs', parsePositiveInt('--multiline-flush-ms', v['multiline-flush-ms']));
  }
  if (v.parser !== undefined) values.set('parse.parser', v.parser);
  const records = recordOptions(<T>(key: string) => values.get(key) as T);
  const problems = recordOptionProblems(records).map((p) =>
    p.replace(/^multiline\.default:/, '--multiline:').replace(/^parse\.parser:/, '--parser:'),
  );
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  return records;
}

/** argv (after `tail`) -> what to run. Throws UsageError on anything a user must fix. */
export function parseTailArgs(argv: string[]): TailCommand | 'help' {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw argvError(err, 'tail');
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (parsed.positionals.length === 0) {
    throw new UsageError(
      'tail needs at least one path or glob, e.g. logferry tail "/var/log/pods/*/*/*.log"',
    );
  }
  const maxLineBytes =
    v['max-line-bytes'] === undefined
      ? TAIL_DEFAULTS.maxLineBytes
      : parseBytes('--max-line-bytes', v['max-line-bytes']);
  const once = v.once === true;
  const hostName = v['host-name'] ?? hostname();
  return {
    patterns: parsed.positionals,
    once,
    records: tailRecordOptions(v),
    // Default 0: a file is processed one chunk at a time, in order, so a few files gain nothing
    // from a thread but the hand-over (measured on one 1M-line file: 6.7 CPU-s without, 12.4 with
    // one worker). LOGFERRY_WORKERS as for the agent (the test suite runs the CLI both ways with it).
    workers:
      v.workers !== undefined
        ? workerCount(v.workers, '--workers')
        : workerCount(process.env.LOGFERRY_WORKERS || '0', 'LOGFERRY_WORKERS'),
    output: outputConfig(v, TAIL_DEFAULT_INDEX, hostName),
    maxBufferBytes:
      v['max-buffer-bytes'] === undefined
        ? TAIL_DEFAULTS.maxBufferBytes
        : parseBytes('--max-buffer-bytes', v['max-buffer-bytes']),
    tailer: {
      patterns: parsed.positionals,
      format: v.format === undefined ? TAIL_DEFAULTS.format : parseChoice('--format', v.format, FORMATS),
      maxLineBytes,
      readChunkBytes: Math.max(1024 * 1024, maxLineBytes + 1),
      startAtEnd: v['from-beginning'] !== true,
      once,
      pollIntervalMs:
        v['poll-interval-ms'] === undefined
          ? TAIL_DEFAULTS.pollIntervalMs
          : parsePositiveInt('--poll-interval-ms', v['poll-interval-ms']),
      scanIntervalMs: TAIL_DEFAULTS.scanIntervalMs,
      rotateGraceMs: TAIL_DEFAULTS.rotateGraceMs,
      deletedMaxMs: TAIL_DEFAULTS.deletedMaxMs,
      maxOpenFiles:
        v['max-open-files'] === undefined
          ? TAIL_DEFAULTS.maxOpenFiles
          : parsePositiveInt('--max-open-files', v['max-open-files']),
      hostName,
      watch: !once,
      readers: TAIL_DEFAULTS.readers,
      positionsFile: v.positions,
      checkpointIntervalMs: TAIL_DEFAULTS.checkpointIntervalMs,
      forgetAfterMs: TAIL_DEFAULTS.forgetAfterMs,
    },
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      format: { type: 'string' },
      'from-beginning': { type: 'boolean' },
      once: { type: 'boolean' },
      positions: { type: 'string' },
      'max-line-bytes': { type: 'string' },
      'max-buffer-bytes': { type: 'string' },
      'max-open-files': { type: 'string' },
      'poll-interval-ms': { type: 'string' },
      'host-name': { type: 'string' },
      multiline: { type: 'string' },
      'multiline-flush-ms': { type: 'string' },
      parser: { type: 'string' },
      workers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...OUTPUT_OPTIONS,
    },
  });
}

/** Plain paths must exist for --once; in follow mode they are waited for, like tail -F. */
async function checkPaths(cmd: TailCommand, warn: (m: string) => void): Promise<void> {
  for (const p of cmd.patterns) {
    if (hasGlob(p)) continue;
    try {
      const st = await stat(p);
      if (st.isDirectory())
        throw new UsageError(`${p} is a directory; give files or a glob such as '${p}/**/*.log'`);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      if (cmd.once) throw new UsageError(`${p}: no such file (--once reads files that exist)`);
      warn(`${p} does not exist yet; waiting for it to appear`);
    }
  }
}

export async function runTail(argv: string[]): Promise<number> {
  const cmd = parseTailArgs(argv);
  if (cmd === 'help') {
    process.stdout.write(TAIL_USAGE);
    return 0;
  }
  const log = textLogger();
  await checkPaths(cmd, (m) => log.warn(m));
  const counters = new SourceCounters(log);
  let fatal: Error | undefined;
  let workerFailed = false;
  let stopRequested: (() => void) | undefined;
  const stopSignal = new Promise<void>((resolve) => {
    stopRequested = resolve;
  });
  const { sink, elasticsearch } = await createOutput(
    cmd.output,
    log,
    (err) => {
      fatal = err;
      stopRequested?.();
    },
    { wrongServerIsUsageError: true },
  );
  const transforms = new RecordTransforms(cmd.records, { warn: (m) => log.warn(m) });
  const work =
    cmd.workers === 0
      ? undefined
      : new WorkerPool({
          workers: cmd.workers,
          records: cmd.records,
          events: counters,
          onWorker: (change) => counters.workerChanged(change),
          onFatal: (err) => {
            fatal = new Error(`records worker failed: ${err.message}`);
            workerFailed = true;
            stopRequested?.();
          },
        });
  const pipeline = new Pipeline(
    { tailer: cmd.tailer, maxBufferBytes: cmd.maxBufferBytes },
    { sink, events: counters, transforms, work },
  );
  const onSignal = () => stopRequested?.();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await pipeline.start();
    if (cmd.once) {
      const files = pipeline.tailer.status();
      if (files.length === 0) throw new UsageError(`no file matches ${cmd.patterns.join(' ')}`);
      const progress = process.stderr.isTTY ? startProgress(pipeline.tailer, counters) : undefined;
      const done = pipeline.runOnce();
      await Promise.race([done, stopSignal]);
      progress?.stop();
    } else {
      await stopSignal;
    }
    await pipeline.stop(TAIL_DEFAULTS.shutdownTimeoutMs);
    if (elasticsearch !== undefined && cmd.once) {
      const c = elasticsearch.counters;
      log.info(
        `shipped: ${c.sent} stored, ${c.duplicates} already stored, ${c.deadLettered} dead-lettered, ${c.dropped} dropped, ${c.queued} undelivered`,
      );
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await work?.close();
  }
  const err = fatal as Error | undefined;
  if (err !== undefined && (err as NodeJS.ErrnoException).code !== 'EPIPE') {
    log.error(workerFailed ? err.message : `cannot write to stdout: ${err.message}`);
    return 1;
  }
  return 0;
}
