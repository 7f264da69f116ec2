import { Buffer } from 'node:buffer';
import type { Stream } from '../pipeline/types.ts';
import { type LogRecord, type ParsedLine, RecordFlag } from './types.ts';

/** The record being joined on one stream. */
interface Pending {
  stream: Stream | undefined;
  /** time of the record's first fragment, kept for every piece */
  time: string | undefined;
  /** the current piece; `+=` builds a V8 rope, flattened once when the record is encoded */
  message: string;
  /** UTF-8 size of `message`, or -1 while `message.length * 3 < maxBytes` proves it small */
  bytes: number;
  /** offset of the current piece's first fragment; -1 while the piece has none */
  offset: number;
  /** InvalidUtf8 if a fragment of the current piece had it */
  flags: number;
  /** pieces already emitted, so also the number of the current one */
  part: number;
}

const STDOUT = 0;
const STDERR = 1;
const NO_STREAM = 2;

function slotOf(stream: Stream | undefined): number {
  return stream === 'stdout' ? STDOUT : stream === 'stderr' ? STDERR : NO_STREAM;
}

/**
 * Joins CRI `P` fragments and docker partial lines into records, per stream, since a runtime
 * interleaves stdout and stderr fragments in one file. A record reaching `maxBytes` (UTF-8) is
 * emitted as a Split piece and joining goes on in a new piece, so one endless line cannot hold
 * unbounded memory; fragments are never cut, so a piece can exceed `maxBytes` by its last one.
 */
export class PartialJoiner {
  private readonly maxBytes: number;
  private readonly slots: (Pending | undefined)[] = [undefined, undefined, undefined];

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** `offset` is the byte offset of the line's first byte in its file. */
  push(line: ParsedLine, offset: number, out: LogRecord[]): void {
    const invalid = line.invalidUtf8 ? RecordFlag.InvalidUtf8 : 0;
    if (line.error !== undefined) {
      // A malformed line belongs to no stream, so it cannot end anyone's pending record.
      out.push({
        offset,
        time: line.time,
        stream: line.stream,
        message: line.message,
        flags: RecordFlag.ParseError | invalid,
        error: line.error,
        part: 0,
      });
      return;
    }

    const slot = slotOf(line.stream);
    const p = this.slots[slot];
    if (line.partial) {
      if (p === undefined) {
        this.slots[slot] = {
          stream: line.stream,
          time: line.time,
          message: line.message,
          bytes: -1,
          offset,
          flags: invalid,
          part: 0,
        };
        this.emitIfFull(this.slots[slot]!, line.message, out);
        return;
      }
      if (p.offset < 0) p.offset = offset;
      p.message += line.message;
      p.flags |= invalid;
      this.emitIfFull(p, line.message, out);
      return;
    }

    if (p === undefined) {
      out.push({
        offset,
        time: line.time,
        stream: line.stream,
        message: line.message,
        flags: invalid,
        error: undefined,
        part: 0,
      });
      return;
    }
    this.slots[slot] = undefined;
    out.push({
      offset: p.offset < 0 ? offset : p.offset,
      time: p.time,
      stream: p.stream,
      message: p.message + line.message,
      flags: RecordFlag.Partial | p.flags | invalid | (p.part > 0 ? RecordFlag.Split : 0),
      error: undefined,
      part: p.part,
    });
  }

  /** Smallest offset of a pending piece: a checkpoint must not pass it. */
  pendingStart(): number | undefined {
    let min: number | undefined;
    for (const p of this.slots) {
      if (p !== undefined && p.offset >= 0 && (min === undefined || p.offset < min)) min = p.offset;
    }
    return min;
  }

  /** Emits every pending piece as Incomplete, by offset: its file ends for good. */
  drain(out: LogRecord[]): void {
    const pending = this.slots.filter((p): p is Pending => p !== undefined && p.offset >= 0);
    pending.sort((a, b) => a.offset - b.offset);
    for (const p of pending) {
      out.push({
        offset: p.offset,
        time: p.time,
        stream: p.stream,
        message: p.message,
        flags: RecordFlag.Partial | RecordFlag.Incomplete | p.flags | (p.part > 0 ? RecordFlag.Split : 0),
        error: undefined,
        part: p.part,
      });
    }
    this.reset();
  }

  /** Forgets everything, e.g. after copytruncate, when pending offsets point into lost bytes. */
  reset(): void {
    this.slots[STDOUT] = undefined;
    this.slots[STDERR] = undefined;
    this.slots[NO_STREAM] = undefined;
  }

  private emitIfFull(p: Pending, fragment: string, out: LogRecord[]): void {
    // Measuring waits until the character count allows maxBytes (a UTF-16 unit is at most 3 UTF-8
    // bytes); then the piece is measured once and each later fragment alone, so the rope is
    // flattened at most once per piece rather than once per fragment.
    if (p.bytes >= 0) p.bytes += Buffer.byteLength(fragment);
    else if (p.message.length * 3 >= this.maxBytes) p.bytes = Buffer.byteLength(p.message);
    if (p.bytes < this.maxBytes) return;
    out.push({
      offset: p.offset,
      time: p.time,
      stream: p.stream,
      message: p.message,
      flags: RecordFlag.Split | RecordFlag.Partial | p.flags,
      error: undefined,
      part: p.part,
    });
    p.part++;
    p.message = '';
    p.bytes = -1;
    p.offset = -1;
    p.flags = 0;
  }
}
