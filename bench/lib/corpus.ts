import { readFileSync } from 'node:fs';
import { parseCri } from '../../src/parse/cri.ts';
import { type LogRecord, RecordFlag } from '../../src/parse/types.ts';
import { type CriFile, criFile } from './workload.ts';

/** A generated CRI file held in memory with its line boundaries, for in-process micro-benchmarks. */
export interface Corpus {
  file: CriFile;
  buf: Buffer;
  /** first byte of each line */
  starts: Float64Array;
  /** end of each line, excluding its '\n' */
  ends: Float64Array;
}

/** A path as kubelet writes it, so per-file document text has its real length. */
export const BENCH_PATH =
  '/var/log/pods/shop_checkout-7d9f8b6c5-x2k4q_0f3c2a91-5b7e-4d2a-9c1e-6a8b4f2d1e03/checkout/0.log';
export const BENCH_HOST = 'ip-10-0-12-34.eu-west-1.compute.internal';

let loaded: { key: string; corpus: Corpus } | undefined;
let recordsOf: { corpus: Corpus; records: LogRecord[] } | undefined;

/** Generates (or reuses) the workload and reads it into memory; one corpus is kept per process. */
export function loadCorpus(lines: number, seed: number): Corpus {
  const key = `${lines}/${seed}`;
  if (loaded?.key === key) return loaded.corpus;
  loaded = undefined;
  recordsOf = undefined;
  const file = criFile(lines, seed);
  const buf = readFileSync(file.path);
  const n = file.meta.lines;
  const starts = new Float64Array(n);
  const ends = new Float64Array(n);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const nl = buf.indexOf(10, pos);
    if (nl === -1) throw new Error(`${file.path}: ${i} lines, expected ${n}`);
    starts[i] = pos;
    ends[i] = nl;
    pos = nl + 1;
  }
  const corpus = { file, buf, starts, ends };
  loaded = { key, corpus };
  return corpus;
}

/**
 * The corpus as the records the processor would emit: CRI lines parsed, `P` fragments joined (as
 * bytes, per stream) into the `F` line that ends them. Built here rather than through the
 * processor so the encode benchmark measures encoding alone.
 */
export function corpusRecords(corpus: Corpus): LogRecord[] {
  if (recordsOf?.corpus === corpus) return recordsOf.records;
  const { buf, starts, ends } = corpus;
  const records: LogRecord[] = [];
  const pending = new Map<string, { offset: number; time: string | undefined; chunks: Buffer[] }>();
  for (let i = 0; i < starts.length; i++) {
    const start = starts[i]!;
    const end = ends[i]!;
    const line = parseCri(buf, start, end);
    if (line.error !== undefined) throw new Error(`line ${i + 1}: ${line.error}`);
    const key = line.stream ?? '';
    const p = pending.get(key);
    const bytes = buf.subarray(line.messageStart, line.messageEnd);
    if (line.partial) {
      if (p === undefined) pending.set(key, { offset: start, time: line.time, chunks: [bytes] });
      else p.chunks.push(bytes);
      continue;
    }
    if (p === undefined) {
      records.push({
        offset: start,
        time: line.time,
        stream: line.stream,
        message: line.message,
        flags: 0,
        error: undefined,
        part: 0,
      });
      continue;
    }
    pending.delete(key);
    p.chunks.push(bytes);
    records.push({
      offset: p.offset,
      time: p.time,
      stream: line.stream,
      message: Buffer.concat(p.chunks).toString('utf8'),
      flags: RecordFlag.Partial,
      error: undefined,
      part: 0,
    });
  }
  if (records.length !== corpus.file.meta.records) {
    throw new Error(`corpus: ${records.length} records, the generator wrote ${corpus.file.meta.records}`);
  }
  recordsOf = { corpus, records };
  return records;
}

/** Lets the records be collected, so that they do not slow the garbage collector in later scenarios. */
export function releaseRecords(): void {
  recordsOf = undefined;
}
