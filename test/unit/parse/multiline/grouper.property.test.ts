import { Buffer } from 'node:buffer';
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MultilineGrouper, type MultilineLimits } from '../../../../src/parse/multiline/grouper.ts';
import {
  builtinRule,
  customRule,
  MULTILINE_RULES,
  type MultilineRule,
} from '../../../../src/parse/multiline/rules.ts';
import { PartialJoiner } from '../../../../src/parse/partial-joiner.ts';
import { type LogRecord, malformedLine, type ParsedLine, RecordFlag } from '../../../../src/parse/types.ts';
import type { Matcher } from '../../../../src/transform/types.ts';

const { ParseError, InvalidUtf8, Split, Partial, Incomplete, Multiline } = RecordFlag;
const RUNS = { numRuns: 300 };

type Stream = 'stdout' | 'stderr' | undefined;

function matcher(re: RegExp): Matcher {
  return { test: (text) => re.test(text), groups: (text) => re.exec(text)?.groups };
}

const FIXTURES = new URL('../../../fixtures/multiline/', import.meta.url);

/** Every line of the trace fixtures, and fragments that steer the state machines. */
const POOL = [
  ...readdirSync(FIXTURES).flatMap((name) => readFileSync(new URL(name, FIXTURES), 'utf8').split('\n')),
  '',
  ' ',
  '{',
  '}',
  '  }',
  '{"a":1}',
  '\tat x.Y.z(Y.java:1) {',
  '    at f (x.js:1:2) {',
  'Traceback (most recent call last):',
  'During handling of the above exception, another exception occurred:',
  'goroutine 1 [running]:',
  'panic: x',
  'exit status 2',
  'Error: x',
  'ERROR failed',
  'java.lang.Error: x\r',
  '/app/x.js:1',
  'info: X[1]',
  '\u00e9\u00e9\u00e9',
];

const message: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...POOL) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom('\tat ', '  File "', '    at ', ' ---> ', '\tfrom ', '  ', '[cause]: '),
        fc.string(),
      )
      .map(([a, b]) => a + b),
  },
);

const flags = fc.oneof(
  { weight: 12, arbitrary: fc.constant(0) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(ParseError, Split, Split | Partial, Incomplete, InvalidUtf8, Partial),
  },
);

const stream: fc.Arbitrary<Stream> = fc.constantFrom<Stream>(
  'stdout',
  'stdout',
  'stderr',
  'stderr',
  undefined,
);

interface Line {
  stream: Stream;
  message: string;
  flags: number;
}

const line: fc.Arbitrary<Line> = fc.record({ stream, message, flags });

const RULES: MultilineRule[] = [
  ...MULTILINE_RULES.map((name) => builtinRule(name)),
  customRule({ start: matcher(/^\d/) }),
  customRule({ continuation: matcher(/^\s/) }),
  customRule({ start: matcher(/^(?:ERROR|INFO)/), continuation: matcher(/^\s|^Caused/) }),
];
const rule = fc.constantFrom(...RULES);

const limits: fc.Arbitrary<MultilineLimits> = fc.record({
  maxLines: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constant(500)),
  maxBytes: fc.oneof(fc.integer({ min: 1, max: 200 }), fc.constant(1 << 20)),
});

/** Records in file order: each at the byte offset after the one before. */
function inFileOrder(lines: Line[]): LogRecord[] {
  let offset = 0;
  return lines.map((l, i) => {
    const rec: LogRecord = { offset, time: `t${i}`, ...l, error: undefined, part: 0 };
    offset += Buffer.byteLength(l.message) + 1;
    return rec;
  });
}

function slotOf(s: Stream): number {
  return s === 'stdout' ? 0 : s === 'stderr' ? 1 : 2;
}

type Op = LogRecord | 'flush';

function run(g: MultilineGrouper, ops: readonly Op[], out: LogRecord[] = []): LogRecord[] {
  for (const op of ops) {
    if (op === 'flush') g.flush(out);
    else g.push(op, out);
  }
  return out;
}

function whole(r: MultilineRule, l: MultilineLimits, ops: readonly Op[]): LogRecord[] {
  const g = new MultilineGrouper(r, l);
  const out = run(g, ops);
  g.flush(out);
  return out;
}

/**
 * Checks that the output is the input cut into runs, per stream, in order: every record is in
 * exactly one output record, and each output record is a lone input record (the same object) or
 * 2+ consecutive ones of its stream joined, within the limits.
 */
function checkPartition(input: LogRecord[], output: LogRecord[], l: MultilineLimits): void {
  const ins: LogRecord[][] = [[], [], []];
  const outs: LogRecord[][] = [[], [], []];
  for (const r of input) ins[slotOf(r.stream)]!.push(r);
  for (const r of output) outs[slotOf(r.stream)]!.push(r);
  for (let s = 0; s < 3; s++) {
    const list = ins[s]!;
    let i = 0;
    for (const o of outs[s]!) {
      const first = list[i];
      expect(first).toBeDefined();
      if ((o.flags & Multiline) === 0) {
        expect(o).toBe(first);
        i++;
        continue;
      }
      let n = 1;
      let length = first!.message.length;
      while (length < o.message.length && i + n < list.length) length += 1 + list[i + n++]!.message.length;
      const parts = list.slice(i, i + n);
      expect(n).toBeGreaterThanOrEqual(2);
      expect(n).toBeLessThanOrEqual(l.maxLines);
      expect(o.message).toBe(parts.map((p) => p.message).join('\n'));
      expect(Buffer.byteLength(o.message)).toBeLessThanOrEqual(l.maxBytes);
      expect([o.offset, o.time, o.stream]).toEqual([first!.offset, first!.time, first!.stream]);
      expect(o.flags).toBe(parts.reduce<number>((f, p) => f | p.flags, Multiline));
      for (const [k, p] of parts.entries()) {
        expect(p.flags & (ParseError | Split)).toBe(0);
        if (k < parts.length - 1) expect(p.flags & Incomplete).toBe(0);
      }
      i += n;
    }
    expect(i).toBe(list.length);
  }
}

describe('MultilineGrouper properties', () => {
  it('(a) gives the same output however the records are cut into push batches', () => {
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 10 }),
        rule,
        limits,
        fc.integer({ min: 0, max: 4000 }),
        (lines, sizes, r, l, limit) => {
          const recs = inFileOrder(lines);
          const expected = whole(r, l, recs);
          const g = new MultilineGrouper(r, l);
          const got: LogRecord[] = [];
          let at = 0;
          for (let k = 0; at < recs.length; k++) {
            const size = sizes[k % sizes.length]!;
            const batch: LogRecord[] = [];
            run(g, recs.slice(at, at + size), batch);
            got.push(...batch);
            at += size;
            // the caller asks these between batches: they change nothing
            g.hasPending();
            g.pendingStart();
            g.resumePoint(limit);
          }
          g.flush(got);
          expect(got).toEqual(expected);
        },
      ),
      RUNS,
    );
  });

  it('(b) never throws, loses or duplicates a record, whatever the input, flushes and limits', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof({ weight: 12, arbitrary: line }, { weight: 1, arbitrary: fc.constant('flush' as const) }),
          {
            maxLength: 80,
          },
        ),
        rule,
        limits,
        (items, r, l) => {
          const recs = inFileOrder(items.filter((x): x is Line => x !== 'flush'));
          let k = 0;
          const ops: Op[] = items.map((x) => (x === 'flush' ? x : recs[k++]!));
          checkPartition(recs, whole(r, l, ops), l);
        },
      ),
      RUNS,
    );
  });

  it('(b) classifiers never throw on any text', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(message, fc.string({ unit: 'grapheme' })), { maxLength: 30 }),
        rule,
        (texts, r) => {
          const c = r.classifier();
          c.begin(texts[0] ?? '');
          for (const t of texts) if (c.next(t) === 'start') c.begin(t);
        },
      ),
      RUNS,
    );
  });
});

/**
 * A file's records in the order a partial-line joiner hands them over: a record completes after
 * lines that come later in the file (its last fragment is further on), so streams interleave out
 * of file order; within a stream the order is the file's.
 */
const joinedFile = fc
  .array(fc.tuple(line, fc.integer({ min: 0, max: 4 })), { maxLength: 60 })
  .map((entries) => {
    const recs = inFileOrder(entries.map(([l]) => l));
    const last = [-1, -1, -1];
    const keyed = recs.map((rec, i) => {
      const s = slotOf(rec.stream);
      const key = Math.max(i + entries[i]![1], last[s]!);
      last[s] = key;
      return { rec, key };
    });
    keyed.sort((a, b) => a.key - b.key);
    return keyed.map((k) => k.rec);
  });

/** the operations, with a flush after each record whose index is in `flushAt` */
function withFlushes(recs: LogRecord[], flushAt: number[]): Op[] {
  const ops: Op[] = [];
  recs.forEach((r, i) => {
    ops.push(r);
    if (flushAt.includes(i)) ops.push('flush');
  });
  return ops;
}

/** The smallest offset of a record not fed yet (what a caller's limit may not pass), or `end`. */
function lowestAfter(ops: readonly Op[], cut: number, end: number): number {
  let min = end;
  for (const op of ops.slice(cut)) if (op !== 'flush' && op.offset < min) min = op.offset;
  return min;
}

/**
 * What a restart at `offset` after the first `cut` operations reads again: every record fed before
 * the cut at or after the offset, in the order the joiner hands them over (no flushes: those were
 * silences in the first run).
 */
function readAgain(ops: readonly Op[], cut: number, offset: number): LogRecord[] {
  return ops.slice(0, cut).filter((op): op is LogRecord => op !== 'flush' && op.offset >= offset);
}

const key = (r: LogRecord): string => `${r.offset}`;

describe('MultilineGrouper restarts (property)', () => {
  it('(c) a restart at resumePoint with skipThrough emits exactly what the first run emits after the cut', () => {
    fc.assert(
      fc.property(
        joinedFile,
        fc.array(fc.nat(60), { maxLength: 6 }),
        fc.nat(80),
        fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
        rule,
        limits,
        (recs, flushAt, cutAt, fraction, r, l) => {
          const ops = withFlushes(recs, flushAt);
          const cut = Math.min(cutAt, ops.length);
          const end = recs.reduce((m, x) => Math.max(m, x.offset + 1), 0);
          // any limit at or below the lowest offset still to come is one a caller may use
          const limit = Math.floor(lowestAfter(ops, cut, end) * fraction);

          const g = new MultilineGrouper(r, l);
          const before = run(g, ops.slice(0, cut));
          const point = g.resumePoint(limit);
          const after = run(g, ops.slice(cut));
          g.flush(after);

          const restarted = new MultilineGrouper(r, l);
          restarted.skipThrough(point.skip);
          const replay = run(restarted, [...readAgain(ops, cut, point.offset), ...ops.slice(cut)]);
          restarted.flush(replay);

          // The restart sends again, besides all the first run sends after the cut, only records
          // that bypass grouping and went out before the cut, at or after the resume offset and past
          // their stream's skip entry: the same documents (same offset, same content) again.
          const through = [-1, -1, -1];
          for (const e of point.skip) through[slotOf(e.stream)] = e.through;
          const resent = before.filter(
            (x) =>
              (x.flags & (ParseError | Split)) !== 0 &&
              x.offset >= point.offset &&
              x.offset > through[slotOf(x.stream)]!,
          );
          const sort = (a: LogRecord[]): LogRecord[] => [...a].sort((x, y) => x.offset - y.offset);
          expect(sort(replay)).toEqual(sort([...after, ...resent]));
          expect(point.offset).toBeLessThanOrEqual(limit);
        },
      ),
      RUNS,
    );
  });

  it('(c) across several crashes, the documents delivered are the uninterrupted run, each id with one content', () => {
    fc.assert(
      fc.property(
        joinedFile,
        fc.array(fc.nat(60), { maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(80), fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true }))), {
          maxLength: 3,
        }),
        rule,
        limits,
        (recs, flushAt, crashes, r, l) => {
          const ops = withFlushes(recs, flushAt);
          const end = recs.reduce((m, x) => Math.max(m, x.offset + 1), 0);
          const expected = whole(r, l, ops);

          const delivered: LogRecord[] = [];
          let g = new MultilineGrouper(r, l);
          // what the current grouper reads: the file's operations from `next` on, after `pending`
          let pending: Op[] = [];
          let next = 0;
          // where the current grouper began reading: a caller's limit never goes below it (its
          // joiner has seen nothing before)
          let start = 0;
          for (const [cutAt, fraction] of [...crashes].sort((a, b) => a[0] - b[0])) {
            const cut = Math.max(next, Math.min(cutAt, ops.length));
            run(g, [...pending, ...ops.slice(next, cut)], delivered);
            const lowest = lowestAfter(ops, cut, end);
            expect(lowest).toBeGreaterThanOrEqual(start);
            const point = g.resumePoint(start + Math.floor((lowest - start) * fraction));
            start = point.offset;
            g = new MultilineGrouper(r, l);
            g.skipThrough(point.skip);
            pending = readAgain(ops, cut, point.offset);
            next = cut;
          }
          run(g, [...pending, ...ops.slice(next)], delivered);
          g.flush(delivered);

          const byId = new Map<string, LogRecord>();
          for (const d of delivered) {
            const seen = byId.get(key(d));
            if (seen !== undefined) expect(d).toEqual(seen);
            byId.set(key(d), d);
          }
          const sort = (a: LogRecord[]): LogRecord[] => [...a].sort((x, y) => x.offset - y.offset);
          expect(sort([...byId.values()])).toEqual(sort(expected));
        },
      ),
      RUNS,
    );
  });
});

describe('what resumePoint assumes of its input, checked on the real PartialJoiner', () => {
  const criLine = fc.record({
    stream: fc.constantFrom<'stdout' | 'stderr'>('stdout', 'stderr'),
    partial: fc.boolean(),
    malformed: fc.oneof(
      { weight: 9, arbitrary: fc.constant(false) },
      { weight: 1, arbitrary: fc.constant(true) },
    ),
    message: fc.string({ maxLength: 12 }),
  });

  it('per stream, grouped records come in file order, and none comes below an earlier limit', () => {
    fc.assert(
      fc.property(
        fc.array(criLine, { maxLength: 80 }),
        fc.integer({ min: 1, max: 40 }),
        (lines, maxBytes) => {
          const joiner = new PartialJoiner(maxBytes);
          const last = [-1, -1, -1];
          let limit = 0;
          let offset = 0;
          const check = (out: LogRecord[]): void => {
            for (const r of out) {
              expect(r.offset).toBeGreaterThanOrEqual(limit);
              if ((r.flags & (ParseError | Split)) !== 0) continue;
              const s = slotOf(r.stream);
              expect(r.offset).toBeGreaterThan(last[s]!);
              last[s] = r.offset;
            }
          };
          for (const l of lines) {
            const parsed: ParsedLine = l.malformed
              ? malformedLine(l.message, false, 'cri: bad')
              : { ...l, time: 't', messageStart: -1, messageEnd: -1, error: undefined, invalidUtf8: false };
            const out: LogRecord[] = [];
            joiner.push(parsed, offset, out, Buffer.alloc(0));
            check(out);
            offset += 40;
            // FileProcessor's safeEnd: the consumed end, held back by a pending partial record
            const pending = joiner.pendingStart();
            const next = pending !== undefined && pending < offset ? pending : offset;
            expect(next).toBeGreaterThanOrEqual(limit);
            limit = next;
          }
        },
      ),
      RUNS,
    );
  });
});
