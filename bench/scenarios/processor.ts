import { documentContext } from '../../src/encode/document.ts';
import { FileProcessor, IGNORED_EVENTS } from '../../src/parse/file-processor.ts';
import { BENCH_HOST, BENCH_PATH, type Corpus, loadCorpus } from '../lib/corpus.ts';
import { MICRO_COLUMNS, type MicroRow, microFigures, microTableRow, timePasses } from '../lib/micro.ts';
import type { BenchOptions, Scenario, ScenarioResult } from '../lib/types.ts';

/** As the tailer reads: max(1 MiB, max-line-bytes + 1) with the default 256 KiB max-line-bytes. */
const CHUNK_BYTES = 1024 * 1024;
const MAX_LINE_BYTES = 256 * 1024;
const WARMUP_BYTES = 48 * 1024 * 1024;

const noEvents = IGNORED_EVENTS;

/**
 * Feeds `buf[0, limit)` to a fresh FileProcessor the way the tailer does: each read copies the
 * next chunk from the first unconsumed byte into one reused buffer. Returns documents and NDJSON bytes.
 */
function feed(corpus: Corpus, limit: number): { docs: number; bytes: number } {
  const proc = new FileProcessor(
    documentContext(BENCH_PATH, BENCH_HOST),
    { format: 'auto', maxLineBytes: MAX_LINE_BYTES },
    noEvents,
  );
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let pos = 0;
  let docs = 0;
  let bytes = 0;
  while (pos < limit) {
    const len = corpus.buf.copy(chunk, 0, pos, Math.min(limit, pos + CHUNK_BYTES));
    const res = proc.process(chunk, len, pos, pos + len >= limit);
    docs += res.offsets.length;
    bytes += res.body.length;
    if (res.consumed === 0) throw new Error(`processor: nothing consumed at offset ${pos}`);
    pos += res.consumed;
  }
  return { docs, bytes };
}

export const processorScenario: Scenario = {
  name: 'processor',
  description:
    'FileProcessor.process (src/parse/file-processor.ts) over the workload in 1 MiB reads: split, parse, join, JSON, encode',
  async run(opts: BenchOptions): Promise<ScenarioResult> {
    const corpus = loadCorpus(opts.lines, opts.seed);
    const { meta } = corpus.file;
    const check = feed(corpus, corpus.buf.length);
    if (check.docs !== meta.records) {
      throw new Error(`processor: ${check.docs} documents, the generator wrote ${meta.records} records`);
    }
    // a warm-up prefix that ends on a line boundary
    const warmEnd =
      corpus.buf.length <= WARMUP_BYTES ? corpus.buf.length : corpus.buf.indexOf(10, WARMUP_BYTES) + 1;
    const row: MicroRow = {
      name: 'FileProcessor.process',
      times: timePasses(
        () => feed(corpus, corpus.buf.length).docs,
        () => feed(corpus, warmEnd).docs,
        opts.reps,
      ),
      lines: meta.lines,
      bytes: meta.bytes,
    };
    return {
      params: {
        lines: meta.lines,
        records: meta.records,
        bytes: meta.bytes,
        seed: opts.seed,
        reps: opts.reps,
        chunkBytes: CHUNK_BYTES,
        format: 'auto',
      },
      figures: { process: microFigures(row), outputBytes: check.bytes, documents: check.docs },
      table: { columns: MICRO_COLUMNS, rows: [microTableRow(row)] },
      notes: [
        `${meta.lines.toLocaleString('en-US')} lines -> ${check.docs.toLocaleString('en-US')} documents, ${(check.bytes / 1e6).toFixed(0)} MB of NDJSON (${(check.bytes / check.docs).toFixed(0)} bytes per document)`,
        'in-memory input, no I/O, no sink: the per-line CPU floor of the data plane as it is today',
      ],
    };
  },
};
