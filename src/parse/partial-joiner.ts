import { Buffer } from 'node:buffer';
import type { Stream } from '../pipeline/types.ts';
import { type LogRecord, type ParsedLine, RecordFlag } from './types.ts';
import { completeEnd, isInvalidUtf8 } from './utf8.ts';

/** The record being joined on one stream. */
interface Pending {
  stream: Stream | undefined;
  /** time of the record's first fragment, kept for every piece */
  time: string | undefined;
  /**
   * The current piece's bytes, one entry per fragment. Copies, since the caller reuses its read
   * buffer; they are decoded once, joined, when the piece is emitted.
   */
  chunks: Buffer[];
  /** the file offset of the line each entry of `chunks` came from */
  chunkOffsets: number[];
  /** total length of `chunks` */
  bytes: number;
  /** offset of the line holding the current piece's first byte; -1 while the piece has none */
  offset: number;
  /** offset of the last fragment line seen: the `lastOffset` of the piece emitted next */
  last: number;
  /**
   * Where reading must resume to rebuild the current piece: `offset`, except when the piece opens
   * with a character carried over from lines before (see emitPiece).
   */
  resumeAt: number;
  /**
   * InvalidUtf8 if a fragment of the current piece without a byte range had it: its bytes were
   * encoded from text holding U+FFFD, so the joined bytes no longer show it.
   */
  flags: number;
  /** pieces already emitted, so also the number of the current one */
  part: number;
  /**
   * The current piece reached maxBytes and ends at a character boundary: it is complete, but held
   * until the next fragment shows whether the record goes on, so that a file ending right here
   * still marks it incomplete (see emitHeld).
   */
  full: boolean;
}

const STDOUT = 0;
const STDERR = 1;
const NO_STREAM = 2;

const NO_BYTES = Buffer.alloc(0);

function slotOf(stream: Stream | undefined): number {
  return stream === 'stdout' ? STDOUT : stream === 'stderr' ? STDERR : NO_STREAM;
}

/**
 * Joins CRI `P` fragments and docker partial lines into records, per stream, since a runtime
 * interleaves stdout and stderr fragments in one file. Fragments are joined as bytes and decoded
 * once per record: CRI runtimes cut a long line every 16 KiB whatever character that byte is in,
 * so decoding fragments one by one would turn each character cut in two into U+FFFD.
 *
 * A record reaching `maxBytes` is emitted as a Split piece and joining goes on in a new piece, so
 * one endless line cannot hold unbounded memory. A piece ends where the fragment that made it
 * reach `maxBytes` ends (so it can exceed `maxBytes` by that fragment), except that a character
 * left unfinished there moves, whole, to the next piece.
 */
export class PartialJoiner {
  private readonly maxBytes: number;
  private readonly slots: (Pending | undefined)[] = [undefined, undefined, undefined];

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /**
   * `offset` is the byte offset of the line's first byte in its file; `buf` is the buffer the line
   * was parsed from, read only during this call (the line's byte range, when it has one, points
   * into it).
   */
  push(line: ParsedLine, offset: number, out: LogRecord[], buf: Buffer): void {
    if (line.error !== undefined) {
      // A malformed line belongs to no stream, so it cannot end anyone's pending record.
      out.push({
        offset,
        time: line.time,
        stream: line.stream,
        message: line.message,
        flags: RecordFlag.ParseError | (line.invalidUtf8 ? RecordFlag.InvalidUtf8 : 0),
        error: line.error,
        part: 0,
      });
      return;
    }

    const slot = slotOf(line.stream);
    let p = this.slots[slot];
    if (p?.full) this.emitHeld(p, out, 0);
    if (line.partial) {
      if (p === undefined) {
        p = {
          stream: line.stream,
          time: line.time,
          chunks: [],
          chunkOffsets: [],
          bytes: 0,
          offset,
          last: offset,
          resumeAt: offset,
          flags: 0,
          part: 0,
          full: false,
        };
        this.slots[slot] = p;
      } else if (p.offset < 0) {
        p.offset = offset;
        p.resumeAt = offset;
      }
      p.last = offset;
      append(p, line, offset, buf, true);
      if (p.bytes >= this.maxBytes) this.emitPiece(p, out);
      return;
    }

    if (p === undefined) {
      out.push({
        offset,
        time: line.time,
        stream: line.stream,
        message: line.message,
        flags: line.invalidUtf8 ? RecordFlag.InvalidUtf8 : 0,
        error: undefined,
        part: 0,
      });
      return;
    }
    this.slots[slot] = undefined;
    if (p.offset < 0) {
      p.offset = offset;
      p.resumeAt = offset;
    }
    p.last = offset;
    const flags = RecordFlag.Partial | (p.part > 0 ? RecordFlag.Split : 0);
    if (p.bytes === 0) {
      // Nothing to join (earlier pieces are out, or the fragments were empty): the parser's text
      // stands.
      out.push(record(p, line.message, flags | (line.invalidUtf8 ? RecordFlag.InvalidUtf8 : 0)));
      return;
    }
    // No copy: the last fragment is decoded with the rest before `buf` can change.
    append(p, line, offset, buf, false);
    out.push(decoded(p, joined(p), p.bytes, flags));
  }

  /** Smallest offset of a pending piece: a checkpoint must not pass it. */
  pendingStart(): number | undefined {
    let min: number | undefined;
    for (const p of this.slots) {
      if (p !== undefined && p.offset >= 0 && (min === undefined || p.resumeAt < min)) min = p.resumeAt;
    }
    return min;
  }

  /** Emits every pending piece as Incomplete, by offset: its file ends for good. */
  drain(out: LogRecord[]): void {
    const pending = this.slots.filter((p): p is Pending => p !== undefined && p.offset >= 0);
    pending.sort((a, b) => a.offset - b.offset);
    for (const p of pending) {
      if (p.full) {
        this.emitHeld(p, out, RecordFlag.Incomplete);
        continue;
      }
      const flags = RecordFlag.Partial | RecordFlag.Incomplete | (p.part > 0 ? RecordFlag.Split : 0);
      out.push(decoded(p, joined(p), p.bytes, flags));
    }
    this.reset();
  }

  /** Forgets everything, e.g. after copytruncate, when pending offsets point into lost bytes. */
  reset(): void {
    this.slots[STDOUT] = undefined;
    this.slots[STDERR] = undefined;
    this.slots[NO_STREAM] = undefined;
  }

  /** Emits a held full piece (with `extra` flags) and leaves the record with no bytes pending. */
  private emitHeld(p: Pending, out: LogRecord[], extra: number): void {
    const bytes = joined(p);
    out.push(decoded(p, bytes, bytes.length, RecordFlag.Split | RecordFlag.Partial | extra));
    p.full = false;
    p.part++;
    p.flags = 0;
    p.chunks = [];
    p.chunkOffsets = [];
    p.bytes = 0;
    p.offset = -1;
  }

  private emitPiece(p: Pending, out: LogRecord[]): void {
    const bytes = joined(p);
    let cut = completeEnd(bytes, 0, bytes.length);
    // The piece is one unfinished character (maxBytes < 4): wait for the rest of it.
    if (cut === 0) return;
    // The unfinished character is carried over to the next piece. That piece's document offset (its
    // id) is the last fragment's, which no earlier piece has; reading resumes at the fragment the
    // character starts in. A single fragment holding the whole piece leaves no distinct offset: then
    // the character is cut (flagged invalid_utf8).
    if (cut < bytes.length && p.chunks.length === 1) cut = bytes.length;
    if (cut === bytes.length) {
      p.full = true;
      return;
    }
    out.push(decoded(p, bytes, cut, RecordFlag.Split | RecordFlag.Partial));
    p.part++;
    p.flags = 0;
    // The unfinished character opens the next piece, and the checkpoint stays before the line
    // holding its first byte: those bytes are not delivered yet.
    p.resumeAt = p.chunkOffsets[chunkAt(p, bytes.length, cut)]!;
    p.offset = p.chunkOffsets[p.chunks.length - 1]!;
    p.chunks = [Buffer.from(bytes.subarray(cut))];
    p.chunkOffsets = [p.offset];
    p.bytes = bytes.length - cut;
  }
}

/** Adds the line's message bytes to the current piece; `copy` unless they are decoded at once. */
function append(p: Pending, line: ParsedLine, offset: number, buf: Buffer, copy: boolean): void {
  let bytes: Buffer;
  if (line.messageStart >= 0) {
    if (line.messageEnd === line.messageStart) return;
    const view = buf.subarray(line.messageStart, line.messageEnd);
    bytes = copy ? Buffer.from(view) : view;
  } else {
    // No byte range (docker's JSON-decoded `log`): the text is all there is.
    if (line.invalidUtf8) p.flags |= RecordFlag.InvalidUtf8;
    if (line.message === '') return;
    bytes = Buffer.from(line.message, 'utf8');
  }
  p.chunks.push(bytes);
  p.chunkOffsets.push(offset);
  p.bytes += bytes.length;
}

/** Index of the chunk holding byte `cut` of the joined `total` bytes. */
function chunkAt(p: Pending, total: number, cut: number): number {
  let at = total;
  let k = p.chunks.length;
  while (at > cut) at -= p.chunks[--k]!.length;
  return k;
}

function joined(p: Pending): Buffer {
  const n = p.chunks.length;
  return n === 0 ? NO_BYTES : n === 1 ? p.chunks[0]! : Buffer.concat(p.chunks, p.bytes);
}

/** The record of the piece's first `end` bytes of `bytes`, decoded and checked here. */
function decoded(p: Pending, bytes: Buffer, end: number, flags: number): LogRecord {
  const message = bytes.toString('utf8', 0, end);
  return record(p, message, flags | (isInvalidUtf8(bytes, 0, end, message) ? RecordFlag.InvalidUtf8 : 0));
}

function record(p: Pending, message: string, flags: number): LogRecord {
  return {
    offset: p.offset,
    lastOffset: p.last,
    time: p.time,
    stream: p.stream,
    message,
    flags: flags | p.flags,
    error: undefined,
    part: p.part,
  };
}
