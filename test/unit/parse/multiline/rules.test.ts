import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MultilineGrouper } from '../../../../src/parse/multiline/grouper.ts';
import {
  builtinRule,
  customRule,
  isMultilineRuleName,
  MULTILINE_RULES,
  type MultilineRule,
  type MultilineRuleName,
} from '../../../../src/parse/multiline/rules.ts';
import { type LogRecord, RecordFlag } from '../../../../src/parse/types.ts';
import type { Matcher } from '../../../../src/transform/types.ts';

const FIXTURES = new URL('../../../fixtures/multiline/', import.meta.url);

/** The lines of a fixture (test/fixtures/multiline), without the final newline's empty line. */
function fixture(name: string): string[] {
  const lines = readFileSync(new URL(name, FIXTURES), 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** The lines as consecutive records of one stream, at their byte offsets in the file. */
function records(lines: string[], stream: 'stdout' | 'stderr' = 'stdout'): LogRecord[] {
  let offset = 0;
  return lines.map((message, i) => {
    const rec: LogRecord = {
      offset,
      time: `t${i + 1}`,
      stream,
      message,
      flags: 0,
      error: undefined,
      part: 0,
    };
    offset += Buffer.byteLength(message) + 1;
    return rec;
  });
}

const WIDE = { maxLines: 1000, maxBytes: 1 << 20 };

function group(rule: MultilineRule, recs: LogRecord[]): LogRecord[] {
  const g = new MultilineGrouper(rule, WIDE);
  const out: LogRecord[] = [];
  for (const r of recs) g.push(r, out);
  g.flush(out);
  return out;
}

/**
 * The 1-based line numbers where output records start (as an editor shows them), after checking
 * that each output record is exactly its lines.
 */
function groupStarts(rule: MultilineRule, lines: string[]): number[] {
  const recs = records(lines);
  const out = group(rule, recs);
  const lineOf = new Map(recs.map((r, i) => [r.offset, i]));
  const starts = out.map((o) => lineOf.get(o.offset)!);
  out.forEach((o, k) => {
    const from = starts[k]!;
    const to = starts[k + 1] ?? lines.length;
    expect(o.message).toBe(lines.slice(from, to).join('\n'));
    expect(o.time).toBe(`t${from + 1}`);
    expect(o.flags).toBe(to - from > 1 ? RecordFlag.Multiline : 0);
  });
  return starts.map((s) => s + 1);
}

/** A Matcher from a JS RegExp, as the caller would build one on RE2. */
function matcher(re: RegExp): Matcher {
  return {
    test: (text) => re.test(text),
    groups: (text) => re.exec(text)?.groups,
  };
}

describe('built-in rules on real-looking output', () => {
  // [fixture, rule, first line of every record]; see the fixture files for the line numbers
  it.each<[string, MultilineRuleName, number[]]>([
    // log4j header + exception + Caused by / ... 12 more / Suppressed; a PSQLException whose message
    // goes on on an indented line, logback's Wrapped by / common frames omitted; JUL's two-line
    // header; an uncaught exception
    ['java.log', 'java', [1, 2, 25, 26, 35, 39, 41]],
    ['java.log', 'auto', [1, 2, 25, 26, 35, 39, 41]],
    // a logging header + three chained tracebacks (During handling / direct cause); a JSON line
    // is never the header of a traceback
    ['python.log', 'python', [1, 2, 28, 29, 30, 34]],
    ['python.log', 'auto', [1, 2, 28, 29, 30, 34]],
    // panic with three goroutines, created by, exit status; a deadlock; net/http's panic log
    // followed by a goroutine dump
    ['go.log', 'go', [1, 2, 35, 36, 41, 49]],
    ['go.log', 'auto', [1, 2, 35, 36, 41, 49]],
    // an error header + Error with [cause] inside the inspected object; an error after an
    // ordinary log line stays apart; an uncaught exception with source, caret and Node.js version
    ['node.log', 'node', [1, 2, 16, 17, 21, 22]],
    // auto does not glue a bare `Error:` line to the line before it
    ['node.log', 'auto', [1, 2, 3, 16, 17, 21, 22]],
    // `from` lines; bare backtrace lines after a logger line; 2.5-2.7's reversed Traceback
    ['ruby.log', 'ruby', [1, 2, 8, 11, 12, 16]],
    // auto takes the reversed ruby `Traceback` for python's, after a log line
    ['ruby.log', 'auto', [1, 2, 8, 11, 16]],
    // console logger entries; header + exception + ---> inner + End of inner exception; an
    // unhandled SqlException with its trailer lines
    ['dotnet.log', 'dotnet', [1, 3, 5, 10, 20, 21]],
    ['dotnet.log', 'auto', [1, 3, 5, 10, 20, 21]],
    // everything at once, between plain, logfmt and JSON lines
    ['mixed.log', 'auto', [1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 23, 24, 30, 36, 38, 42, 43]],
  ])('%s with %s', (name, rule, starts) => {
    expect(groupStarts(builtinRule(rule), fixture(name))).toEqual(starts);
  });

  it.each(['java.log', 'python.log', 'go.log', 'node.log', 'ruby.log', 'dotnet.log', 'mixed.log'])(
    '%s with none: every line alone',
    (name) => {
      const lines = fixture(name);
      expect(groupStarts(builtinRule('none'), lines)).toEqual(lines.map((_, i) => i + 1));
    },
  );

  it.each<[string, MultilineRuleName, string[], number[]]>([
    [
      'logback: ... N common frames omitted, nested Suppressed',
      'java',
      [
        '12:00:00.000 [main] ERROR c.e.Job - failed',
        'com.example.JobException: step 3',
        '\tat com.example.Job.run(Job.java:10)',
        '\tSuppressed: java.lang.IllegalStateException: cleanup',
        '\t\tat com.example.Job.close(Job.java:20)',
        '\t\tCaused by: java.io.IOException: disk',
        '\t\t\t... 4 common frames omitted',
        'Caused by: java.lang.NullPointerException: null',
        '\t... 3 common frames omitted',
        '12:00:00.001 [main] INFO c.e.Job - next',
      ],
      [1, 10],
    ],
    [
      'a second exception after a trace starts a record',
      'java',
      ['java.lang.Error: a', '\tat A.a(A.java:1)', 'java.lang.Error: b', '\tat B.b(B.java:1)'],
      [1, 3],
    ],
    [
      'an indented sentence starting with "at" is no frame',
      'java',
      ['INFO ready', '  at least one replica is unavailable'],
      [1, 2],
    ],
    [
      'CRLF output',
      'java',
      ['ERROR failed\r', 'java.lang.RuntimeException: x\r', '\tat A.a(A.java:1)\r', 'INFO next\r'],
      [1, 4],
    ],
    [
      'python: exception group traceback (3.11)',
      'python',
      [
        'ERROR:root:batch failed',
        '  + Exception Group Traceback (most recent call last):',
        '  |   File "/app/batch.py", line 9, in <module>',
        '  |     raise ExceptionGroup("batch", errors)',
        '  | ExceptionGroup: batch (2 sub-exceptions)',
        '  +-+---------------- 1 ----------------',
        '    | ValueError: row 1',
        '    +---------------- 2 ----------------',
        "    | KeyError: 'id'",
        '    +------------------------------------',
        'INFO:root:done',
      ],
      [1, 11],
    ],
    [
      'python: a traceback without a header, then a multi-line message note',
      'python',
      [
        'Traceback (most recent call last):',
        '  File "x.py", line 1, in <module>',
        'pydantic_core.ValidationError: 1 validation error for User',
        '  name: Field required',
        'INFO done',
      ],
      [1, 5],
    ],
    [
      'python: a blank line after a traceback that no chain message follows',
      'python',
      ['Traceback (most recent call last):', '  File "x.py", line 1', 'ValueError: x', '', 'next line'],
      [1, 5],
    ],
    [
      'go: SIGQUIT dump with registers',
      'go',
      [
        'SIGQUIT: quit',
        'PC=0x46f2a1 m=0 sigcode=0',
        '',
        'goroutine 0 gp=0x5c1e80 m=0 mp=0x5c2a60 [idle]:',
        'runtime.futex(0x5c2ba0, 0x80, 0x0, 0x0, 0x0, 0x0)',
        '\t/usr/local/go/src/runtime/sys_linux_amd64.s:557 +0x21 fp=0x7ffc sp=0x7ffc pc=0x46f2a1',
        '',
        'rax    0xca',
        'rflags 0x286',
        '...additional frames elided...',
        'exit status 2',
        '2024/05/14 10:23:05 restarting',
      ],
      [1, 12],
    ],
    [
      'node: AggregateError with [errors]',
      'node',
      [
        'AggregateError: all upstreams failed',
        '    at Promise.any (index 0)',
        '    at async main (/app/main.mjs:4:3) {',
        '  [errors]: [',
        '    Error: connect ECONNREFUSED 10.0.0.1:80',
        '        at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1607:16) {',
        "      code: 'ECONNREFUSED'",
        '    }',
        '  ]',
        '}',
        '{"level":30,"msg":"fallback"}',
      ],
      [1, 11],
    ],
    [
      'node: an Error line after an info line stays apart',
      'node',
      ['2024-05-14T10:00:00Z info: ok', 'Error: boom', '    at f (/app/x.js:1:2)'],
      [1, 2],
    ],
    [
      'ruby: ... N levels...',
      'ruby',
      [
        "a.rb:1:in 'f': stack level too deep (SystemStackError)",
        "\tfrom a.rb:1:in 'f'",
        '\t ... 10067 levels...',
        "\tfrom a.rb:3:in '<main>'",
      ],
      [1],
    ],
    [
      'dotnet: AggregateException with numbered inner exceptions',
      'dotnet',
      [
        'System.AggregateException: One or more errors occurred. (boom)',
        ' ---> System.Exception: boom',
        '   at Program.<Main>$(String[] args) in /src/Program.cs:line 3',
        '   --- End of inner exception stack trace ---',
        ' ---> (Inner Exception #1) System.Exception: bang',
        '<---',
        '',
      ],
      [1, 7],
    ],
    [
      'a long line (only its first 4 KiB are looked at): an exception message, a JSON line',
      'auto',
      [
        'ERROR x',
        `java.lang.IllegalStateException: ${'x'.repeat(10_000)}`,
        '\tat A.a(A.java:1)',
        `{"msg":"${'\tat A.a(A.java:1) '.repeat(500)}"}`,
        `${' '.repeat(10_000)}at A.a(A.java:1)`,
      ],
      [1, 4, 5],
    ],
    [
      'JSON lines are never grouped, before or after a trace line',
      'auto',
      ['{"msg":"a"}', '\tat com.x.Y.m(Y.java:1)', 'ERROR x', '{"msg":"b"}', '\tat com.x.Y.m(Y.java:2)'],
      [1, 2, 3, 4, 5],
    ],
  ])('%s', (_, rule, lines, starts) => {
    expect(groupStarts(builtinRule(rule), lines)).toEqual(starts);
  });
});

/** Lines that no one would call a stack trace: timestamps, levels, logfmt, JSON, even `Error: ...`. */
const ordinaryLine = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(
        '2024-05-14T10:00:00.000Z ',
        '2024/05/14 10:00:00 ',
        'I0514 10:00:00.000000 1 main.go:12] ',
        '',
      ),
      fc.constantFrom(
        'INFO ',
        'WARN ',
        'ERROR ',
        'level=info ',
        'info: ',
        'Error: ',
        'E, [x] ERROR -- : ',
        '',
      ),
      fc.string({ unit: fc.constantFrom(...'abcdefxyz0123456789 ,.:=()[]/-_'.split('')), maxLength: 60 }),
    )
    .map(([t, l, m]) => `${t}${l}${m}`)
    // an indented line may be a frame (`  at x(`): not what this is about
    .filter((l) => !/^\s/.test(l)),
  fc.json({ maxDepth: 3 }).filter((j) => j.startsWith('{')),
  fc.object({ maxDepth: 2 }).map((o) => JSON.stringify(o)),
);

describe('auto', () => {
  it('never groups ordinary one-line logs (timestamps, levels, logfmt, JSON, Error: lines)', () => {
    fc.assert(
      fc.property(fc.array(ordinaryLine, { maxLength: 40 }), (lines) => {
        const out = group(builtinRule('auto'), records(lines));
        expect(out.length).toBe(lines.length);
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 300) },
    );
  });
});

describe('custom rules', () => {
  const lines = [
    '2024-05-14 10:00:00 ERROR boom',
    'com.example.Boom: bad',
    '\tat com.example.A.a(A.java:1)',
    'unrelated',
    '  indented',
    '2024-05-14 10:00:01 INFO next',
  ];
  const start = matcher(/^\d{4}-\d{2}-\d{2} /);
  const continuation = matcher(/^\s/);
  it.each<[string, Parameters<typeof customRule>[0], number[]]>([
    ['start only: everything else continues', { start }, [1, 6]],
    ['continuation only: everything else starts', { continuation }, [1, 2, 4, 6]],
    ['both: start wins, a line matching neither starts a record', { start, continuation }, [1, 2, 4, 6]],
    [
      'both, overlapping: start wins over continuation',
      { start: matcher(/^unrelated$/), continuation: matcher(/./) },
      [1, 4],
    ],
  ])('%s', (_, options, starts) => {
    expect(groupStarts(customRule(options), lines)).toEqual(starts);
  });

  it('needs a regex', () => {
    expect(() => customRule({})).toThrow(TypeError);
  });

  it('carries its configured name', () => {
    expect(customRule({ start, name: 'my-app' }).name).toBe('my-app');
    expect(customRule({ start }).name).toBe('custom');
  });
});

describe('rule names', () => {
  it('lists the built-in rules and recognises only them', () => {
    expect(MULTILINE_RULES).toEqual(['none', 'auto', 'java', 'python', 'go', 'node', 'ruby', 'dotnet']);
    for (const name of MULTILINE_RULES) {
      expect(isMultilineRuleName(name)).toBe(true);
      expect(builtinRule(name).name).toBe(name);
    }
    for (const name of ['custom', 'Java', '', 'javascript', 'toString', 'constructor']) {
      expect(isMultilineRuleName(name)).toBe(false);
    }
  });

  it('hands out independent classifiers', () => {
    const rule = builtinRule('python');
    const a = rule.classifier();
    const b = rule.classifier();
    a.begin('ERROR x');
    b.begin('ERROR x');
    expect(a.next('Traceback (most recent call last):')).toBe('continue');
    expect(a.next('  File "x.py", line 1')).toBe('continue');
    expect(b.next('  File "x.py", line 1')).toBe('start');
  });
});
