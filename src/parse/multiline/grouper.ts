import { Buffer } from 'node:buffer';
import type { Stream } from '../../pipeline/types.ts';
import { type LogRecord, RecordFlag } from '../types.ts';
import type { LineClassifier, MultilineRule } from './rules.ts';

export interface MultilineLimits {
  /** a group is emitted as soon as it has this many records (>= 1) */
  maxLines: number;
  /** a group is emitted before a record would make its message (UTF-8) longer than this (>= 1) */
  maxBytes: number;
}

/**
 * Part of a checkpoint: records of `stream` at offsets up to `through` were delivered before the
 * checkpoint was taken (alone, inside groups, or as fragments of a joined record) and must not be
 * emitted or grouped again after a restart.
 * `stream` undefined is the slot of records without a stream (text files, malformed lines); it
 * survives a JSON round trip as a missing property.
 */
export interface SkipEntry {
  stream: Stream | undefined;
  through: number;
}

/** Where reading may resume after a restart, and what to skip there (see MultilineGrouper.resumePoint). */
export interface ResumePoint {
  offset: number;
  skip: SkipEntry[];
}

/** The group being built on one stream. */
interface Group {
  first: LogRecord;
  messages: string[];
  /** UTF-8 bytes of the messages joined with '\n' */
  bytes: number;
  /** OR of the records' flags */
  flags: number;
  /** offset of the last record's last line */
  last: number;
}

const STDOUT = 0;
const STDERR = 1;
const NO_STREAM = 2;
const SLOT_STREAMS: readonly (Stream | undefined)[] = ['stdout', 'stderr', undefined];

/** Records that are never grouped: a malformed line, a piece of an over-long line. */
const BYPASS = RecordFlag.ParseError | RecordFlag.Split;

function slotOf(stream: Stream | undefined): number {
  return stream === 'stdout' ? STDOUT : stream === 'stderr' ? STDERR : NO_STREAM;
}

/** The last line of a record (joined fragments have several). */
function lastOf(rec: LogRecord): number {
  return rec.lastOffset ?? rec.offset;
}

/**
 * Groups a file's records into multiline records (stack traces) with a rule, per stream: runtimes
 * interleave stdout and stderr in one file, and a trace on one is not cut by lines on the other.
 * It runs after partial-line joining, so it sees whole records.
 *
 * A group ends when the rule says a record starts a new one, when it has `maxLines` records, before
 * a record would take it past `maxBytes`, on `flush` (silence, end of file), when a record that
 * bypasses grouping comes on its stream (ParseError or Split: the group goes first, then the
 * record as is), and right after an Incomplete record (its file ended). A group of one record is
 * that record, unchanged; a larger one is a new record with the first one's offset, time and
 * stream, the last one's last line (`lastOffset`), the messages joined with '\n', and the records'
 * flags plus Multiline.
 *
 * Without a rule (`MultilineGrouper.passThrough()`, multiline `none`), every record goes out as it
 * comes and nothing is ever pending, but the restart bookkeeping below is the same: a record of one
 * stream whose partial fragments straddle a checkpoint held back by another stream is skipped
 * whole after a restart (its tail fragments would otherwise come back as a record of their own).
 *
 * Restarts are exact (docs/multiline.md): a checkpoint never passes a pending group's first record
 * (`pendingStart`), and `resumePoint` says, per stream, up to which offset records were already
 * delivered in groups, so that a grouper resuming there (`skipThrough`) neither sends them again
 * nor glues their tail into a new group. The state behind it is one offset per stream.
 */
export class MultilineGrouper {
  /** undefined: pass-through */
  readonly #rule: MultilineRule | undefined;
  readonly #maxLines: number;
  readonly #maxBytes: number;
  readonly #classifiers: LineClassifier[];
  readonly #groups: (Group | undefined)[] = [undefined, undefined, undefined];
  /**
   * Per stream, the largest last-line offset (`lastOffset`) of a grouped (not bypassing) record
   * already emitted, or of a record skipped as delivered before a restart; -1 when none.
   */
  readonly #emitted: number[] = [-1, -1, -1];
  /** Per stream, records at or before this offset were delivered before the restart; -1: none. */
  readonly #skip: number[] = [-1, -1, -1];

  /** `rule` undefined: a pass-through grouper (see `passThrough`), limits unused */
  constructor(rule: MultilineRule | undefined, limits: MultilineLimits) {
    if (!(limits.maxLines >= 1) || !(limits.maxBytes >= 1)) {
      throw new RangeError(
        `multiline limits must be at least 1 (got ${limits.maxLines} lines, ${limits.maxBytes} bytes)`,
      );
    }
    this.#rule = rule;
    this.#maxLines = limits.maxLines;
    this.#maxBytes = limits.maxBytes;
    this.#classifiers = rule === undefined ? [] : [rule.classifier(), rule.classifier(), rule.classifier()];
  }

  /**
   * A grouper without a rule: every record is emitted at once, alone, while `resumePoint` and
   * `skipThrough` work as with a rule. FileProcessor uses one when no multiline rule applies.
   */
  static passThrough(): MultilineGrouper {
    return new MultilineGrouper(undefined, { maxLines: 1, maxBytes: 1 });
  }

  /** undefined for a pass-through grouper */
  get rule(): MultilineRule | undefined {
    return this.#rule;
  }

  /**
   * Takes the next record of the file (in the order the joiner emits them: per stream, in file
   * order) and appends to `out` whatever it completes.
   */
  push(rec: LogRecord, out: LogRecord[]): void {
    const slot = slotOf(rec.stream);
    // delivered (alone or in a group) before the restart this grouper resumes from
    if (rec.offset <= this.#skip[slot]!) return;
    if (this.#rule !== undefined) {
      this.#group(rec, slot, out);
      return;
    }
    // pass-through (kept short: this is every record's path without a multiline rule)
    out.push(rec);
    if ((rec.flags & BYPASS) === 0) this.#noteEmitted(slot, lastOf(rec));
  }

  #group(rec: LogRecord, slot: number, out: LogRecord[]): void {
    if ((rec.flags & BYPASS) !== 0) {
      this.#emit(slot, out);
      out.push(rec);
      return;
    }
    const classifier = this.#classifiers[slot]!;
    const bytes = Buffer.byteLength(rec.message, 'utf8');
    const g = this.#groups[slot];
    if (g !== undefined) {
      if (classifier.next(rec.message) === 'continue' && g.bytes + 1 + bytes <= this.#maxBytes) {
        g.messages.push(rec.message);
        g.bytes += 1 + bytes;
        g.flags |= rec.flags;
        g.last = lastOf(rec);
        if (
          g.messages.length >= this.#maxLines ||
          g.bytes >= this.#maxBytes ||
          (rec.flags & RecordFlag.Incomplete) !== 0
        ) {
          this.#emit(slot, out);
        }
        return;
      }
      this.#emit(slot, out);
    }
    classifier.begin(rec.message);
    if (this.#maxLines <= 1 || bytes >= this.#maxBytes || (rec.flags & RecordFlag.Incomplete) !== 0) {
      // nothing can join it
      out.push(rec);
      this.#noteEmitted(slot, lastOf(rec));
      return;
    }
    this.#groups[slot] = { first: rec, messages: [rec.message], bytes, flags: rec.flags, last: lastOf(rec) };
  }

  /** Emits every pending group, by offset: on silence (multiline-flush-ms) and at the end of a file. */
  flush(out: LogRecord[]): void {
    for (;;) {
      let slot = -1;
      for (let s = 0; s < 3; s++) {
        const g = this.#groups[s];
        if (g !== undefined && (slot < 0 || g.first.offset < this.#groups[slot]!.first.offset)) slot = s;
      }
      if (slot < 0) return;
      this.#emit(slot, out);
    }
  }

  hasPending(): boolean {
    return (
      this.#groups[STDOUT] !== undefined ||
      this.#groups[STDERR] !== undefined ||
      this.#groups[NO_STREAM] !== undefined
    );
  }

  /** Smallest first offset of a pending group: a checkpoint must not pass it. */
  pendingStart(): number | undefined {
    let min: number | undefined;
    for (const g of this.#groups) {
      if (g !== undefined && (min === undefined || g.first.offset < min)) min = g.first.offset;
    }
    return min;
  }

  /**
   * The checkpoint to record after the records pushed so far, when every record pushed later will
   * have an offset >= `limit` (the caller's own bound: consumed bytes, its joiner's pending start).
   * `offset` is min(limit, pendingStart()); `skip` has, per stream, the largest last-line offset
   * (`lastOffset`) of a record already emitted (alone or in a group), when that is >= `offset`: after
   * a restart at `offset`, those records, or the fragments of them that lie after `offset`, are read
   * again, and skipThrough drops them. Valid once everything emitted before this call is
   * delivered, which is when a checkpoint taken now may be committed.
   */
  resumePoint(limit: number): ResumePoint {
    const start = this.pendingStart();
    const offset = start !== undefined && start < limit ? start : limit;
    const skip: SkipEntry[] = [];
    for (let s = 0; s < 3; s++) {
      const through = this.#emitted[s]!;
      if (through >= offset) skip.push({ stream: SLOT_STREAMS[s], through });
    }
    return { offset, skip };
  }

  /**
   * On a grouper resuming at a checkpoint: records of each entry's stream at offsets <= `through`
   * are dropped (they were delivered as part of earlier groups). Also carried into later
   * resumePoint answers, for as long as they can be read again.
   */
  skipThrough(skip: readonly SkipEntry[]): void {
    for (const { stream, through } of skip) {
      const slot = slotOf(stream);
      if (through > this.#skip[slot]!) this.#skip[slot] = through;
      this.#noteEmitted(slot, through);
    }
  }

  /** Forgets everything, e.g. after copytruncate, when offsets point into lost bytes. */
  reset(): void {
    for (let s = 0; s < 3; s++) {
      this.#groups[s] = undefined;
      this.#emitted[s] = -1;
      this.#skip[s] = -1;
    }
  }

  #emit(slot: number, out: LogRecord[]): void {
    const g = this.#groups[slot];
    if (g === undefined) return;
    this.#groups[slot] = undefined;
    const first = g.first;
    if (g.messages.length === 1) {
      out.push(first);
    } else {
      out.push({
        offset: first.offset,
        lastOffset: g.last,
        time: first.time,
        stream: first.stream,
        message: g.messages.join('\n'),
        flags: g.flags | RecordFlag.Multiline,
        error: first.error,
        part: first.part,
      });
    }
    this.#noteEmitted(slot, g.last);
  }

  #noteEmitted(slot: number, offset: number): void {
    if (offset > this.#emitted[slot]!) this.#emitted[slot] = offset;
  }
}
