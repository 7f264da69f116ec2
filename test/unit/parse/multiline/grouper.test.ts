import { describe, expect, it } from 'vitest';
import {
  MultilineGrouper,
  type MultilineLimits,
  type SkipEntry,
} from '../../../../src/parse/multiline/grouper.ts';
import { builtinRule, type MultilineRuleName } from '../../../../src/parse/multiline/rules.ts';
import { type LogRecord, RecordFlag } from '../../../../src/parse/types.ts';

const { ParseError, InvalidUtf8, Split, Partial, Incomplete, Multiline } = RecordFlag;

type S = 'stdout' | 'stderr' | undefined;

/** A record; `null` for a record without a stream (a default would swallow an explicit undefined). */
function rec(
  offset: number,
  message: string,
  stream: 'stdout' | 'stderr' | null = 'stdout',
  flags = 0,
): LogRecord {
  return {
    offset,
    time: `t${offset}`,
    stream: stream ?? undefined,
    message,
    flags,
    error: undefined,
    part: 0,
  };
}

function grouper(limits: Partial<MultilineLimits> = {}, rule: MultilineRuleName = 'java'): MultilineGrouper {
  return new MultilineGrouper(builtinRule(rule), { maxLines: 100, maxBytes: 1 << 20, ...limits });
}

function feed(g: MultilineGrouper, recs: LogRecord[], flush = true): LogRecord[] {
  const out: LogRecord[] = [];
  for (const r of recs) g.push(r, out);
  if (flush) g.flush(out);
  return out;
}

/** [offset, stream, message, flags] of each output record: what a document is made of */
function docs(out: LogRecord[]): [number, S, string, number][] {
  return out.map((r) => [r.offset, r.stream, r.message, r.flags]);
}

const HEADER = '2024-05-14 10:21:09,877 ERROR [main] c.e.App - failed';
const EXC = 'java.lang.IllegalStateException: boom';
const AT = (n: number): string => `\tat com.example.App.m${n}(App.java:${n})`;
const CAUSE = 'Caused by: java.io.IOException: disk';
const MORE = '\t... 12 more';
const INFO = '2024-05-14 10:21:10,000 INFO  [main] c.e.App - next';

describe('MultilineGrouper: groups', () => {
  it('joins a group with \\n, keeps its first record offset/time/stream, ORs flags and adds Multiline', () => {
    const out = feed(grouper(), [
      rec(0, HEADER),
      { ...rec(10, EXC, 'stdout', Partial), lastOffset: 15 },
      { ...rec(20, AT(1), 'stdout', InvalidUtf8 | Partial), lastOffset: 25 },
      rec(30, INFO),
    ]);
    expect(out).toEqual([
      {
        offset: 0,
        // the last line of its last record
        lastOffset: 25,
        time: 't0',
        stream: 'stdout',
        message: `${HEADER}\n${EXC}\n${AT(1)}`,
        flags: Partial | InvalidUtf8 | Multiline,
        error: undefined,
        part: 0,
      },
      rec(30, INFO),
    ]);
    // a group of records of one line each ends at its last record
    expect(feed(grouper(), [rec(0, HEADER), rec(10, EXC), rec(30, INFO)])[0]!.lastOffset).toBe(10);
  });

  it('emits a lone record unchanged (the same object)', () => {
    const r = rec(0, INFO, 'stderr', InvalidUtf8);
    const out = feed(grouper(), [r]);
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(r);
  });

  it('emits a group only when the next record starts one (or on flush)', () => {
    const g = grouper();
    const out = feed(g, [rec(0, HEADER), rec(10, EXC), rec(20, AT(1))], false);
    expect(out).toEqual([]);
    expect(g.hasPending()).toBe(true);
    expect(g.pendingStart()).toBe(0);
    g.push(rec(30, INFO), out);
    expect(docs(out)).toEqual([[0, 'stdout', `${HEADER}\n${EXC}\n${AT(1)}`, Multiline]]);
    expect(g.pendingStart()).toBe(30);
  });
});

describe('MultilineGrouper: interleaved streams', () => {
  it('a stdout trace with stderr lines in between stays one record, and vice versa', () => {
    const out = feed(grouper(), [
      rec(0, HEADER, 'stdout'),
      rec(10, 'stderr one', 'stderr'),
      rec(20, EXC, 'stdout'),
      rec(30, HEADER, 'stderr'),
      rec(40, AT(1), 'stdout'),
      rec(50, EXC, 'stderr'),
      rec(60, 'stderr two?', 'stderr'),
      rec(70, AT(2), 'stdout'),
      rec(80, AT(9), 'stderr'),
      rec(90, INFO, 'stdout'),
      rec(100, INFO, 'stderr'),
    ]);
    expect(docs(out)).toEqual([
      [10, 'stderr', 'stderr one', 0],
      [30, 'stderr', `${HEADER}\n${EXC}`, Multiline],
      [0, 'stdout', `${HEADER}\n${EXC}\n${AT(1)}\n${AT(2)}`, Multiline],
      // a frame after an unrelated line is still a frame: it joins that line
      [60, 'stderr', `stderr two?\n${AT(9)}`, Multiline],
      [90, 'stdout', INFO, 0],
      [100, 'stderr', INFO, 0],
    ]);
  });

  it('records without a stream are a third stream', () => {
    const out = feed(grouper(), [
      rec(0, HEADER, null),
      rec(10, EXC, 'stdout'),
      rec(20, EXC, null),
      rec(30, AT(1), null),
    ]);
    expect(docs(out)).toEqual([
      // flushed at the end, by offset
      [0, undefined, `${HEADER}\n${EXC}\n${AT(1)}`, Multiline],
      [10, 'stdout', EXC, 0],
    ]);
  });
});

describe('MultilineGrouper: limits', () => {
  it('emits a group at maxLines records; the next continuation line starts a new group that goes on', () => {
    const g = grouper({ maxLines: 3 });
    const out = feed(g, [rec(0, HEADER), rec(10, EXC), rec(20, AT(1))], false);
    // emitted at once, not when the next record comes
    expect(docs(out)).toEqual([[0, 'stdout', `${HEADER}\n${EXC}\n${AT(1)}`, Multiline]]);
    expect(g.hasPending()).toBe(false);
    out.length = 0;
    feed(g, [rec(30, AT(2)), rec(40, CAUSE), rec(50, AT(3)), rec(60, MORE), rec(70, INFO)]).forEach((r) => {
      out.push(r);
    });
    expect(docs(out)).toEqual([
      [30, 'stdout', `${AT(2)}\n${CAUSE}\n${AT(3)}`, Multiline],
      [60, 'stdout', MORE, 0],
      [70, 'stdout', INFO, 0],
    ]);
  });

  it('maxLines 1 groups nothing', () => {
    const recs = [rec(0, HEADER), rec(10, EXC), rec(20, AT(1))];
    expect(feed(grouper({ maxLines: 1 }), recs)).toEqual(recs);
  });

  it('emits a group before a record would take it past maxBytes (UTF-8 bytes, with the \\n)', () => {
    const head = 'ERR é'; // 6 bytes ('é' is 2)
    const frame = '\tat é(x)'; // 9 bytes
    const recs = [rec(0, head), rec(10, frame), rec(20, frame), rec(30, frame)];
    // 6 + 1 + 9 = 16 fits; 16 + 1 + 9 = 26 does not; 9 + 1 + 9 = 19 fits
    const out = feed(grouper({ maxBytes: 20 }), recs);
    expect(docs(out)).toEqual([
      [0, 'stdout', `${head}\n${frame}`, Multiline],
      [20, 'stdout', `${frame}\n${frame}`, Multiline],
    ]);
  });

  it('a group that reaches maxBytes exactly is emitted at once', () => {
    const g = grouper({ maxBytes: 16 });
    const out = feed(g, [rec(0, 'ERR é'), rec(10, '\tat é(x)')], false);
    expect(out).toHaveLength(1);
    expect(g.hasPending()).toBe(false);
  });

  it('a single record bigger than maxBytes is emitted alone, at once', () => {
    const big = `${HEADER} ${'x'.repeat(100)}`;
    const g = grouper({ maxBytes: 100 });
    const out = feed(g, [rec(0, HEADER), rec(100, `\tat ${big}(A.java:1)`)], false);
    // the pending header goes first (the frame cannot join it), then the frame alone
    expect(docs(out)).toEqual([
      [0, 'stdout', HEADER, 0],
      [100, 'stdout', `\tat ${big}(A.java:1)`, 0],
    ]);
    expect(g.hasPending()).toBe(false);
    const next = feed(g, [rec(300, AT(1)), rec(310, AT(2))]);
    expect(docs(next)).toEqual([[300, 'stdout', `${AT(1)}\n${AT(2)}`, Multiline]]);
  });

  it('rejects limits below 1', () => {
    expect(() => grouper({ maxLines: 0 })).toThrow(RangeError);
    expect(() => grouper({ maxBytes: 0 })).toThrow(RangeError);
    expect(() => grouper({ maxBytes: Number.NaN })).toThrow(RangeError);
  });
});

describe('MultilineGrouper: flush, bypass, incomplete, reset', () => {
  it('flush emits every pending group by offset; the next continuation starts a new group', () => {
    const g = grouper();
    const out = feed(g, [rec(5, HEADER, 'stderr'), rec(0, HEADER, 'stdout'), rec(10, EXC, 'stdout')], false);
    g.flush(out);
    expect(docs(out)).toEqual([
      [0, 'stdout', `${HEADER}\n${EXC}`, Multiline],
      [5, 'stderr', HEADER, 0],
    ]);
    expect(g.hasPending()).toBe(false);
    expect(g.pendingStart()).toBeUndefined();
    const next = feed(g, [rec(20, AT(1)), rec(30, AT(2))]);
    expect(docs(next)).toEqual([[20, 'stdout', `${AT(1)}\n${AT(2)}`, Multiline]]);
  });

  it.each([
    ['ParseError', ParseError],
    ['Split', Split],
    ['Split | Partial', Split | Partial],
  ])('a %s record goes out as is, after its stream pending group, and never joins one', (_, flag) => {
    const bad: LogRecord = { ...rec(30, '\tat x.Y.z(Y.java:1)', 'stdout', flag), error: 'cri: bad', part: 2 };
    const out = feed(grouper(), [
      rec(0, HEADER),
      rec(10, EXC),
      rec(20, HEADER, 'stderr'),
      bad,
      rec(40, AT(1)),
      rec(50, EXC, 'stderr'),
    ]);
    expect(out[1]).toBe(bad);
    expect(docs(out)).toEqual([
      [0, 'stdout', `${HEADER}\n${EXC}`, Multiline],
      [30, 'stdout', '\tat x.Y.z(Y.java:1)', flag],
      // a new group after the bypass, even on a continuation line
      [20, 'stderr', `${HEADER}\n${EXC}`, Multiline],
      [40, 'stdout', AT(1), 0],
    ]);
  });

  it('an Incomplete record joins its group, which is then emitted at once', () => {
    const g = grouper();
    const out = feed(g, [rec(0, HEADER), rec(10, EXC, 'stdout', Incomplete)], false);
    expect(docs(out)).toEqual([[0, 'stdout', `${HEADER}\n${EXC}`, Incomplete | Multiline]]);
    expect(g.hasPending()).toBe(false);
  });

  it('an Incomplete record that starts a group is emitted alone at once', () => {
    const g = grouper();
    const out = feed(g, [rec(0, HEADER), rec(10, INFO, 'stdout', Incomplete)], false);
    expect(docs(out)).toEqual([
      [0, 'stdout', HEADER, 0],
      [10, 'stdout', INFO, Incomplete],
    ]);
    expect(g.hasPending()).toBe(false);
  });

  it('reset forgets pending groups and skip state', () => {
    const g = grouper();
    g.skipThrough([{ stream: 'stdout', through: 100 }]);
    feed(g, [rec(200, HEADER)], false);
    g.reset();
    expect(g.hasPending()).toBe(false);
    expect(g.resumePoint(0)).toEqual({ offset: 0, skip: [] });
    // after a truncation the file is read again from 0: nothing is skipped any more
    expect(docs(feed(g, [rec(0, HEADER), rec(10, EXC)]))).toEqual([
      [0, 'stdout', `${HEADER}\n${EXC}`, Multiline],
    ]);
  });
});

/**
 * Runs `recs` (with `flush` markers) through a grouper, takes resumePoint(limit) after the first
 * `cut` entries, then restarts like the agent would: a fresh grouper told skipThrough, fed every
 * record at or after the resume offset in the same order. Returns what the first grouper emitted
 * after the cut and what the restarted one emitted.
 */
function restart(
  entries: (LogRecord | 'flush')[],
  cut: number,
  limit: number,
  limits: Partial<MultilineLimits> = {},
): { before: LogRecord[]; after: LogRecord[]; replay: LogRecord[]; offset: number; skip: SkipEntry[] } {
  const g = grouper(limits);
  const before: LogRecord[] = [];
  const after: LogRecord[] = [];
  entries.forEach((e, i) => {
    const out = i < cut ? before : after;
    if (e === 'flush') g.flush(out);
    else g.push(e, out);
  });
  g.flush(after);
  const probe = grouper(limits);
  const point = (() => {
    const out: LogRecord[] = [];
    for (const e of entries.slice(0, cut)) {
      if (e === 'flush') probe.flush(out);
      else probe.push(e, out);
    }
    return probe.resumePoint(limit);
  })();
  const r = grouper(limits);
  r.skipThrough(point.skip);
  const replay: LogRecord[] = [];
  entries.forEach((e, i) => {
    if (e === 'flush') {
      if (i >= cut) r.flush(replay);
    } else if (e.offset >= point.offset) r.push(e, replay);
  });
  r.flush(replay);
  return { before, after, replay, ...point };
}

describe('MultilineGrouper: exact restarts', () => {
  it('pendingStart holds the checkpoint back; resumePoint takes the smaller of it and the limit', () => {
    const g = grouper();
    feed(g, [rec(0, INFO), rec(10, HEADER), rec(20, EXC)], false);
    expect(g.resumePoint(30)).toEqual({ offset: 10, skip: [] });
    expect(g.resumePoint(5)).toEqual({ offset: 5, skip: [] });
    feed(g, [rec(30, INFO)], false);
    // the trace [10..20] is out; held back below it, a restart would read it again
    expect(g.resumePoint(5)).toEqual({ offset: 5, skip: [{ stream: 'stdout', through: 20 }] });
    expect(g.resumePoint(40)).toEqual({ offset: 30, skip: [] });
  });

  it('skips the tail of a group of another stream that straddles the resume offset', () => {
    const entries = [
      rec(0, HEADER, 'stdout'),
      rec(10, EXC, 'stdout'),
      rec(20, HEADER, 'stderr'), // pending at the cut: the resume offset
      rec(30, AT(1), 'stdout'),
      rec(40, AT(2), 'stdout'),
      rec(50, INFO, 'stdout'), // emits the stdout trace [0..40]
      rec(60, EXC, 'stderr'),
      rec(70, INFO, 'stderr'),
    ];
    const r = restart(entries, 6, 60);
    expect(r.offset).toBe(20);
    expect(r.skip).toEqual([{ stream: 'stdout', through: 40 }]);
    // without the skip, records 30 and 40 would come back as a new group at offset 30
    expect(docs(r.replay)).toEqual(docs(r.after));
    expect(docs(r.replay)).toEqual([
      [20, 'stderr', `${HEADER}\n${EXC}`, Multiline],
      [50, 'stdout', INFO, 0],
      [70, 'stderr', INFO, 0],
    ]);
  });

  it('skips the fragments of a joined record of another stream that straddles the resume offset', () => {
    // stderr's record was joined from fragments at 10 (P) and 30 (F): read again from 20, the
    // joiner gives the lone fragment at 30 as a record of its own, which must not be sent
    const g = grouper();
    const sent = feed(
      g,
      [
        rec(20, HEADER, 'stdout'), // pending: the resume offset
        { ...rec(10, 'joined', 'stderr', Partial), lastOffset: 30 },
        rec(35, INFO, 'stderr'), // emits the joined record
      ],
      false,
    );
    expect(docs(sent)).toEqual([[10, 'stderr', 'joined', Partial]]);
    const point = g.resumePoint(50);
    expect(point).toEqual({ offset: 20, skip: [{ stream: 'stderr', through: 30 }] });
    const r = grouper();
    r.skipThrough(point.skip);
    const replay = feed(r, [
      rec(20, HEADER, 'stdout'),
      rec(30, 'ined', 'stderr', Partial),
      rec(35, INFO, 'stderr'),
      rec(40, INFO, 'stdout'),
    ]);
    expect(docs(replay)).toEqual([
      [20, 'stdout', HEADER, 0],
      [35, 'stderr', INFO, 0],
      [40, 'stdout', INFO, 0],
    ]);
  });

  it('is exact after a maxLines cut: the next group starts on a continuation line', () => {
    const entries = [
      rec(0, HEADER, 'stdout'),
      rec(5, INFO, 'stderr'), // held back by the caller (a pending CRI partial line, say)
      rec(10, EXC, 'stdout'),
      rec(20, AT(1), 'stdout'), // group [0..20] emitted at maxLines
      rec(30, AT(2), 'stdout'),
      rec(40, AT(3), 'stdout'),
      rec(50, AT(4), 'stdout'), // group [30..50] emitted at maxLines
      rec(60, AT(5), 'stdout'),
      rec(70, INFO, 'stdout'),
    ];
    // cut inside the second group: it is pending, so it is read again whole
    const inside = restart(entries, 6, 5, { maxLines: 3 });
    expect(inside.offset).toBe(5);
    expect(inside.skip).toEqual([{ stream: 'stdout', through: 20 }]);
    expect(docs(inside.replay)).toEqual(docs(inside.after));
    // cut after it: its records are skipped by offset, and AT(5) starts a group again
    const r = restart(entries, 7, 5, { maxLines: 3 });
    expect(r.offset).toBe(5);
    expect(r.skip).toEqual([{ stream: 'stdout', through: 50 }]);
    expect(docs(r.replay)).toEqual(docs(r.after));
    expect(docs(r.after)).toEqual([
      [60, 'stdout', AT(5), 0],
      [5, 'stderr', INFO, 0],
      [70, 'stdout', INFO, 0],
    ]);
  });

  it('is exact when a limit below pendingStart precedes a silence flush', () => {
    // stdout is held back at 0 (say a partial line); stderr's group is flushed by silence, then
    // stderr goes on with a continuation line. Replaying from 0 must not glue them together.
    const entries: (LogRecord | 'flush')[] = [rec(10, HEADER, 'stderr'), 'flush', rec(20, AT(1), 'stderr')];
    const r = restart(entries, 2, 0);
    expect(r.offset).toBe(0);
    expect(r.skip).toEqual([{ stream: 'stderr', through: 10 }]);
    expect(docs(r.before)).toEqual([[10, 'stderr', HEADER, 0]]);
    expect(docs(r.replay)).toEqual(docs(r.after));
    expect(docs(r.replay)).toEqual([[20, 'stderr', AT(1), 0]]);
  });

  it('carries skip entries into later resume points of the restarted grouper', () => {
    const g = grouper();
    g.skipThrough([
      { stream: 'stdout', through: 40 },
      { stream: undefined, through: 7 },
    ]);
    const out = feed(g, [rec(30, AT(1)), rec(40, AT(2)), rec(50, INFO), rec(60, AT(1))], false);
    expect(out).toEqual([]);
    // still held at 20 (by the caller): the skipped records would be read again
    expect(g.resumePoint(20)).toEqual({
      offset: 20,
      skip: [{ stream: 'stdout', through: 40 }],
    });
    expect(g.resumePoint(5)).toEqual({
      offset: 5,
      skip: [
        { stream: 'stdout', through: 40 },
        { stream: undefined, through: 7 },
      ],
    });
  });

  it('a restart on a stream whose bypass records come before an earlier-offset joined record', () => {
    // the joiner emits pieces of an over-long line (Split, at 100 and 200) before the partial
    // record that began at 0 completes: per stream, only grouped records are in file order
    const entries = [
      rec(100, 'piece 1', 'stdout', Split),
      rec(200, 'piece 2', 'stdout', Split),
      rec(0, HEADER, 'stdout', Partial),
      rec(300, EXC, 'stdout'),
      rec(400, INFO, 'stdout'),
    ];
    for (let cut = 0; cut <= entries.length; cut++) {
      const rest = entries.slice(cut).map((e) => e.offset);
      const limit = rest.length === 0 ? 500 : Math.min(...rest);
      const r = restart(entries, cut, limit);
      // every document the first run sends after the cut comes again, and nothing else but bypass
      // records sent before the cut (same id, same content)
      const again = docs(r.replay).filter((d) => !docs(r.after).some((a) => a[0] === d[0]));
      expect(docs(r.replay)).toEqual(expect.arrayContaining(docs(r.after)));
      for (const d of again) expect(docs(r.before)).toContainEqual(d);
    }
  });
});

describe('MultilineGrouper.passThrough', () => {
  it('emits every record at once, alone, and never holds a checkpoint back', () => {
    const g = MultilineGrouper.passThrough();
    expect(g.rule).toBeUndefined();
    const recs = [rec(0, HEADER), rec(10, EXC), rec(20, AT(1), 'stderr'), rec(30, 'piece', 'stdout', Split)];
    const out: LogRecord[] = [];
    for (const r of recs) {
      g.push(r, out);
      expect(g.hasPending()).toBe(false);
      expect(g.pendingStart()).toBeUndefined();
    }
    expect(out).toStrictEqual(recs);
    for (let i = 0; i < recs.length; i++) expect(out[i]).toBe(recs[i]);
    g.flush(out);
    expect(out).toHaveLength(recs.length);
    expect(g.resumePoint(40)).toEqual({ offset: 40, skip: [] });
  });

  it('tracks what was sent per stream by last line, and skips it after a restart', () => {
    const g = MultilineGrouper.passThrough();
    const out: LogRecord[] = [];
    g.push(rec(5, INFO, 'stdout'), out);
    g.push({ ...rec(10, 'joined', 'stderr', Partial), lastOffset: 30 }, out);
    // the caller holds the checkpoint back at 20 (a pending partial line of stdout, say)
    expect(g.resumePoint(20)).toEqual({ offset: 20, skip: [{ stream: 'stderr', through: 30 }] });
    g.push(rec(40, INFO, 'stderr'), out);
    // bypass records are not counted (see the bypass restart test above)
    g.push(rec(50, 'piece', 'stdout', Split), out);
    const point = g.resumePoint(20);
    expect(point).toEqual({ offset: 20, skip: [{ stream: 'stderr', through: 40 }] });
    expect(g.resumePoint(45)).toEqual({ offset: 45, skip: [] });

    const r = MultilineGrouper.passThrough();
    r.skipThrough(point.skip);
    const replay = feed(r, [
      rec(30, 'ined', 'stderr'),
      rec(40, INFO, 'stderr'),
      rec(50, 'piece', 'stdout', Split),
      { ...rec(20, 'pending', 'stdout', Partial), lastOffset: 55 },
      rec(60, 'new', 'stderr'),
    ]);
    expect(docs(replay)).toEqual([
      [50, 'stdout', 'piece', Split],
      [20, 'stdout', 'pending', Partial],
      [60, 'stderr', 'new', 0],
    ]);
    r.reset();
    expect(feed(r, [rec(30, 'ined', 'stderr')])).toHaveLength(1);
  });
});
