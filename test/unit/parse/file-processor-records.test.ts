// The records stage inside FileProcessor (docs/multiline.md, docs/parsing.md, docs/filters.md):
// partial-line joining, then multiline grouping, then per record the size limit, the parser,
// encoding, filters and drop throttling; and the checkpoints (`safeEnd`, `continuation`) that make
// a restart in the middle of a group exact. The transforms are built as the agent builds them:
// RecordTransforms over the agent's option defaults.
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AGENT_OPTIONS } from '../../../src/config/options.ts';
import { documentContext } from '../../../src/encode/document.ts';
import { FileProcessor, IGNORED_EVENTS, type ProcessResult } from '../../../src/parse/file-processor.ts';
import type { ContinuationState } from '../../../src/source/ack-tracker.ts';
import { RecordTransforms, recordOptions } from '../../../src/transform/resolve.ts';
import type { ThrottleAction } from '../../../src/transform/throttle.ts';
import type { TransformMeta } from '../../../src/transform/types.ts';
import { bodyDocs, type Doc, HOST, PATH } from '../fuzz/feed.ts';

const RUNS = { numRuns: 300 };

// --- building blocks -------------------------------------------------------------------------------

interface Counts {
  lines: number;
  filtered: number;
  truncated: number;
  parseErrors: number;
  splits: number;
}

const newCounts = (): Counts => ({ lines: 0, filtered: 0, truncated: 0, parseErrors: 0, splits: 0 });

interface Built {
  transforms: RecordTransforms;
  warnings: string[];
  throttled: Array<{ namespace: string; action: ThrottleAction; lines: number; bytes: number }>;
}

/** RecordTransforms over the agent's defaults (src/config/options.ts) with `overrides` on top. */
function build(overrides: Record<string, unknown> = {}): Built {
  const values = new Map<string, unknown>(AGENT_OPTIONS.map((s) => [s.key, s.default]));
  for (const [key, value] of Object.entries(overrides)) {
    if (!values.has(key)) throw new Error(`no option ${key}`);
    values.set(key, value);
  }
  const warnings: string[] = [];
  const throttled: Built['throttled'] = [];
  const transforms = new RecordTransforms(
    recordOptions(<T>(key: string) => values.get(key) as T),
    {
      warn: (m) => warnings.push(m),
      throttle: {
        throttled: (namespace, action, lines, bytes) => throttled.push({ namespace, action, lines, bytes }),
      },
    },
  );
  return { transforms, warnings, throttled };
}

/** A CRI FileProcessor for PATH with the transform the agent would give it (as the tailer does). */
function processor(
  t: RecordTransforms,
  opts: {
    meta?: TransformMeta;
    continuation?: ContinuationState;
    counts?: Counts;
    path?: string;
    /** as the tailer does with enrichment: a transform at open, another once metadata is known */
    twice?: boolean;
  } = {},
): FileProcessor {
  const counts = opts.counts ?? newCounts();
  const path = opts.path ?? PATH;
  const p = new FileProcessor(
    documentContext(path, HOST, '', t.fields),
    { format: 'cri', maxLineBytes: 1 << 20 },
    {
      linesRead: (n) => {
        counts.lines += n;
      },
      parseError: () => {
        counts.parseErrors++;
      },
      lineSplit: () => {
        counts.splits++;
      },
      recordsFiltered: (n) => {
        counts.filtered += n;
      },
      recordsTruncated: (n) => {
        counts.truncated += n;
      },
    },
    opts.continuation === undefined ? undefined : { format: 'cri', continuation: opts.continuation },
  );
  if (opts.twice) p.transform = t.forFile(path, undefined);
  p.transform = t.forFile(path, opts.meta);
  return p;
}

type Stream = 'stdout' | 'stderr';

/** One CRI line; each gets its own timestamp so that a group's time tells which line it took. */
class Cri {
  #n = 0;
  line(stream: Stream, message: string, tag: 'F' | 'P' = 'F'): string {
    this.#n++;
    return `2026-11-22T01:02:03.${String(this.#n).padStart(9, '0')}Z ${stream} ${tag} ${message}\n`;
  }
  static time(line: string): string {
    return line.slice(0, line.indexOf(' '));
  }
}

/** Offset of line `i` of `lines` (the bytes of the lines before it). */
function offsetOf(lines: string[], i: number): number {
  return Buffer.byteLength(lines.slice(0, i).join(''));
}

interface Read {
  base: number;
  result: ProcessResult;
  docs: Doc[];
}

/**
 * A tail of `input` from `from`: the file grows to each of `sizes` in turn (clamped, sorted) and
 * then to its end; each read takes what is there from where the previous one stopped consuming, in
 * one reused buffer with garbage after the data (as the tailer's), and the last read is final.
 */
function feed(p: FileProcessor, input: Buffer, from: number, sizes: number[], final = true): Read[] {
  const ends = [...new Set(sizes.map((s) => Math.min(input.length, Math.max(from, s))))]
    .sort((a, b) => a - b)
    .filter((s) => s < input.length);
  ends.push(input.length);
  const buf = Buffer.alloc(input.length - from + 16);
  const reads: Read[] = [];
  let pos = from;
  for (let i = 0; i < ends.length; i++) {
    const len = ends[i]! - pos;
    input.copy(buf, 0, pos, pos + len);
    buf.fill(0x80, len);
    const result = p.process(buf, len, pos, final && i === ends.length - 1);
    if (result.consumed < 0 || result.consumed > len)
      throw new Error(`consumed ${result.consumed} of ${len}`);
    reads.push({ base: pos, result, docs: bodyDocs(result) });
    pos += result.consumed;
  }
  return reads;
}

const docsOf = (reads: Read[]): Doc[] => reads.flatMap((r) => r.docs);
const byOffset = <D extends Doc>(docs: D[]): D[] => [...docs].sort((a, b) => a.log.offset - b.log.offset);

/** The documents of the whole input read at once, final. */
function whole(t: RecordTransforms, input: Buffer, meta?: TransformMeta): Doc[] {
  return docsOf(feed(processor(t, { meta }), input, 0, []));
}

// --- traces -----------------------------------------------------------------------------------------

const JAVA = [
  '2024-05-14 10:21:09,877 ERROR [http-nio-8080-exec-3] com.example.orders.OrderController - Failed to place order 8812',
  'java.lang.IllegalStateException: Inventory reservation failed for order 8812',
  '\tat com.example.orders.InventoryClient.reserve(InventoryClient.java:88)',
  '\tat com.example.orders.OrderService.place(OrderService.java:142)',
  'Caused by: java.net.ConnectException: Connection refused',
  '\tat java.base/sun.nio.ch.Net.pollConnect(Native Method)',
  '\t... 12 more',
];

const PYTHON = [
  '2024-05-14 10:30:03,000 ERROR app.tasks: task crashed',
  'Traceback (most recent call last):',
  '  File "/app/tasks.py", line 12, in run',
  '    total = sum(items) / len(items)',
  'ZeroDivisionError: division by zero',
];

const GO = [
  'panic: assignment to entry in nil map',
  '',
  'goroutine 1 [running]:',
  'main.main()',
  '\t/src/main.go:9 +0x2c',
  'exit status 2',
];

describe('multiline groups through FileProcessor', () => {
  it.each([
    ['whole lines', false],
    ['a CRI P/F partial line inside the trace', true],
  ])('a Java trace is one document at its header offset (%s); stderr lines stay apart', (_n, partial) => {
    const { transforms } = build({ 'multiline.default': 'java' });
    const c = new Cri();
    const lines = [
      c.line('stdout', '2024-05-14 10:21:07,412 INFO  [main] com.example.orders.Application - Started'),
      c.line('stdout', JAVA[0]!),
      c.line('stdout', JAVA[1]!),
      c.line('stdout', JAVA[2]!),
      c.line('stderr', 'stderr: connection pool exhausted'),
      ...(partial
        ? [
            c.line('stdout', '\tat com.example.orders.OrderService.pl', 'P'),
            c.line('stdout', 'ace(OrderService.java:142)'),
          ]
        : [c.line('stdout', JAVA[3]!)]),
      c.line('stderr', 'stderr: retrying in 5s'),
      c.line('stdout', JAVA[4]!),
      c.line('stdout', JAVA[5]!),
      c.line('stdout', JAVA[6]!),
      c.line(
        'stdout',
        '2024-05-14 10:21:10,002 WARN  [http-nio-8080-exec-4] com.example.orders.OrderController - Retrying',
      ),
    ];
    const input = Buffer.from(lines.join(''));
    const docs = whole(transforms, input);
    const at = (i: number) => offsetOf(lines, i);
    const shift = partial ? 1 : 0;
    expect(byOffset(docs).map((d) => [d.log.offset, d.stream, d.message])).toEqual([
      [0, 'stdout', expect.stringContaining('Started')],
      [at(1), 'stdout', JAVA.join('\n')],
      [at(4), 'stderr', 'stderr: connection pool exhausted'],
      [at(6 + shift), 'stderr', 'stderr: retrying in 5s'],
      [at(10 + shift), 'stdout', expect.stringContaining('Retrying')],
    ]);
    const trace = docs.find((d) => d.log.offset === at(1))!;
    expect(trace.log.flags).toEqual(partial ? ['partial', 'multiline'] : ['multiline']);
    // the group has its first line's time; the single lines have no multiline flag
    expect(trace['@timestamp']).toBe(Cri.time(lines[1]!));
    for (const d of docs) if (d !== trace) expect(d.log.flags).toBeUndefined();
  });

  it('multiline none (the default) leaves every line a document', () => {
    const { transforms } = build();
    const c = new Cri();
    const input = Buffer.from(JAVA.map((m) => c.line('stdout', m)).join(''));
    expect(whole(transforms, input).map((d) => d.message)).toEqual(JAVA);
  });

  it('the annotation wins over a path glob, which wins over the default; an unknown annotation warns once', () => {
    const built = build({
      'multiline.default': 'none',
      'multiline.rules': [{ path: '/var/log/pods/ns_*/**', rule: 'python' }],
    });
    const c = new Cri();
    const input = Buffer.from([...PYTHON, ...JAVA].map((m) => c.line('stdout', m)).join(''));
    const groups = (meta?: TransformMeta) =>
      whole(built.transforms, input, meta).map((d) => d.message.split('\n').length);
    expect(groups()).toEqual([PYTHON.length, ...JAVA.map(() => 1)]);
    expect(groups({ multiline: 'java' })).toEqual([...PYTHON.map(() => 1), JAVA.length]);
    expect(groups({ multiline: 'nope' })).toEqual([PYTHON.length, ...JAVA.map(() => 1)]);
    expect(groups({ multiline: 'nope' })).toEqual([PYTHON.length, ...JAVA.map(() => 1)]);
    expect(built.warnings).toEqual([expect.stringContaining("unknown rule 'nope'")]);
  });
});

// --- generated files: interleaved streams, partial lines, traces of several languages ----------------

interface Piece {
  stream: Stream;
  tag: 'P' | 'F';
  message: string;
}

/** One stream's entries: traces and ordinary lines; each line maybe cut into CRI P fragments. */
const entry = fc.oneof(
  fc.constantFrom(JAVA, PYTHON, GO),
  fc.constantFrom(
    ['2024-05-14 10:30:03,100 INFO app.tasks: next task'],
    ['{"level":"info","msg":"request done","status":200}'],
    ['level=warn msg="slow query" took=812ms'],
    [
      'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space',
      '\tat java.base/java.util.Arrays.copyOf(Arrays.java:3541)',
    ],
    ['plain text é 東京'],
  ),
);

/** Lines -> CRI pieces, per line: a line is cut in up to three fragments at the given fractions. */
function pieces(stream: Stream, lines: string[], cuts: number[][]): Piece[][] {
  return lines.map((line, i) => {
    const at = [...new Set((cuts[i % cuts.length] ?? []).map((f) => Math.floor(f * line.length)))]
      .filter((x) => x > 0 && x < line.length)
      .sort((a, b) => a - b);
    const out: Piece[] = [];
    let start = 0;
    for (const x of at) {
      out.push({ stream, tag: 'P', message: line.slice(start, x) });
      start = x;
    }
    out.push({ stream, tag: 'F', message: line.slice(start) });
    return out;
  });
}

/**
 * A CRI file: two streams interleaved as `order` says (true: stdout next). The units interleaved
 * are single fragments (the other stream may write between a line's P and F fragments, as runtimes
 * do) or, with `fragments` false, whole lines. `busy`: both streams write, most lines are cut into
 * fragments and the streams alternate often, so that a random line boundary often has a P line
 * pending on one stream and another's P/F record around it.
 */
function criFile(fragments: boolean, busy = false): fc.Arbitrary<Buffer> {
  return fc
    .record({
      stdout: fc.array(entry, { minLength: 1, maxLength: 6 }),
      stderr: fc.array(entry, { minLength: busy ? 1 : 0, maxLength: 6 }),
      cuts: fc.array(
        fc.array(
          fc.integer({ min: 1, max: 99 }).map((p) => p / 100),
          { minLength: busy ? 1 : 0, maxLength: 2 },
        ),
        { minLength: 1, maxLength: 8 },
      ),
      order: fc.array(fc.boolean(), { minLength: busy ? 16 : 0, maxLength: 200 }),
    })
    .map(({ stdout, stderr, cuts, order }) => {
      const units = (lines: Piece[][]) => (fragments ? lines.flat().map((p) => [p]) : lines);
      const out = units(pieces('stdout', stdout.flat(), cuts));
      const err = units(pieces('stderr', stderr.flat(), cuts.slice(1).concat(cuts.slice(0, 1))));
      const c = new Cri();
      const lines: string[] = [];
      let i = 0;
      let j = 0;
      let k = 0;
      while (i < out.length || j < err.length) {
        const takeOut =
          j >= err.length || (i < out.length && (order[k++ % Math.max(1, order.length)] ?? true));
        for (const p of takeOut ? out[i++]! : err[j++]!) lines.push(c.line(p.stream, p.message, p.tag));
      }
      return Buffer.from(lines.join(''));
    });
}

const RULES = ['java', 'python', 'go', 'auto'] as const;

/**
 * Offset of the last line of a document's record: its stream's first F line from the document's
 * offset on (a record joined from P lines ends there), or the last line of a multiline group, found
 * the same way from its last message line. Only what the generated files need.
 */
function lastLineOf(input: Buffer, doc: Doc): number {
  const text = input.toString('latin1');
  const lines = doc.message.split('\n').length;
  let at = doc.log.offset;
  let last = at;
  for (let n = 0; n < lines && at < text.length; ) {
    const end = text.indexOf('\n', at);
    const [, stream, tag] = text.slice(at, end).split(' ', 3);
    if (stream === doc.stream) {
      last = at;
      if (tag === 'F') n++;
    }
    at = end + 1;
  }
  return last;
}

/** Read sizes: up to 12 cut points as fractions of the file. */
const sizes = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 });
/** More reads, for checkpoints at many places in one file. */
const manySizes = fc.array(
  fc.integer({ min: 0, max: 1000 }).map((n) => n / 1000),
  { minLength: 4, maxLength: 24 },
);
const at = (input: Buffer, fractions: number[]) => fractions.map((f) => Math.floor(f * input.length));

describe('chunking and restarts are invisible', () => {
  it.each(RULES)('%s: any split of the bytes into reads gives the same documents', (rule) => {
    const { transforms } = build({ 'multiline.default': rule });
    fc.assert(
      fc.property(criFile(true), sizes, (input, cuts) => {
        const once = whole(transforms, input);
        const chunked = docsOf(feed(processor(transforms), input, 0, at(input, cuts)));
        expect(chunked).toEqual(once);
        // ids are offsets: one document per offset
        expect(new Set(once.map((d) => d.log.offset)).size).toBe(once.length);
      }),
      RUNS,
    );
  });

  it('the generated files do group: traces on both streams, interleaved, become single documents', () => {
    // a guard on the generator: the properties above and below are about real groups
    const { transforms } = build({ 'multiline.default': 'auto' });
    let grouped = 0;
    let stderrGroups = 0;
    let partials = 0;
    fc.assert(
      fc.property(criFile(true), (input) => {
        for (const d of whole(transforms, input)) {
          if (d.log.flags?.includes('multiline')) grouped++;
          if (d.log.flags?.includes('multiline') && d.stream === 'stderr') stderrGroups++;
          if (d.log.flags?.includes('partial')) partials++;
        }
      }),
      { numRuns: 100 },
    );
    // (measured: ~350 groups, ~170 on stderr, ~480 partial lines in 100 files)
    expect(grouped).toBeGreaterThan(100);
    expect(stderrGroups).toBeGreaterThan(50);
    expect(partials).toBeGreaterThan(100);
  });

  it.each<[string, boolean]>([
    ...RULES.map((rule): [string, boolean] => [rule, false]),
    ['none', false],
    ['none', true],
    ['java', true],
    ['auto', true],
  ])(
    '%s (fragments interleaved: %s): a restart at any read resumes from safeEnd + continuation: every document once, re-sent ones identical',
    (rule, fragments) => {
      const { transforms } = build({ 'multiline.default': rule });
      // how often a checkpoint fell between the P and F lines of a record sent before it (the
      // case the skip entries' `through` at the record's last line is for)
      let straddled = 0;
      fc.assert(
        // fragments: the P/F lines of both streams interleave around the checkpoint
        fc.property(
          criFile(fragments, fragments),
          fragments ? manySizes : sizes,
          sizes,
          fc.nat(),
          fc.boolean(),
          (input, before, after, pick, twice) => {
            const full = whole(transforms, input);
            const fullBy = new Map(full.map((d) => [d.log.offset, d]));
            expect(fullBy.size).toBe(full.length);

            // the first run: reads up to a checkpoint, whose documents were delivered
            const reads = feed(processor(transforms), input, 0, at(input, before), false);
            const k = pick % reads.length;
            const first = docsOf(reads.slice(0, k + 1));
            const { safeEnd, continuation } = reads[k]!.result;
            expect(safeEnd).toBeLessThanOrEqual(reads[k]!.base + reads[k]!.result.consumed);
            if (
              first.some(
                (d) =>
                  d.log.flags?.includes('partial') &&
                  d.log.offset < safeEnd &&
                  safeEnd <= lastLineOf(input, d),
              )
            )
              straddled++;
            // checkpoints never go back
            for (let i = 1; i <= k; i++)
              expect(reads[i]!.result.safeEnd).toBeGreaterThanOrEqual(reads[i - 1]!.result.safeEnd);

            // the restart: a new processor from the saved checkpoint (through JSON, as the positions file)
            const saved =
              continuation === undefined
                ? undefined
                : (JSON.parse(JSON.stringify(continuation)) as ContinuationState);
            const second = docsOf(
              feed(processor(transforms, { continuation: saved, twice }), input, safeEnd, at(input, after)),
            );

            // nothing sent twice with different content, nothing sent twice by the second run
            for (const d of [...first, ...second]) expect(d).toEqual(fullBy.get(d.log.offset));
            expect(new Set(second.map((d) => d.log.offset)).size).toBe(second.length);
            // nothing lost
            const union = new Set([...first, ...second].map((d) => d.log.offset));
            expect([...union].sort((a, b) => a - b)).toEqual(
              full.map((d) => d.log.offset).sort((a, b) => a - b),
            );
          },
        ),
        RUNS,
      );
      // a guard on the generator (measured: ~45 of 300 runs for none, ~130 for java and auto)
      if (fragments) expect(straddled).toBeGreaterThan(10);
    },
  );
  // A checkpoint can fall between the P and F fragments of a record of the *other* stream that was
  // already emitted. Read again from the checkpoint, the F fragment alone would become a record of
  // its own (a new id holding a piece of a line that was delivered whole). Multiline makes it
  // common: the checkpoint waits at a pending group's first line (e.g. a single stdout line waiting
  // for the next one) while stderr writes long lines the runtime cut into P/F. Without multiline it
  // takes a pending P on one stream at that moment. The checkpoint's skip entry for that stream
  // goes through the record's last line (LogRecord.lastOffset), so the restart drops the fragment.
  // 'no transform': a FileProcessor whose transform is never set (gz recovery without transforms).
  it.each(['java', 'none', 'no transform'])(
    "%s: a restart inside another stream's P/F record does not send its last fragment again as a record",
    (rule) => {
      const { transforms } = build({ 'multiline.default': rule === 'java' ? 'java' : 'none' });
      const bare = (continuation?: ContinuationState) =>
        new FileProcessor(
          documentContext(PATH, HOST, '', transforms.fields),
          { format: 'cri', maxLineBytes: 1 << 20 },
          IGNORED_EVENTS,
          continuation === undefined ? undefined : { format: 'cri', continuation },
        );
      const make = (continuation?: ContinuationState) =>
        rule === 'no transform' ? bare(continuation) : processor(transforms, { continuation });
      const c = new Cri();
      const lines = [
        c.line('stderr', 'a long line cut by the runtime: first half, ', 'P'),
        // java: a pending group (one line) holds the checkpoint here; otherwise a pending P does
        rule === 'java' ? c.line('stdout', 'stdout waiting') : c.line('stdout', 'stdout, cut too: ', 'P'),
        c.line('stderr', 'second half'),
        // java: the stderr record goes out (a new one starts); it straddles the checkpoint
        c.line('stderr', 'next stderr line'),
      ];
      const input = Buffer.from(lines.join(''));
      const full = docsOf(feed(make(), input, 0, []));
      const first = feed(make(), input, 0, [], false);
      const { safeEnd, continuation } = first[0]!.result;
      expect(safeEnd).toBe(offsetOf(lines, 1));
      expect(continuation?.skip).toEqual([
        { stream: 'stderr', through: offsetOf(lines, rule === 'java' ? 2 : 3) },
      ]);
      const sent = first[0]!.docs;
      expect(sent.map((d) => d.message)).toContain('a long line cut by the runtime: first half, second half');
      const again = docsOf(feed(make(continuation), input, safeEnd, []));
      expect(again.map((d) => d.log.offset)).not.toContain(offsetOf(lines, 2));
      // what the restart sends must be what an uninterrupted run sent, by offset
      const fullBy = new Map(full.map((d) => [d.log.offset, d.message]));
      expect(again.map((d) => [d.log.offset, d.message])).toEqual(
        again.map((d) => [d.log.offset, fullBy.get(d.log.offset)]),
      );
    },
  );
});

describe('a multiline rule set after the first reads', () => {
  it('is used from then on, and what was sent before it is still skipped after a restart', () => {
    const none = build().transforms;
    const java = build({ 'multiline.default': 'java' }).transforms;
    const c = new Cri();
    const lines = [
      c.line('stderr', 'first half, ', 'P'),
      c.line('stdout', 'cut: ', 'P'), // pending: holds the checkpoint
      c.line('stderr', 'second half'),
      c.line('stderr', JAVA[0]!),
      c.line('stderr', JAVA[1]!),
      c.line('stdout', 'end'),
    ];
    const input = Buffer.from(lines.join(''));
    const p = processor(none);
    const head = input.subarray(0, offsetOf(lines, 3));
    const one = p.process(head, head.length, 0, false);
    expect(bodyDocs(one).map((d) => d.message)).toEqual(['first half, second half']);
    // taken before the rule comes, the checkpoint skips stderr's record through its last line
    expect(one.safeEnd).toBe(offsetOf(lines, 1));
    expect(one.continuation?.skip).toEqual([{ stream: 'stderr', through: offsetOf(lines, 2) }]);
    // the pod's metadata comes: its annotation (here the default) says java
    p.transform = java.forFile(PATH, undefined);
    const rest = input.subarray(head.length);
    const two = p.process(rest, rest.length, head.length, false);
    // stdout's record and the trace are pending groups; the pass-through's bookkeeping went to the
    // java grouper, so the checkpoint still skips stderr's record
    expect(bodyDocs(two)).toEqual([]);
    expect(p.hasPendingGroups).toBe(true);
    expect(two.safeEnd).toBe(offsetOf(lines, 1));
    expect(two.continuation?.skip).toEqual([{ stream: 'stderr', through: offsetOf(lines, 2) }]);
    const three = p.process(rest, 0, input.length, false, true);
    expect(bodyDocs(three).map((d) => d.message)).toEqual(['cut: end', `${JAVA[0]}\n${JAVA[1]}`]);
    expect(three.safeEnd).toBe(input.length);
    expect(three.continuation).toBeUndefined();
  });
});

describe('flush on silence', () => {
  it('process with flushGroups and no new bytes emits the pending group and moves safeEnd past it', () => {
    const { transforms } = build({ 'multiline.default': 'python' });
    const c = new Cri();
    const lines = [c.line('stdout', 'starting'), ...PYTHON.map((m) => c.line('stderr', m))];
    const input = Buffer.from(lines.join(''));
    const p = processor(transforms);
    const buf = Buffer.alloc(input.length);
    input.copy(buf);
    const first = p.process(buf, input.length, 0, false);
    // 'starting' and the traceback are both pending (nothing says they are over)
    expect(bodyDocs(first)).toEqual([]);
    expect(first.consumed).toBe(input.length);
    expect(first.safeEnd).toBe(0);
    expect(p.hasPendingGroups).toBe(true);

    const idle = p.process(buf, 0, input.length, false);
    expect(bodyDocs(idle)).toEqual([]);
    expect(idle.safeEnd).toBe(0);

    const flushed = p.process(buf, 0, input.length, false, true);
    const docs = bodyDocs(flushed);
    expect(docs.map((d) => [d.log.offset, d.message])).toEqual([
      [0, 'starting'],
      [offsetOf(lines, 1), PYTHON.join('\n')],
    ]);
    expect(docs[1]!.log.flags).toEqual(['multiline']);
    expect(flushed.consumed).toBe(0);
    expect(flushed.safeEnd).toBe(input.length);
    expect(flushed.continuation).toBeUndefined();
    expect(p.hasPendingGroups).toBe(false);

    // what comes after the silence is a new record, not glued to the flushed traceback
    const more = Buffer.from(c.line('stderr', '  File "/app/late.py", line 1, in f'));
    const next = p.process(more, more.length, input.length, true);
    expect(bodyDocs(next).map((d) => [d.log.offset, d.message])).toEqual([
      [input.length, '  File "/app/late.py", line 1, in f'],
    ]);
  });
});

// --- parsers, filters, limits, throttling ------------------------------------------------------------

const NGINX = {
  name: 'nginx',
  regex:
    '^(?P<remote_addr>\\S+) - (?P<remote_user>\\S+) \\[(?P<time>[^\\]]+)\\] "(?P<method>[A-Z]+) (?P<path>\\S+) (?P<protocol>[^"]+)" (?P<status>\\d{3}) (?P<body_bytes_sent>\\d+)',
};
const ACCESS = '10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 200 2326';
const LOGFMT = 'ts=2026-11-23T12:00:00Z level=WARN msg="disk almost full" free=3% cached';

/** A document with what parsers and filters add. */
type AnyDoc = Doc & { log: { level?: string }; app?: Record<string, unknown>; cluster?: unknown };

function docsFor(overrides: Record<string, unknown>, messages: string[], meta?: TransformMeta): AnyDoc[] {
  const { transforms } = build(overrides);
  const c = new Cri();
  return whole(transforms, Buffer.from(messages.map((m) => c.line('stdout', m)).join('')), meta) as AnyDoc[];
}

describe('parsers', () => {
  it('logfmt by annotation: fields under json, level and message normalised', () => {
    const [doc, prose] = docsFor({}, [LOGFMT, 'user logged in at 10:00'], { parser: 'logfmt' });
    expect(doc!.json).toEqual({
      ts: '2026-11-23T12:00:00Z',
      level: 'WARN',
      msg: 'disk almost full',
      free: '3%',
      cached: true,
    });
    expect(doc!.log.level).toBe('warn');
    expect(doc!.message).toBe('disk almost full');
    // without parse.appTimestamp, the runtime's time
    expect(doc!['@timestamp']).toBe('2026-11-22T01:02:03.000000001Z');
    expect(prose!.json).toBeUndefined();
    expect(prose!.message).toBe('user logged in at 10:00');
  });

  it('a custom regex parser chosen by annotation; the default json parser elsewhere', () => {
    const overrides = { parsers: [NGINX] };
    const messages = [ACCESS, 'not an access line', '{"level":"error","msg":"boom"}'];
    const [access, other, json] = docsFor(overrides, messages, { parser: 'nginx' });
    expect(access!.json).toEqual({
      remote_addr: '10.0.0.1',
      remote_user: '-',
      time: '10/Oct/2000:13:55:36 -0700',
      method: 'GET',
      path: '/index.html',
      protocol: 'HTTP/1.1',
      status: '200',
      body_bytes_sent: '2326',
    });
    expect(access!.message).toBe(ACCESS);
    expect(other!.json).toBeUndefined();
    // under nginx a JSON message is plain text
    expect(json!.json).toBeUndefined();
    // no annotation: the default parser (json)
    const plain = docsFor(overrides, messages);
    expect(plain.map((d) => d.json)).toEqual([undefined, undefined, { level: 'error', msg: 'boom' }]);
    expect(plain[2]!.log.level).toBe('error');
    expect(plain[2]!.message).toBe('boom');
  });

  it('--merge-key app puts the fields under app; --app-timestamp takes the application time', () => {
    const overrides = { parsers: [NGINX], 'parse.mergeKey': 'app', 'parse.appTimestamp': true };
    const [access] = docsFor(overrides, [ACCESS], { parser: 'nginx' });
    expect(access!.json).toBeUndefined();
    expect(access!.app).toMatchObject({ status: '200', path: '/index.html' });
    expect(access!['@timestamp']).toBe('2000-10-10T13:55:36-07:00');
    const [fmt, noTime] = docsFor(overrides, [LOGFMT, 'level=info msg=ok'], { parser: 'logfmt' });
    expect(fmt!.app).toMatchObject({ level: 'WARN' });
    expect(fmt!['@timestamp']).toBe('2026-11-23T12:00:00Z');
    // no application time: the runtime's
    expect(noTime!['@timestamp']).toBe('2026-11-22T01:02:03.000000002Z');
  });

  it('a grouped record is parsed as a whole (a regex parser sees the first line)', () => {
    const [trace] = docsFor(
      {
        'multiline.default': 'java',
        parsers: [{ name: 'log4j', regex: '^(?P<time>\\S+ \\S+) (?P<level>[A-Z]+) ' }],
      },
      JAVA,
      { parser: 'log4j' },
    );
    expect(trace!.message).toBe(JAVA.join('\n'));
    expect(trace!.log.level).toBe('error');
    expect(trace!.json).toEqual({ time: '2024-05-14 10:21:09,877', level: 'ERROR' });
  });
});

describe('filters and the record-size limit', () => {
  const filters = [
    { exclude: { field: 'message', regex: '^GET /healthz' } },
    { exclude: { field: 'message', regex: 'IgnoredException' } },
    { drop: ['json.password'] },
    { rename: { 'json.lvl': 'json.severity' } },
    { add: { 'cluster.name': 'prod' } },
  ];

  it('exclude drops and counts; drop, rename and add change the documents', () => {
    const { transforms } = build({ filters, 'multiline.default': 'java' });
    const counts = newCounts();
    const c = new Cri();
    const lines = [
      c.line('stdout', 'GET /healthz 200'),
      c.line('stdout', '{"lvl":"debug","password":"hunter2","msg":"login","user":"ann"}'),
      c.line('stderr', '2024-05-14 10:00:00,000 WARN [main] c.e.App - ignored'),
      c.line('stderr', 'com.example.IgnoredException: not a problem'),
      c.line('stderr', '\tat com.example.App.main(App.java:1)'),
      c.line('stdout', 'plain'),
    ];
    const p = processor(transforms, { counts });
    const docs = docsOf(feed(p, Buffer.from(lines.join('')), 0, [])) as AnyDoc[];
    // the health check and the whole grouped trace (the regex matches its second line) are gone
    expect(counts.filtered).toBe(2);
    expect(byOffset(docs).map((d) => d.log.offset)).toEqual([offsetOf(lines, 1), offsetOf(lines, 5)]);
    const [json, plain] = byOffset(docs);
    expect(json!.json).toEqual({ severity: 'debug', msg: 'login', user: 'ann' });
    expect(json!.message).toBe('login');
    expect(json!.cluster).toEqual({ name: 'prod' });
    expect(plain!.cluster).toEqual({ name: 'prod' });
    expect(plain!.message).toBe('plain');
  });

  it('maxRecordBytes cuts longer messages at a character boundary and flags them truncated', () => {
    const { transforms } = build({ 'limits.maxRecordBytes': 16 });
    const counts = newCounts();
    const c = new Cri();
    const messages = ['x'.repeat(100), 'short', '東'.repeat(10), 'y'.repeat(16)];
    const input = Buffer.from(messages.map((m) => c.line('stdout', m)).join(''));
    const docs = docsOf(feed(processor(transforms, { counts }), input, 0, []));
    expect(docs.map((d) => [d.message, d.log.flags])).toEqual([
      ['x'.repeat(16), ['truncated']],
      ['short', undefined],
      ['東'.repeat(5), ['truncated']],
      ['y'.repeat(16), undefined],
    ]);
    expect(counts.truncated).toBe(2);
  });
});

describe('throttling', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('drop: a burst keeps what the bucket holds, plus one summary per chunk at an offset no record has', () => {
    // a frozen clock: the bucket refills only when the test moves time
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-11-22T00:00:00Z') });
    const built = build({ 'throttle.linesPerSec': 5, 'throttle.action': 'drop' });
    const p = processor(built.transforms);
    const c = new Cri();
    const chunk = (n: number, tag: string) =>
      Buffer.from(Array.from({ length: n }, (_, i) => c.line('stdout', `${tag} ${i}`)).join(''));
    const reads: Read[] = [];
    let base = 0;
    const read = (bytes: Buffer) => {
      const result = p.process(bytes, bytes.length, base, false);
      reads.push({ base, result, docs: bodyDocs(result) });
      base += result.consumed;
      return reads.at(-1)!;
    };

    const check = (r: Read, kept: number, dropped: number) => {
      const records = r.docs.filter((d) => !d.log.flags?.includes('throttled'));
      const summaries = r.docs.filter((d) => d.log.flags?.includes('throttled'));
      expect(records).toHaveLength(kept);
      expect(summaries).toHaveLength(dropped > 0 ? 1 : 0);
      if (dropped === 0) return;
      const s = summaries[0]!;
      // the chunk's last byte, a '\n' where no record starts
      expect(s.log.offset).toBe(r.base + r.result.consumed - 1);
      expect(records.map((d) => d.log.offset)).not.toContain(s.log.offset);
      expect(s.log.flags).toEqual(['throttled']);
      expect(s.message).toMatch(
        new RegExp(
          `^logferry: throttled ${dropped} lines \\(\\d+ bytes\\) from this container \\(limit 5 lines/s\\)$`,
        ),
      );
      expect(s.stream).toBeUndefined();
    };

    const N = 40;
    const burst = read(chunk(N, 'burst'));
    check(burst, 5, N - 5);
    expect(burst.docs.filter((d) => !d.log.flags).map((d) => d.message)).toEqual([
      'burst 0',
      'burst 1',
      'burst 2',
      'burst 3',
      'burst 4',
    ]);
    check(read(chunk(10, 'more')), 0, 10);
    vi.setSystemTime(Date.now() + 1000);
    check(read(chunk(3, 'after a second')), 3, 0);
    check(read(chunk(4, 'then')), 2, 2);
    expect(built.throttled).toEqual([
      { namespace: 'ns', action: 'drop', lines: N - 5, bytes: expect.any(Number) },
      { namespace: 'ns', action: 'drop', lines: 10, bytes: expect.any(Number) },
      { namespace: 'ns', action: 'drop', lines: 2, bytes: expect.any(Number) },
    ]);
    // document ids stay unique over the whole file
    const offsets = reads.flatMap((r) => r.docs.map((d) => d.log.offset));
    expect(new Set(offsets).size).toBe(offsets.length);

    // another container has its own bucket
    const other = '/var/log/pods/ns_other_uid/app/0.log';
    const q = processor(built.transforms, { path: other });
    const bytes = chunk(8, 'other');
    const body = q.process(bytes, bytes.length, 0, false).body.toString('utf8');
    const docs = body
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Doc);
    expect(docs.filter((d) => !d.log.flags).map((d) => d.log.file.path)).toEqual(Array(5).fill(other));
    expect(docs.filter((d) => d.log.flags?.includes('throttled'))).toHaveLength(1);
  });

  it('filters run before the rate limit: excluded records do not use the budget', () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-11-22T00:00:00Z') });
    const { transforms } = build({
      'throttle.linesPerSec': 3,
      'throttle.action': 'drop',
      filters: [{ exclude: { field: 'message', regex: '^noise' } }],
    });
    const c = new Cri();
    const msgs = Array.from({ length: 20 }, (_, i) =>
      c.line('stdout', i % 5 === 0 ? `kept ${i}` : `noise ${i}`),
    );
    const docs = whole(transforms, Buffer.from(msgs.join('')));
    expect(docs.map((d) => d.message)).toEqual([
      'kept 0',
      'kept 5',
      'kept 10',
      expect.stringMatching(/^logferry: throttled 1 line \(/),
    ]);
  });

  it('pause: pauseAfter is 0 within the limit, then the debt in ms; nothing is dropped from documents', () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-11-22T00:00:00Z') });
    const built = build({ 'throttle.linesPerSec': 5, 'throttle.burstSeconds': 2 });
    const t = built.transforms;
    expect(t.forFile(PATH, undefined).throttle).toBeUndefined();
    expect(t.pauseAfter(PATH, undefined, 10, 100)).toBe(0);
    // 10 more lines: 10 in debt at 5/s
    expect(t.pauseAfter(PATH, undefined, 10, 100)).toBe(2000);
    expect(built.throttled).toEqual([{ namespace: 'ns', action: 'pause', lines: 10, bytes: 100 }]);
    vi.setSystemTime(Date.now() + 2000);
    expect(t.pauseAfter(PATH, undefined, 0, 0)).toBe(0);
    // a pause-mode processor keeps every record
    const c = new Cri();
    const docs = whole(
      t,
      Buffer.from(Array.from({ length: 50 }, (_, i) => c.line('stdout', `l${i}`)).join('')),
    );
    expect(docs).toHaveLength(50);
  });
});
