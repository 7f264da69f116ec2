import { isUtf8 } from 'node:buffer';
import {
  ACTION_ID_END,
  type DocumentContext,
  encodeDocument,
  encodeDocumentHead,
  mayCarryJson,
} from '../encode/document.ts';
import type { Format, FormatOption } from '../pipeline/types.ts';
import type { ContinuationState } from '../source/ack-tracker.ts';
import { limitMessage } from '../transform/filters.ts';
import type { FileTransform, RecordGrouper, SkipEntry, StructuredFields } from '../transform/types.ts';
import { bodyPool, detachedCopy } from './body-pool.ts';
import { detectFormat, parserFor } from './detect.ts';
import { jsonObjectText } from './json-message.ts';
import { MultilineGrouper } from './multiline/grouper.ts';
import { PartialJoiner } from './partial-joiner.ts';
import { type LineParser, type LogRecord, RecordFlag } from './types.ts';

export interface ProcessorOptions {
  format: FormatOption;
  /** a physical line longer than this is cut into pieces flagged `split` */
  maxLineBytes: number;
}

export interface ProcessorEvents {
  linesRead(n: number): void;
  parseError(kind: string): void;
  lineSplit(): void;
  /** records dropped by a filter */
  recordsFiltered(n: number): void;
  /** messages cut to the record-size limit */
  recordsTruncated(n: number): void;
}

export interface ProcessResult {
  /** the records as NDJSON (see RecordBatch); empty when there are none */
  body: Buffer;
  ends: number[];
  offsets: number[];
  /** each document follows the context's action line (see RecordBatch.framed) */
  framed: boolean;
  /** bytes of the chunk consumed; the next read starts at `base + consumed` */
  consumed: number;
  /** file offset a checkpoint may move to once these documents are acknowledged */
  safeEnd: number;
  /** set when `safeEnd` falls inside a line that was cut into pieces */
  continuation: ContinuationState | undefined;
}

const EMPTY = Buffer.alloc(0);

/** Records parsed before they go on to the grouper and the encoder (see process). */
const RECORDS_PER_STEP = 256;

/** One chunk's body while it is written (FileProcessor#beginEncode). */
interface Encoding {
  buf: Buffer;
  pos: number;
  ends: number[];
  offsets: number[];
  /** bytes a document needs besides its head text */
  fixed: number;
  fallbackTime: string;
  /** filters, limits or throttling apply: whole documents, built record by record */
  slow: boolean;
  filtered: number;
  truncated: number;
}

/** Events nobody counts (benchmarks, tests that look at documents only). */
export const IGNORED_EVENTS: ProcessorEvents = {
  linesRead() {},
  parseError() {},
  lineSplit() {},
  recordsFiltered() {},
  recordsTruncated() {},
};

/** The default transform: messages that are JSON objects become fields (parse/json-message.ts). */
const JSON_FIELDS: FileTransform = {
  parser: (message) => {
    const text = jsonObjectText(message);
    return text === undefined ? undefined : { text };
  },
};

/** Skip entries read back from a checkpoint, checked: a corrupt file must not break reading. */
function validSkip(skip: unknown): SkipEntry[] | undefined {
  if (!Array.isArray(skip)) return undefined;
  const ok = skip.every(
    (e) =>
      typeof e === 'object' &&
      e !== null &&
      Number.isSafeInteger((e as SkipEntry).through) &&
      [undefined, 'stdout', 'stderr'].includes((e as SkipEntry).stream),
  );
  return ok && skip.length > 0 ? (skip as SkipEntry[]) : undefined;
}

/** Backs off from `end` to the start of a UTF-8 sequence so a cut never splits a character. */
function utf8Boundary(buf: Buffer, start: number, end: number): number {
  // Only bytes before `end` are known (the cut may fall at the end of a read): find the lead byte of
  // the last character starting before `end` and cut before it when it does not fit.
  let i = end - 1;
  const min = Math.max(start, end - 4);
  while (i > min && (buf[i]! & 0xc0) === 0x80) i--;
  const lead = buf[i]!;
  const length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return i > start && i + length > end ? i : end;
}

/**
 * Everything that is per file and order-dependent in one place: splitting chunks into lines,
 * format detection, partial-line joining and encoding. It sees one file's chunks in order; that is
 * also what would let a file be pinned to a worker thread later (docs/DESIGN.md).
 */
export class FileProcessor {
  #format: Format | undefined;
  #parser: LineParser | undefined;
  readonly #joiner: PartialJoiner;
  readonly #opts: ProcessorOptions;
  readonly #events: ProcessorEvents;
  #ctx: DocumentContext;
  /** `ctx.extra` and the closing brace as UTF-8, encoded once per file, copied into each document */
  #tail: Buffer;
  /** `ctx.action`'s head as UTF-8, written before each document */
  #action: Buffer | undefined;
  #actionWithOffset = false;
  /** bytes of documents (with their action lines) per byte read, of this file so far: sizes bodies */
  #outputRatio = 4;
  #cont: ContinuationState | undefined;
  readonly #records: LogRecord[] = [];
  readonly #grouped: LogRecord[] = [];
  #transform: FileTransform = JSON_FIELDS;
  /**
   * The transform's grouper, or `#passThrough` when it has none: either way, records go through a
   * grouper, whose bookkeeping makes restarts exact (the checkpoint's `skip` entries).
   */
  #grouper: RecordGrouper;
  /** the grouper when no multiline rule applies: every record at once, restarts tracked */
  readonly #passThrough: MultilineGrouper;
  #started = false;
  /** skip entries from the checkpoint, for every grouper the transform brings */
  #resumeSkip: SkipEntry[] | undefined;

  constructor(
    ctx: DocumentContext,
    opts: ProcessorOptions,
    events: ProcessorEvents,
    resume?: { format?: Format | undefined; continuation?: ContinuationState | undefined },
  ) {
    this.#ctx = ctx;
    this.#tail = tailBytes(ctx);
    this.#action = actionBytes(ctx);
    this.#actionWithOffset = ctx.action?.withOffset ?? false;
    this.#opts = opts;
    this.#events = events;
    this.#joiner = new PartialJoiner(opts.maxLineBytes);
    const format = opts.format === 'auto' ? resume?.format : opts.format;
    if (format !== undefined) this.#setFormat(format);
    const cont = resume?.continuation;
    if (cont !== undefined && cont.part > 0)
      this.#cont = { part: cont.part, time: cont.time, stream: cont.stream };
    this.#resumeSkip = validSkip(cont?.skip);
    this.#passThrough = MultilineGrouper.passThrough();
    if (this.#resumeSkip !== undefined) this.#passThrough.skipThrough(this.#resumeSkip);
    this.#grouper = this.#passThrough;
  }

  /**
   * What happens to records between parsing and encoding (multiline, parsing, filters, limits);
   * set before the first read. The default parses JSON-object messages into fields.
   */
  set transform(t: FileTransform) {
    this.#transform = t;
    const current = this.#grouper;
    // once reading started, a multiline grouper (and the group it may hold) is kept
    const next = this.#started && current !== this.#passThrough ? current : (t.grouper ?? this.#passThrough);
    if (next === current) return;
    this.#grouper = next;
    if (this.#started) {
      // A rule from metadata that came after the first reads: what the pass-through emitted must
      // still be skipped after a restart.
      next.skipThrough(current.resumePoint(0).skip);
    } else if (this.#resumeSkip !== undefined) {
      // Every new grouper gets the checkpoint's skip entries, not only the first one: the tailer
      // sets a transform when it opens the file and again once the pod's metadata is known.
      next.skipThrough(this.#resumeSkip);
    }
  }

  /** A multiline group is waiting for more lines (see process's `flushGroups`). */
  get hasPendingGroups(): boolean {
    return this.#grouper.hasPending();
  }

  get format(): Format | undefined {
    return this.#format;
  }

  set context(ctx: DocumentContext) {
    this.#ctx = ctx;
    this.#tail = tailBytes(ctx);
    this.#action = actionBytes(ctx);
    this.#actionWithOffset = ctx.action?.withOffset ?? false;
  }

  /** A format chosen from outside (an annotation); only before anything was read. */
  setFormat(format: Format): void {
    this.#setFormat(format);
  }

  #setFormat(format: Format): void {
    this.#format = format;
    this.#parser = parserFor(format);
  }

  /** Forget partial state (the file was truncated and is read again from 0). */
  reset(): void {
    this.#joiner.reset();
    this.#grouper.reset();
    this.#cont = undefined;
    this.#resumeSkip = undefined;
    if (this.#opts.format === 'auto') {
      this.#format = undefined;
      this.#parser = undefined;
    }
  }

  /**
   * Processes `buf[0, len)`, which holds the file's bytes from offset `base`. Complete lines become
   * records; an incomplete last line is left unconsumed (re-read with the next chunk) unless `final`
   * says the file will never grow again, in which case it and any pending partial record are
   * emitted flagged `incomplete`. `flushGroups` emits pending multiline groups (the file was
   * silent for the flush interval); `final` does too.
   */
  process(buf: Buffer, len: number, base: number, final: boolean, flushGroups = false): ProcessResult {
    this.#started = true;
    const view = len === buf.length ? buf : buf.subarray(0, len);
    const max = this.#opts.maxLineBytes;
    const records = this.#records;
    records.length = 0;
    const enc = this.#beginEncode(len);
    let pos = 0;
    let lines = 0;
    while (pos < len) {
      // records go on to the grouper and the encoder a few at a time: a whole chunk's records kept
      // until its end outlived the young generation (promoted, then marked by full GCs)
      if (records.length >= RECORDS_PER_STEP) this.#step(enc, records, false);
      const nl = view.indexOf(10, pos);
      const lineEnd = nl === -1 ? len : nl;
      const lineLen = lineEnd - pos;
      // a read buffer holds at least max + 1 bytes, so a line of exactly max bytes whose newline
      // is not read yet is complete on the next read: only a longer one is cut
      if (lineLen > max) {
        const cut = utf8Boundary(view, pos, pos + max);
        this.#piece(view, pos, cut, base, 0);
        pos = cut;
        continue;
      }
      if (nl === -1) {
        if (!final) break;
        if (this.#cont !== undefined) this.#piece(view, pos, len, base, RecordFlag.Incomplete, true);
        else this.#line(view, pos, len, base, RecordFlag.Incomplete);
        lines++;
        pos = len;
        break;
      }
      if (this.#cont !== undefined) this.#piece(view, pos, lineEnd, base, 0, true);
      else this.#line(view, pos, lineEnd, base, 0);
      lines++;
      pos = nl + 1;
    }
    if (final) this.#joiner.drain(records);
    if (lines > 0) this.#events.linesRead(lines);

    let safeEnd = base + pos;
    let continuation: ContinuationState | undefined =
      this.#cont === undefined ? undefined : { ...this.#cont };
    const pendingStart = this.#joiner.pendingStart();
    if (pendingStart !== undefined && pendingStart < safeEnd) {
      safeEnd = pendingStart;
      continuation = undefined;
    }
    // The grouper (a pass-through without a multiline rule) says what a restart at `safeEnd` must
    // skip: records of another stream than the one holding `safeEnd` back may have been sent with
    // lines after it (a P/F record, a group).
    this.#step(enc, records, final || flushGroups);
    const point = this.#grouper.resumePoint(safeEnd);
    if (point.offset < safeEnd) {
      safeEnd = point.offset;
      continuation = undefined;
    }
    if (point.skip.length > 0) {
      continuation = {
        ...(continuation ?? { part: 0, time: undefined, stream: undefined }),
        skip: point.skip,
      };
    }
    return { ...this.#finishEncode(enc, base + pos - 1, len), consumed: pos, safeEnd, continuation };
  }

  #detect(buf: Buffer, start: number, end: number): LineParser {
    if (this.#parser === undefined) this.#setFormat(detectFormat(buf, start, end));
    return this.#parser!;
  }

  #line(buf: Buffer, start: number, end: number, base: number, extraFlags: number): void {
    const parsed = this.#detect(buf, start, end)(buf, start, end);
    if (parsed.error !== undefined) this.#events.parseError(this.#format!);
    if (extraFlags !== 0 && parsed.error === undefined) {
      // an incomplete last line is not joined: its file ends here
      this.#records.push({
        offset: base + start,
        time: parsed.time,
        stream: parsed.stream,
        message: parsed.message,
        flags: extraFlags | (parsed.invalidUtf8 ? RecordFlag.InvalidUtf8 : 0),
        error: undefined,
        part: 0,
      });
      return;
    }
    this.#joiner.push(parsed, base + start, this.#records, buf);
    if (extraFlags !== 0) this.#records[this.#records.length - 1]!.flags |= extraFlags;
  }

  /**
   * One piece of a line longer than max-line-bytes. The first piece is parsed like a line (it has
   * the CRI/docker prefix); the following ones are raw text that inherit its time and stream.
   */
  #piece(buf: Buffer, start: number, end: number, base: number, extraFlags: number, last = false): void {
    this.#events.lineSplit();
    const cont = this.#cont;
    if (cont === undefined) {
      const parsed = this.#detect(buf, start, end)(buf, start, end);
      if (parsed.error !== undefined) this.#events.parseError(this.#format!);
      this.#records.push({
        offset: base + start,
        time: parsed.time,
        stream: parsed.stream,
        message: parsed.message,
        flags:
          RecordFlag.Split |
          extraFlags |
          (parsed.error !== undefined ? RecordFlag.ParseError : 0) |
          (parsed.invalidUtf8 ? RecordFlag.InvalidUtf8 : 0),
        error: parsed.error,
        part: 0,
      });
      this.#cont = { part: 1, time: parsed.time, stream: parsed.stream };
      return;
    }
    this.#records.push({
      offset: base + start,
      time: cont.time,
      stream: cont.stream,
      message: buf.toString('utf8', start, end),
      flags: RecordFlag.Split | extraFlags | (isUtf8(buf.subarray(start, end)) ? 0 : RecordFlag.InvalidUtf8),
      error: undefined,
      part: cont.part,
    });
    if (last) this.#cont = undefined;
    else this.#cont = { part: cont.part + 1, time: cont.time, stream: cont.stream };
  }

  /** Records through the grouper (flushing it when asked), and what comes out into the body. */
  #step(enc: Encoding, records: LogRecord[], flushGroups: boolean): void {
    const grouper = this.#grouper;
    const out = this.#grouped;
    out.length = 0;
    for (let i = 0; i < records.length; i++) grouper.push(records[i]!, out);
    records.length = 0;
    if (flushGroups) grouper.flush(out);
    for (let i = 0; i < out.length; i++) this.#encodeRecord(enc, out[i]!);
    out.length = 0;
  }

  /**
   * The start of a chunk's NDJSON body. Each document is written after the sink's action line (when
   * the context has one) as soon as it is built, and dies young.
   *
   * `write` returns the bytes written, so no document is measured apart; it cuts a document short
   * silently when it does not fit, so one is written only where 3 bytes per UTF-16 unit fit (the
   * most UTF-8 takes). The buffer is sized from the chunk's length and this file's ratio of output
   * to input so far; it grows (one copy) when that was too small and is copied out exactly when more
   * than a quarter is unused.
   */
  #beginEncode(len: number): Encoding {
    const action = this.#action;
    const t = this.#transform;
    return {
      buf: bodyPool.take(Math.ceil(len * this.#outputRatio * 1.05) + 16_384),
      pos: 0,
      ends: [],
      offsets: [],
      // per document besides its head: the tail, the action line and at most 16 offset digits
      fixed: this.#tail.length + (action === undefined ? 0 : action.length + ACTION_ID_END.length + 16) + 1,
      fallbackTime: `"${new Date().toISOString()}"`,
      slow: t.filter !== undefined || t.maxRecordBytes !== undefined || t.throttle !== undefined,
      filtered: 0,
      truncated: 0,
    };
  }

  #encodeRecord(enc: Encoding, record: LogRecord): void {
    let rec = record;
    // the format is known once the chunk's first line is parsed (auto detection), not before
    const parser = this.#format !== 'text' ? this.#transform.parser : undefined;
    if (!enc.slow) {
      const fields = parser !== undefined && mayCarryJson(rec) ? parser(rec.message) : undefined;
      this.#writeDocument(
        enc,
        rec.offset,
        encodeDocumentHead(rec, this.#ctx, enc.fallbackTime, fields),
        true,
      );
      return;
    }
    const t = this.#transform;
    if (t.maxRecordBytes !== undefined && rec.message.length > t.maxRecordBytes / 3) {
      const cut = limitMessage(rec.message, t.maxRecordBytes);
      if (cut.truncated) {
        rec = { ...rec, message: cut.message, flags: rec.flags | RecordFlag.Truncated };
        enc.truncated++;
      }
    }
    const fields: StructuredFields | undefined =
      parser !== undefined && mayCarryJson(rec) ? parser(rec.message) : undefined;
    let doc = encodeDocument(rec, this.#ctx, enc.fallbackTime, fields);
    if (t.filter !== undefined) {
      const kept = t.filter(JSON.parse(doc) as Record<string, unknown>);
      if (kept === undefined) {
        enc.filtered++;
        return;
      }
      doc = JSON.stringify(kept);
    }
    // after the filters: records a filter drops never use the container's budget
    if (t.throttle !== undefined && !t.throttle.admit(Buffer.byteLength(rec.message))) return;
    this.#writeDocument(enc, rec.offset, doc, false);
  }

  /** One document (a head that the file's tail bytes complete, or whole) and its newline. */
  #writeDocument(enc: Encoding, offset: number, doc: string, headed: boolean): void {
    const need = 3 * doc.length + enc.fixed;
    if (enc.buf.length - enc.pos < need) enc.buf = grown(enc.buf, enc.pos, need);
    const buf = enc.buf;
    let pos = this.#writeAction(buf, enc.pos, offset);
    pos += buf.write(doc, pos);
    if (headed) {
      // TypedArray#set: Buffer#copy builds a view per call (a third of this loop's time)
      buf.set(this.#tail, pos);
      pos += this.#tail.length;
    }
    buf[pos++] = 0x0a;
    enc.pos = pos;
    enc.ends.push(pos);
    enc.offsets.push(offset);
  }

  /** The body, with a throttle summary when the chunk had drops; counts what filters and limits did. */
  #finishEncode(
    enc: Encoding,
    lastByte: number,
    len: number,
  ): { body: Buffer; ends: number[]; offsets: number[]; framed: boolean } {
    const summary = this.#transform.throttle?.summary();
    if (summary !== undefined) {
      // One summary per chunk with drops. Its offset is the chunk's last byte, a '\n' that no record
      // starts at, so its document id never takes a real record's.
      const doc = encodeDocument(
        {
          offset: lastByte,
          time: undefined,
          stream: undefined,
          message: summary.message,
          flags: RecordFlag.Throttled,
          error: undefined,
          part: 0,
        },
        this.#ctx,
        enc.fallbackTime,
        undefined,
      );
      this.#writeDocument(enc, lastByte, doc, false);
    }
    if (enc.filtered > 0) this.#events.recordsFiltered(enc.filtered);
    if (enc.truncated > 0) this.#events.recordsTruncated(enc.truncated);
    const framed = this.#action !== undefined;
    if (enc.ends.length === 0) return { body: EMPTY, ends: enc.ends, offsets: enc.offsets, framed };
    // the ratio follows the file's documents (a moving average over chunks)
    if (len > 0) this.#outputRatio = 0.5 * this.#outputRatio + (0.5 * enc.pos) / len;
    return { body: exactly(enc.buf, enc.pos), ends: enc.ends, offsets: enc.offsets, framed };
  }

  /** The action line before a document, when the sink gave one; returns the position after it. */
  #writeAction(buf: Buffer, pos: number, offset: number): number {
    const action = this.#action;
    if (action === undefined) return pos;
    buf.set(action, pos);
    let p = pos + action.length;
    if (!this.#actionWithOffset) return p;
    p = writeDecimal(buf, p, offset);
    buf[p++] = 0x22; // "}}\n
    buf[p++] = 0x7d;
    buf[p++] = 0x7d;
    buf[p++] = 0x0a;
    return p;
  }
}

/** Writes a non-negative safe integer's decimal digits at `pos`; returns the position after them. */
export function writeDecimal(buf: Buffer, pos: number, n: number): number {
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  let x = n;
  for (let p = pos + digits - 1; p >= pos; p--) {
    buf[p] = 0x30 + (x % 10);
    x = Math.floor(x / 10);
  }
  return pos + digits;
}

function tailBytes(ctx: DocumentContext): Buffer {
  return Buffer.from(`${ctx.extra}}`, 'utf8');
}

function actionBytes(ctx: DocumentContext): Buffer | undefined {
  return ctx.action === undefined ? undefined : Buffer.from(ctx.action.head, 'utf8');
}

/**
 * A copy of `buf[0, used)` in a new buffer with `room` more bytes after it, and at least a quarter
 * bigger (a few grows at most, even when every estimate falls short).
 */
function grown(buf: Buffer, used: number, room: number): Buffer {
  const next = bodyPool.take(Math.max(used + room + 65_536, Math.ceil(1.25 * buf.length)));
  buf.copy(next, 0, 0, used);
  giveBack(buf);
  return next;
}

/** A body buffer this encoder no longer needs, back to the pool. */
function giveBack(buf: Buffer): void {
  const moved = detachedCopy(buf.buffer as ArrayBuffer);
  if (moved !== undefined) bodyPool.put(moved);
}

/**
 * `buf[0, used)`, copied out when the unused rest is more than a quarter: a view keeps its whole
 * allocation alive, and a batch waits in memory until it is acknowledged.
 */
function exactly(buf: Buffer, used: number): Buffer {
  if (buf.length - used <= used >>> 2) return buf.subarray(0, used);
  const body = Buffer.allocUnsafeSlow(used);
  buf.copy(body, 0, 0, used);
  giveBack(buf);
  return body;
}
