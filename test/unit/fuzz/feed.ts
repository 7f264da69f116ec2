import { Buffer } from 'node:buffer';
import { documentContext } from '../../../src/encode/document.ts';
import { FileProcessor, type ProcessResult } from '../../../src/parse/file-processor.ts';
import type { FormatOption } from '../../../src/pipeline/types.ts';

export const PATH = '/var/log/pods/ns_pod_uid/app/0.log';
export const HOST = 'node-1';

/** One document of a body, parsed; the shape every document must have. */
export interface Doc {
  '@timestamp': string;
  message: string;
  stream?: 'stdout' | 'stderr';
  log: { file: { path: string }; offset: number; flags?: string[]; part?: number };
  host: { name: string };
  json?: Record<string, unknown>;
  error?: { type: string; message: string };
}

export interface Step {
  base: number;
  len: number;
  final: boolean;
  result: ProcessResult;
}

export interface Fed {
  docs: Doc[];
  steps: Step[];
  events: { linesRead: number; parseErrors: string[]; lineSplits: number };
}

export function newProcessor(
  format: FormatOption,
  maxLineBytes: number,
  events: Fed['events'],
): FileProcessor {
  return new FileProcessor(
    documentContext(PATH, HOST),
    { format, maxLineBytes },
    {
      linesRead: (n) => {
        events.linesRead += n;
      },
      parseError: (kind) => {
        events.parseErrors.push(kind);
      },
      lineSplit: () => {
        events.lineSplits++;
      },
      recordsFiltered: () => {},
      recordsTruncated: () => {},
    },
  );
}

/**
 * Parses a body into its documents, checking the framing on the way: `ends` are the byte ends of
 * the documents, each document is one line of JSON, and there is one offset per document.
 */
export function bodyDocs(result: ProcessResult): Doc[] {
  const { body, ends, offsets } = result;
  if (ends.length !== offsets.length) throw new Error(`ends ${ends.length} != offsets ${offsets.length}`);
  if (ends.length === 0) {
    if (body.length !== 0) throw new Error('a body without documents');
    return [];
  }
  if (ends.at(-1) !== body.length) throw new Error(`last end ${ends.at(-1)} != body length ${body.length}`);
  const docs: Doc[] = [];
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    const end = ends[i]!;
    if (body[end - 1] !== 0x0a) throw new Error(`document ${i} does not end in a newline`);
    const text = body.toString('utf8', start, end - 1);
    if (text.includes('\n')) throw new Error(`document ${i} holds a raw newline`);
    const doc = JSON.parse(text) as Doc;
    checkShape(doc, i);
    if (doc.log.offset !== offsets[i])
      throw new Error(`document ${i}: offset ${doc.log.offset} != ${offsets[i]}`);
    docs.push(doc);
    start = end;
  }
  return docs;
}

function checkShape(doc: Doc, i: number): void {
  const fail = (what: string): never => {
    throw new Error(`document ${i}: ${what}: ${JSON.stringify(doc).slice(0, 300)}`);
  };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail('not an object');
  if (typeof doc['@timestamp'] !== 'string') fail('@timestamp');
  if (typeof doc.message !== 'string') fail('message');
  if (doc.stream !== undefined && doc.stream !== 'stdout' && doc.stream !== 'stderr') fail('stream');
  if (doc.log?.file?.path !== PATH) fail('log.file.path');
  if (!Number.isSafeInteger(doc.log.offset) || doc.log.offset < 0) fail('log.offset');
  if (doc.host?.name !== HOST) fail('host.name');
  const flags = doc.log.flags ?? [];
  if (doc.log.flags !== undefined && flags.length === 0) fail('empty flags');
  if (flags.includes('split') !== (doc.log.part !== undefined))
    fail('part without split or split without part');
  if (flags.includes('parse_error') !== (doc.error !== undefined)) fail('parse_error without error');
  if (
    doc.json !== undefined &&
    (typeof doc.json !== 'object' || doc.json === null || Array.isArray(doc.json))
  ) {
    fail('json is not an object');
  }
}

/** The whole input in one call, as for a file that is complete when first read. */
export function feedWhole(input: Buffer, format: FormatOption, maxLineBytes: number): Fed {
  return feedChunked(input, format, maxLineBytes, [input.length], input.length + 1);
}

/**
 * A simulated tail. The file grows by `growth` bytes at a time (cycled; the last read sees all of
 * it). Each read asks for up to `readBytes` bytes from where the previous one stopped consuming,
 * as src/source/tailer.ts does, and the read after the file stopped growing is final. A reader
 * that makes no progress on a full read would spin: that is an error here.
 */
export function feedChunked(
  input: Buffer,
  format: FormatOption,
  maxLineBytes: number,
  growth: number[],
  readBytes: number,
): Fed {
  const events = { linesRead: 0, parseErrors: [] as string[], lineSplits: 0 };
  const p = newProcessor(format, maxLineBytes, events);
  const steps: Step[] = [];
  const docs: Doc[] = [];
  const buf = Buffer.alloc(readBytes);
  let size = 0;
  let g = 0;
  let pos = 0;
  for (let guard = 0; ; guard++) {
    if (guard > 4 * input.length + 1000) throw new Error('the reader makes no progress');
    if (size < input.length) size = Math.min(input.length, size + Math.max(1, growth[g++ % growth.length]!));
    const grown = size === input.length;
    const len = Math.min(readBytes, size - pos);
    input.copy(buf, 0, pos, pos + len);
    // garbage past `len`, as in a reused read buffer: the processor must not look at it
    buf.fill(0x80, len);
    const full = len === readBytes;
    const final = grown && !full;
    const result = p.process(buf, len, pos, final);
    steps.push({ base: pos, len, final, result });
    if (result.consumed < 0 || result.consumed > len)
      throw new Error(`consumed ${result.consumed} of ${len}`);
    docs.push(...bodyDocs(result));
    pos += result.consumed;
    if (final) break;
  }
  return { docs, steps, events };
}
