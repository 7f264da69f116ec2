import { isUtf8 } from 'node:buffer';
import { type DocumentContext, encodeDocument, mayCarryJson } from '../encode/document.ts';
import type { Format, FormatOption } from '../pipeline/types.ts';
import type { ContinuationState } from '../source/ack-tracker.ts';
import { detectFormat, parserFor } from './detect.ts';
import { jsonObjectText } from './json-message.ts';
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
}

export interface ProcessResult {
  /** the records as NDJSON (see RecordBatch); empty when there are none */
  body: Buffer;
  ends: number[];
  offsets: number[];
  /** bytes of the chunk consumed; the next read starts at `base + consumed` */
  consumed: number;
  /** file offset a checkpoint may move to once these documents are acknowledged */
  safeEnd: number;
  /** set when `safeEnd` falls inside a line that was cut into pieces */
  continuation: ContinuationState | undefined;
}

const EMPTY = Buffer.alloc(0);

/** Backs off from `end` to the start of a UTF-8 sequence so a cut never splits a character. */
function utf8Boundary(buf: Buffer, start: number, end: number): number {
  let i = end;
  // at most 3 continuation bytes (10xxxxxx) precede a character's last byte
  while (i > start && end - i < 4 && (buf[i]! & 0xc0) === 0x80) i--;
  return i > start ? i : end;
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
  #cont: ContinuationState | undefined;
  readonly #records: LogRecord[] = [];

  constructor(
    ctx: DocumentContext,
    opts: ProcessorOptions,
    events: ProcessorEvents,
    resume?: { format?: Format | undefined; continuation?: ContinuationState | undefined },
  ) {
    this.#ctx = ctx;
    this.#opts = opts;
    this.#events = events;
    this.#joiner = new PartialJoiner(opts.maxLineBytes);
    const format = opts.format === 'auto' ? resume?.format : opts.format;
    if (format !== undefined) this.#setFormat(format);
    this.#cont = resume?.continuation;
  }

  get format(): Format | undefined {
    return this.#format;
  }

  set context(ctx: DocumentContext) {
    this.#ctx = ctx;
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
    this.#cont = undefined;
    if (this.#opts.format === 'auto') {
      this.#format = undefined;
      this.#parser = undefined;
    }
  }

  /**
   * Processes `buf[0, len)`, which holds the file's bytes from offset `base`. Complete lines become
   * records; an incomplete last line is left unconsumed (re-read with the next chunk) unless `final`
   * says the file will never grow again, in which case it and any pending partial record are
   * emitted flagged `incomplete`.
   */
  process(buf: Buffer, len: number, base: number, final: boolean): ProcessResult {
    const view = len === buf.length ? buf : buf.subarray(0, len);
    const max = this.#opts.maxLineBytes;
    const records = this.#records;
    records.length = 0;
    let pos = 0;
    let lines = 0;
    while (pos < len) {
      const nl = view.indexOf(10, pos);
      const lineEnd = nl === -1 ? len : nl;
      const lineLen = lineEnd - pos;
      if (lineLen > max || (nl === -1 && lineLen === max)) {
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
    let continuation = this.#cont === undefined ? undefined : { ...this.#cont };
    const pendingStart = this.#joiner.pendingStart();
    if (pendingStart !== undefined && pendingStart < safeEnd) {
      safeEnd = pendingStart;
      continuation = undefined;
    }
    return { ...this.#encode(records), consumed: pos, safeEnd, continuation };
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

  /**
   * Encodes the records into one NDJSON Buffer. Strings built by concatenation are ropes that keep
   * every piece alive; writing them out at once leaves only compact UTF-8 bytes behind, which is what
   * waits in the output (docs/DESIGN.md, "Memory").
   */
  #encode(records: LogRecord[]): { body: Buffer; ends: number[]; offsets: number[] } {
    const n = records.length;
    const ends = new Array<number>(n);
    const offsets = new Array<number>(n);
    if (n === 0) return { body: EMPTY, ends, offsets };
    const docs = new Array<string>(n);
    const fallbackTime = `"${new Date().toISOString()}"`;
    const tryJson = this.#format !== 'text';
    let chars = 0;
    for (let i = 0; i < n; i++) {
      const rec = records[i]!;
      const json = tryJson && mayCarryJson(rec) ? jsonObjectText(rec.message) : undefined;
      const doc = encodeDocument(rec, this.#ctx, fallbackTime, json);
      docs[i] = doc;
      offsets[i] = rec.offset;
      chars += doc.length + 1;
      ends[i] = chars;
    }
    docs.push('');
    const body = Buffer.from(docs.join('\n'));
    if (body.length !== chars) {
      // not all ASCII: byte ends differ from character ends
      let end = 0;
      for (let i = 0; i < n; i++) {
        end += Buffer.byteLength(docs[i]!) + 1;
        ends[i] = end;
      }
    }
    return { body, ends, offsets };
  }
}
