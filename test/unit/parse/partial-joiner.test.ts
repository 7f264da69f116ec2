import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCri } from '../../../src/parse/cri.ts';
import { parseDocker } from '../../../src/parse/docker-json.ts';
import { PartialJoiner } from '../../../src/parse/partial-joiner.ts';
import {
  type LineParser,
  type LogRecord,
  malformedLine,
  type ParsedLine,
  RecordFlag,
} from '../../../src/parse/types.ts';

const { ParseError, InvalidUtf8, Split, Partial, Incomplete } = RecordFlag;

function line(
  stream: 'stdout' | 'stderr' | undefined,
  partial: boolean,
  message: string,
  time: string | undefined = 't0',
  invalidUtf8 = false,
): ParsedLine {
  return { time, stream, partial, message, messageStart: -1, messageEnd: -1, error: undefined, invalidUtf8 };
}

function malformed(message: string, error = 'cri: bad stream', invalidUtf8 = false): ParsedLine {
  return malformedLine(message, invalidUtf8, error);
}

/** The buffer for lines made up here, which have no byte range to read. */
const NO_BUF = Buffer.alloc(0);

/**
 * A record on stdout at time t0 unless `fields` says otherwise (an explicit undefined counts). A
 * joined one (Partial) has a `lastOffset`: `offset` unless `fields` has another.
 */
function rec(offset: number, message: string, flags: number, fields: Partial<LogRecord> = {}): LogRecord {
  const last = (flags & Partial) !== 0 ? { lastOffset: offset } : {};
  return {
    offset,
    ...last,
    time: 't0',
    stream: 'stdout',
    message,
    flags,
    error: undefined,
    part: 0,
    ...fields,
  };
}

const ERROR_LINE = { time: undefined, stream: undefined };

/** Feeds `[offset, line]` pairs and returns everything emitted. */
function run(joiner: PartialJoiner, lines: [number, ParsedLine][]): LogRecord[] {
  const out: LogRecord[] = [];
  for (const [offset, l] of lines) joiner.push(l, offset, out, NO_BUF);
  return out;
}

describe('PartialJoiner', () => {
  it.each<[string, [number, ParsedLine][], LogRecord[]]>([
    ['a full line', [[0, line('stdout', false, 'hello')]], [rec(0, 'hello', 0)]],
    [
      'a full line with invalid UTF-8',
      [[7, line('stderr', false, 'a\ufffd', 't1', true)]],
      [rec(7, 'a\ufffd', InvalidUtf8, { stream: 'stderr', time: 't1' })],
    ],
    [
      'a line without a stream (text)',
      [[3, { ...line(undefined, false, 'x'), time: undefined }]],
      [rec(3, 'x', 0, { stream: undefined, time: undefined })],
    ],
    [
      'P P F joined, with the first fragment offset and time',
      [
        [10, line('stdout', true, 'ab', 't1')],
        [50, line('stdout', true, 'cd', 't2')],
        [90, line('stdout', false, 'ef', 't3')],
      ],
      [rec(10, 'abcdef', Partial, { time: 't1', lastOffset: 90 })],
    ],
    [
      'interleaved stdout and stderr partials',
      [
        [0, line('stdout', true, 'o1', 'a')],
        [10, line('stderr', true, 'e1', 'b')],
        [20, line('stdout', true, 'o2', 'c')],
        [30, line('stderr', false, 'e2', 'd')],
        [40, line('stdout', false, 'o3', 'e')],
        [50, line('stderr', false, 'solo', 'f')],
      ],
      [
        rec(10, 'e1e2', Partial, { stream: 'stderr', time: 'b', lastOffset: 30 }),
        rec(0, 'o1o2o3', Partial, { time: 'a', lastOffset: 40 }),
        rec(50, 'solo', 0, { stream: 'stderr', time: 'f' }),
      ],
    ],
    [
      'a parse error inside a pending sequence is emitted at once and leaves it alone',
      [
        [0, line('stdout', true, 'ab')],
        [40, malformed('garbage')],
        [48, line('stdout', false, 'cd')],
      ],
      [
        rec(40, 'garbage', ParseError, { ...ERROR_LINE, error: 'cri: bad stream' }),
        rec(0, 'abcd', Partial, { lastOffset: 48 }),
      ],
    ],
    [
      'a parse error with invalid UTF-8',
      [[5, malformed('\ufffd', 'cri: bad timestamp', true)]],
      [rec(5, '\ufffd', ParseError | InvalidUtf8, { ...ERROR_LINE, error: 'cri: bad timestamp' })],
    ],
    [
      'invalid UTF-8 in one fragment flags the joined record',
      [
        [0, line('stdout', true, 'a\ufffd', 't0', true)],
        [20, line('stdout', false, 'b')],
      ],
      [rec(0, 'a\ufffdb', Partial | InvalidUtf8, { lastOffset: 20 })],
    ],
    [
      'empty fragments',
      [
        [0, line('stdout', true, '')],
        [20, line('stdout', false, '')],
      ],
      [rec(0, '', Partial, { lastOffset: 20 })],
    ],
  ])('%s', (_name, lines, expected) => {
    expect(run(new PartialJoiner(1024), lines)).toStrictEqual(expected);
  });

  describe('pieces at maxBytes', () => {
    it('counts UTF-8 bytes, not characters', () => {
      const j = new PartialJoiner(10);
      // 'ééé' is 3 characters but 6 bytes: 5 × 'é' reaches 10 bytes, 5 × 'a' does not.
      expect(
        run(j, [
          [0, line('stdout', true, 'ééé')],
          [10, line('stdout', true, 'é')],
          [20, line('stdout', true, 'é')],
          // a full piece is held until the next fragment shows the record goes on
          [30, line('stdout', true, 'z')],
        ]),
      ).toStrictEqual([rec(0, 'ééééé', Split | Partial, { lastOffset: 20 })]);
      expect(
        run(new PartialJoiner(10), [
          [0, line('stdout', true, 'aaa')],
          [10, line('stdout', true, 'a')],
          [20, line('stdout', true, 'a')],
          [30, line('stdout', false, 'b')],
        ]),
      ).toStrictEqual([rec(0, 'aaaaab', Partial, { lastOffset: 30 })]);
    });

    it('numbers pieces, restarts offsets per piece and keeps the first time', () => {
      const j = new PartialJoiner(4);
      const out = run(j, [
        [0, line('stdout', true, 'aaa', 't0')],
        [10, line('stdout', true, 'bb', 't1')],
        [20, line('stdout', true, 'c', 't2')],
        [30, line('stdout', true, 'dddd', 't3')],
        [40, line('stdout', false, 'e', 't4')],
      ]);
      expect(out).toStrictEqual([
        rec(0, 'aaabb', Split | Partial, { lastOffset: 10 }),
        rec(20, 'cdddd', Split | Partial, { part: 1, lastOffset: 30 }),
        rec(40, 'e', Split | Partial, { part: 2 }),
      ]);
      expect(j.pendingStart()).toBeUndefined();
    });

    it('gives a piece InvalidUtf8 only for its own fragments', () => {
      const out = run(new PartialJoiner(2), [
        [0, line('stdout', true, '\ufffd', 't0', true)],
        [10, line('stdout', true, 'x')],
        [20, line('stdout', false, 'y')],
      ]);
      expect(out).toStrictEqual([
        rec(0, '\ufffd', Split | Partial | InvalidUtf8),
        rec(10, 'xy', Split | Partial, { part: 1, lastOffset: 20 }),
      ]);
    });

    it.each([7, 64, 1000, 4096])('splits 1,000 fragments at maxBytes %i, losing no byte', (maxBytes) => {
      const j = new PartialJoiner(maxBytes);
      const fragments: string[] = [];
      const offsets: number[] = [];
      const out: LogRecord[] = [];
      let offset = 0;
      for (let i = 0; i < 1000; i++) {
        const text = i % 3 === 0 ? `frag-${i}-é日😀|` : `f${'x'.repeat(i % 17)}|`;
        fragments.push(text);
        offsets.push(offset);
        j.push(line('stdout', i < 999, text, `t${i}`), offset, out, NO_BUF);
        offset += 40 + Buffer.byteLength(text);
      }

      const original = fragments.join('');
      expect(out.map((r) => r.message).join('')).toBe(original);
      expect(out.map((r) => r.part)).toStrictEqual(out.map((_r, i) => i));
      expect(new Set(out.map((r) => r.offset)).size).toBe(out.length);
      expect(out.every((r) => r.time === 't0' && r.stream === 'stdout' && r.error === undefined)).toBe(true);
      expect(out.every((r) => r.flags === (Split | Partial))).toBe(out.length > 1);
      expect(j.pendingStart()).toBeUndefined();

      // Every piece but the last is the shortest run of whole fragments reaching maxBytes.
      let next = 0;
      for (const [i, piece] of out.entries()) {
        expect(piece.offset).toBe(offsets[next]);
        let bytes = 0;
        let taken = '';
        while (taken.length < piece.message.length) {
          taken += fragments[next];
          bytes += Buffer.byteLength(fragments[next]!);
          next++;
        }
        expect(taken).toBe(piece.message);
        if (i < out.length - 1) {
          expect(bytes).toBeGreaterThanOrEqual(maxBytes);
          expect(bytes - Buffer.byteLength(fragments[next - 1]!)).toBeLessThan(maxBytes);
        }
      }
      expect(next).toBe(1000);
    });
  });

  describe('pendingStart', () => {
    it('is the smallest offset of a pending piece', () => {
      const j = new PartialJoiner(1024);
      const out: LogRecord[] = [];
      expect(j.pendingStart()).toBeUndefined();
      j.push(line('stdout', false, 'done'), 0, out, NO_BUF);
      expect(j.pendingStart()).toBeUndefined();
      j.push(line('stderr', true, 'e1'), 10, out, NO_BUF);
      expect(j.pendingStart()).toBe(10);
      j.push(line('stdout', true, 'o1'), 20, out, NO_BUF);
      j.push(line('stdout', true, 'o2'), 30, out, NO_BUF);
      expect(j.pendingStart()).toBe(10);
      j.push(line('stderr', false, 'e2'), 40, out, NO_BUF);
      expect(j.pendingStart()).toBe(20);
      j.push(malformed('x'), 50, out, NO_BUF);
      expect(j.pendingStart()).toBe(20);
      j.push(line('stdout', false, 'o3'), 60, out, NO_BUF);
      expect(j.pendingStart()).toBeUndefined();
      expect(out.map((r) => r.offset)).toStrictEqual([0, 10, 50, 20]);
    });

    it('moves to the first fragment of the current piece once a piece is out', () => {
      const j = new PartialJoiner(3);
      const out: LogRecord[] = [];
      j.push(line('stdout', true, 'abc'), 0, out, NO_BUF);
      // the full piece is held (not out yet): the checkpoint stays before it
      expect(j.pendingStart()).toBe(0);
      j.push(line('stdout', true, 'd'), 10, out, NO_BUF);
      expect(out).toStrictEqual([rec(0, 'abc', Split | Partial)]);
      expect(j.pendingStart()).toBe(10);
    });
  });

  describe('drain', () => {
    it('emits pending pieces as Incomplete by offset, then holds nothing', () => {
      const j = new PartialJoiner(4);
      const out = run(j, [
        [0, line('stderr', true, 'e', 'b')],
        [5, line('stdout', true, 'abcd', 'a')],
        [10, line('stdout', true, 'x', 'a2')],
        [20, line('stderr', true, 'f', 'b2', true)],
      ]);
      expect(out).toStrictEqual([rec(5, 'abcd', Split | Partial, { time: 'a' })]);
      j.drain(out);
      expect(out.slice(1)).toStrictEqual([
        rec(0, 'ef', Partial | Incomplete | InvalidUtf8, { stream: 'stderr', time: 'b', lastOffset: 20 }),
        rec(10, 'x', Split | Partial | Incomplete, { time: 'a', part: 1 }),
      ]);
      expect(j.pendingStart()).toBeUndefined();
      const after: LogRecord[] = [];
      j.drain(after);
      j.push(line('stdout', false, 'next'), 30, after, NO_BUF);
      expect(after).toStrictEqual([rec(30, 'next', 0)]);
    });

    it('marks a held full last piece incomplete', () => {
      const j = new PartialJoiner(2);
      const out = run(j, [[0, line('stdout', true, 'ab')]]);
      expect(out).toStrictEqual([]);
      j.drain(out);
      expect(out).toStrictEqual([rec(0, 'ab', Split | Partial | Incomplete)]);
    });
  });

  it('reset forgets pending fragments', () => {
    const j = new PartialJoiner(1024);
    const out = run(j, [
      [0, line('stdout', true, 'lost')],
      [10, line('stderr', true, 'lost too')],
    ]);
    j.reset();
    expect(j.pendingStart()).toBeUndefined();
    j.push(line('stdout', false, 'fresh'), 0, out, NO_BUF);
    expect(out).toStrictEqual([rec(0, 'fresh', 0)]);
  });

  const big = 'x'.repeat(16 * 1024);
  it.each<[string, LineParser, string[]]>([
    ['CRI', parseCri, [`2026-11-22T01:02:03.1Z stdout P ${big}`, '2026-11-22T01:02:03.2Z stdout F tail']],
    [
      'docker',
      parseDocker,
      [
        `{"log":"${big}","stream":"stdout","time":"2026-11-22T01:02:03.1Z"}`,
        '{"log":"tail\\n","stream":"stdout","time":"2026-11-22T01:02:03.2Z"}',
      ],
    ],
  ])('joins a 16 KiB %s partial and its end into one record', (_format, parse, physical) => {
    const file = Buffer.from(`${physical.join('\n')}\n`);
    const j = new PartialJoiner(1024 * 1024);
    const out: LogRecord[] = [];
    for (
      let start = 0, end = file.indexOf(0x0a);
      end >= 0;
      start = end + 1, end = file.indexOf(0x0a, start)
    ) {
      j.push(parse(file, start, end), start, out, file);
    }
    expect(out).toStrictEqual([
      rec(0, `${big}tail`, Partial, { time: '2026-11-22T01:02:03.1Z', lastOffset: physical[0]!.length + 1 }),
    ]);
  });
});

describe('PartialJoiner on CRI bytes', () => {
  const TS = '2026-11-22T01:02:03.123456789Z';
  const EURO = [0xe2, 0x82, 0xac]; // '€'
  const GRIN = [0xf0, 0x9f, 0x98, 0x80]; // '😀'

  /** One CRI line as a runtime writes it: the fragment's bytes follow the prefix as they are. */
  function cri(stream: 'stdout' | 'stderr', tag: 'P' | 'F', ...parts: (string | number[])[]): Buffer {
    return bytes(`${TS} ${stream} ${tag} `, ...parts);
  }

  function bytes(...parts: (string | number[])[]): Buffer {
    return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
  }

  /**
   * Parses and pushes each line from one read buffer that is overwritten after every push, as
   * FileProcessor reuses its buffer across reads, so bytes the joiner kept without copying show.
   * Lines sit at their file offsets as if written one after the other, each ending with '\n'.
   */
  function feed(joiner: PartialJoiner, lines: Buffer[], out: LogRecord[] = []): LogRecord[] {
    const scratch = Buffer.alloc(64 + Math.max(0, ...lines.map((l) => l.length)));
    let offset = 0;
    for (const [i, l] of lines.entries()) {
      const at = i % 7; // a line rarely starts at 0 of a read buffer
      scratch.fill(0x7e);
      l.copy(scratch, at);
      joiner.push(parseCri(scratch, at, at + l.length), offset, out, scratch);
      scratch.fill(0xff);
      offset += l.length + 1;
    }
    return out;
  }

  /** File offset of line `n` of `lines`. */
  function offsetOf(lines: Buffer[], n: number): number {
    return lines.slice(0, n).reduce((sum, l) => sum + l.length + 1, 0);
  }

  function criRec(
    offset: number,
    message: string,
    flags: number,
    fields: Partial<LogRecord> = {},
  ): LogRecord {
    return rec(offset, message, flags, { time: TS, ...fields });
  }

  it.each<[string, Buffer[], (lines: Buffer[]) => LogRecord[]]>([
    [
      'a 3-byte character cut after its first byte',
      [cri('stdout', 'P', 'a', EURO.slice(0, 1)), cri('stdout', 'F', EURO.slice(1), 'b')],
      (lines) => [criRec(0, 'a€b', Partial, { lastOffset: offsetOf(lines, 1) })],
    ],
    [
      'a 3-byte character cut over three fragments',
      [
        cri('stdout', 'P', EURO.slice(0, 1)),
        cri('stdout', 'P', EURO.slice(1, 2)),
        cri('stdout', 'F', EURO.slice(2)),
      ],
      (lines) => [criRec(0, '€', Partial, { lastOffset: offsetOf(lines, 2) })],
    ],
    ...[1, 2, 3].map<[string, Buffer[], (lines: Buffer[]) => LogRecord[]]>((k) => [
      `a 4-byte emoji cut after byte ${k}`,
      [cri('stdout', 'P', 'x', GRIN.slice(0, k)), cri('stdout', 'F', GRIN.slice(k), 'y')],
      (lines) => [criRec(0, 'x😀y', Partial, { lastOffset: offsetOf(lines, 1) })],
    ]),
    [
      'characters cut on both streams, interleaved',
      [
        cri('stdout', 'P', EURO.slice(0, 2)),
        cri('stderr', 'P', GRIN.slice(0, 1)),
        cri('stdout', 'F', EURO.slice(2)),
        cri('stderr', 'F', GRIN.slice(1)),
      ],
      (lines) => [
        criRec(0, '€', Partial, { lastOffset: offsetOf(lines, 2) }),
        criRec(offsetOf(lines, 1), '😀', Partial, { stream: 'stderr', lastOffset: offsetOf(lines, 3) }),
      ],
    ],
    [
      'a literal U+FFFD cut in two is still valid',
      [cri('stdout', 'P', [0xef, 0xbf]), cri('stdout', 'F', [0xbd])],
      (lines) => [criRec(0, '\ufffd', Partial, { lastOffset: offsetOf(lines, 1) })],
    ],
    [
      'an invalid byte in a fragment',
      [cri('stdout', 'P', 'a', [0xff]), cri('stdout', 'F', 'b')],
      (lines) => [criRec(0, 'a\ufffdb', Partial | InvalidUtf8, { lastOffset: offsetOf(lines, 1) })],
    ],
    [
      'a character the program never finished',
      [cri('stdout', 'P', 'a', EURO.slice(0, 2)), cri('stdout', 'F', 'b')],
      (lines) => [criRec(0, 'a\ufffdb', Partial | InvalidUtf8, { lastOffset: offsetOf(lines, 1) })],
    ],
    [
      'a cut character in a full line, joined with nothing',
      [cri('stdout', 'F', 'a', EURO.slice(0, 2))],
      () => [criRec(0, 'a\ufffd', InvalidUtf8)],
    ],
  ])('%s', (_name, lines, expected) => {
    expect(feed(new PartialJoiner(1024), lines)).toStrictEqual(expected(lines));
  });

  it('drains a record ending inside a character as invalid', () => {
    const j = new PartialJoiner(1024);
    const out = feed(j, [cri('stdout', 'P', 'a', GRIN.slice(0, 3))]);
    j.drain(out);
    expect(out).toStrictEqual([criRec(0, 'a\ufffd', Partial | Incomplete | InvalidUtf8)]);
  });

  it('joins a 16 KiB fragment whose last byte starts a character', () => {
    const text = `${'x'.repeat(16 * 1024 - 1)}€ tail`;
    const all = Buffer.from(text);
    const lines = [
      cri('stdout', 'P', [...all.subarray(0, 16 * 1024)]),
      cri('stdout', 'F', [...all.subarray(16 * 1024)]),
    ];
    expect(feed(new PartialJoiner(1024 * 1024), lines)).toStrictEqual([
      criRec(0, text, Partial, { lastOffset: offsetOf(lines, 1) }),
    ]);
  });

  describe('pieces at maxBytes', () => {
    it('moves a character the piece would end inside of to the next piece, with its line offset', () => {
      const lines = [
        cri('stdout', 'P', 'abc'),
        cri('stdout', 'P', 'd', GRIN.slice(0, 2)),
        cri('stdout', 'F', GRIN.slice(2), 'e'),
      ];
      const j = new PartialJoiner(4);
      const out = feed(j, lines.slice(0, 2));
      // its last line is the one that made it reach maxBytes
      expect(out).toStrictEqual([criRec(0, 'abcd', Split | Partial, { lastOffset: offsetOf(lines, 1) })]);
      // the emoji's first bytes are not delivered, so a checkpoint stays before their line
      expect(j.pendingStart()).toBe(offsetOf(lines, 1));
      feed(j, lines.slice(2), out);
      expect(out.slice(1)).toStrictEqual([
        // (this second feed numbers its lines from 0)
        criRec(offsetOf(lines, 1), '😀e', Split | Partial, { part: 1, lastOffset: 0 }),
      ]);
    });

    it('holds a piece that is one unfinished character until its last byte', () => {
      const out = feed(new PartialJoiner(2), [
        cri('stdout', 'P', GRIN.slice(0, 2)),
        cri('stdout', 'P', GRIN.slice(2)),
        cri('stdout', 'F', 'x'),
      ]);
      expect(out.map((r) => [r.message, r.flags, r.part])).toStrictEqual([
        ['😀', Split | Partial, 0],
        ['x', Split | Partial, 1],
      ]);
    });

    it('counts bytes exactly', () => {
      // 3 + 3 bytes reach 6; 3 + 2 bytes do not
      const euro = cri('stdout', 'P', EURO);
      expect(feed(new PartialJoiner(6), [euro, euro, euro])).toStrictEqual([
        criRec(0, '€€', Split | Partial, { lastOffset: euro.length + 1 }),
      ]);
      expect(feed(new PartialJoiner(6), [euro, cri('stdout', 'P', 'ab')])).toStrictEqual([]);
    });

    it('never gives two pieces one offset (a document id), even when a fragment alone passes maxBytes', () => {
      // '€' is 3 bytes: with maxBytes 4 a single 6-byte fragment passes the limit and ends mid-character
      const j = new PartialJoiner(4);
      const bytes = [...Buffer.from('a€€')];
      const out = feed(j, [cri('stdout', 'P', bytes.slice(0, 6)), cri('stdout', 'F', bytes.slice(6))]);
      const offsets = out.map((r) => r.offset);
      expect(new Set(offsets).size).toBe(offsets.length);
      expect(Buffer.concat(out.map((r) => Buffer.from(r.message))).length).toBeGreaterThan(0);
      expect(out[0]?.flags).toBe(Split | Partial | InvalidUtf8);
    });

    it('never cuts a character when fragments are shorter than maxBytes, whatever the cuts', () => {
      const alphabet = ['a', 'é', '€', '日', '😀', ' '];
      fc.assert(
        fc.property(
          fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 200 }),
          fc.array(fc.nat(), { maxLength: 40 }),
          fc.integer({ min: 1, max: 64 }),
          (chars, cuts, maxBytes) => {
            const text = chars.join('');
            const all = Buffer.from(text);
            const bounds = [...new Set(cuts.map((c) => c % all.length))].sort((a, b) => a - b);
            const edges = [0, ...bounds.filter((b) => b > 0), all.length];
            const lines = edges
              .slice(1)
              .map((e, i) =>
                cri('stdout', i === edges.length - 2 ? 'F' : 'P', [...all.subarray(edges[i], e)]),
              );

            fc.pre(edges.slice(1).every((e, i) => e - edges[i]! < maxBytes));
            const j = new PartialJoiner(maxBytes);
            const out = feed(j, lines);
            const offsets = out.map((r) => r.offset);
            expect(new Set(offsets).size).toBe(offsets.length);
            expect(out.map((r) => r.message).join('')).toBe(text);
            expect(out.map((r) => r.part)).toStrictEqual(out.map((_r, i) => i));
            expect(out.every((r) => (r.flags & InvalidUtf8) === 0 && !r.message.includes('\ufffd'))).toBe(
              true,
            );
            // a piece gives back at most an unfinished character (3 bytes) of what reached maxBytes
            for (const r of out.slice(0, -1)) {
              expect(Buffer.byteLength(r.message)).toBeGreaterThanOrEqual(Math.max(1, maxBytes - 3));
            }
            expect(j.pendingStart()).toBeUndefined();
          },
        ),
      );
    });
  });
});
