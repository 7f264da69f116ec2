import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileFilters,
  type Filter,
  type FilterStep,
  issuePath,
  limitMessage,
  parseFilters,
  pathProblem,
} from '../../../src/transform/filters.ts';
import type { Matcher } from '../../../src/transform/types.ts';

type Doc = Record<string, unknown>;

/** A Matcher from a JS RegExp, standing in for the RE2 one in these tests. */
function compile(pattern: string): Matcher {
  const re = new RegExp(pattern);
  return {
    test: (text) => re.test(text),
    groups: (text) => {
      const m = re.exec(text);
      return m === null ? undefined : { ...m.groups };
    },
  };
}

function steps(config: unknown): FilterStep[] {
  const result = parseFilters(config);
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.value;
}

function filterOf(config: unknown): Filter {
  const filter = compileFilters(steps(config), compile);
  if (filter === undefined) throw new Error('no filter');
  return filter;
}

const BASE: Doc = {
  '@timestamp': '2026-01-02T03:04:05.000Z',
  message: 'hello',
  stream: 'stdout',
  log: { file: { path: '/var/log/pods/ns_pod_uid/app/0.log' }, offset: 42 },
  host: { name: 'node-1' },
  json: { level: 'info', status: 404, ok: true, user: { id: 'u1', tags: ['a'] }, 'a.b': 'dotted', nil: null },
  kubernetes: {
    namespace: 'shop',
    pod: { name: 'web-1' },
    container: { name: 'app' },
    labels: { app: 'web', 'pod-template-hash': 'abc123', app_kubernetes_io$name: 'web' },
  },
};

function doc(extra: Doc = {}): Doc {
  return { ...structuredClone(BASE), ...structuredClone(extra) };
}

describe('include and exclude', () => {
  it.each<[string, unknown, Doc, boolean]>([
    ['equals a string', { include: { field: 'kubernetes.namespace', equals: 'shop' } }, doc(), true],
    [
      'equals another string',
      { include: { field: 'kubernetes.namespace', equals: 'kube-system' } },
      doc(),
      false,
    ],
    ['equals a list', { include: { field: 'kubernetes.namespace', equals: ['a', 'shop'] } }, doc(), true],
    ['equals a list, none', { include: { field: 'kubernetes.namespace', equals: ['a', 'b'] } }, doc(), false],
    ['a number by its string form', { include: { field: 'json.status', equals: '404' } }, doc(), true],
    ['a boolean by its string form', { include: { field: 'json.ok', equals: 'true' } }, doc(), true],
    ['null never equals', { include: { field: 'json.nil', equals: 'null' } }, doc(), false],
    ['an object never equals', { include: { field: 'json.user', equals: '[object Object]' } }, doc(), false],
    ['an array never equals', { include: { field: 'json.user.tags', equals: 'a' } }, doc(), false],
    ['nested path', { include: { field: 'json.user.id', equals: 'u1' } }, doc(), true],
    ['literal dotted key', { include: { field: 'json.a.b', equals: 'dotted' } }, doc(), true],
    [
      'label with a hyphen',
      { include: { field: 'kubernetes.labels.pod-template-hash', equals: 'abc123' } },
      doc(),
      true,
    ],
    ['missing field drops on include', { include: { field: 'json.nope', equals: 'x' } }, doc(), false],
    ['missing parent drops on include', { include: { field: 'nope.deeper', equals: 'x' } }, doc(), false],
    ['inherited property is missing', { include: { field: 'json.toString', regex: '.' } }, doc(), false],
    ['array index is not a path', { include: { field: 'json.user.tags.0', equals: 'a' } }, doc(), false],
    ['regex matches anywhere', { include: { field: 'message', regex: 'ell' } }, doc(), true],
    ['regex anchored', { include: { field: 'message', regex: '^ell' } }, doc(), false],
    ['regex tests strings only', { include: { field: 'json.status', regex: '404' } }, doc(), false],
    ['exclude equals', { exclude: { field: 'kubernetes.container.name', equals: 'app' } }, doc(), false],
    ['exclude other', { exclude: { field: 'kubernetes.container.name', equals: 'sidecar' } }, doc(), true],
    ['exclude missing field keeps', { exclude: { field: 'json.nope', equals: 'x' } }, doc(), true],
    ['exclude regex', { exclude: { field: 'json.level', regex: '^(debug|trace)$' } }, doc(), true],
    [
      'exclude regex hit',
      { exclude: { field: 'json.level', regex: '^(debug|info)$' } },
      doc({ json: { level: 'debug' } }),
      false,
    ],
    ['reads protected fields', { include: { field: 'log.offset', equals: '42' } }, doc(), true],
  ])('%s', (_, step, input, kept) => {
    const before = structuredClone(input);
    const out = filterOf([step])(input);
    expect(out !== undefined).toBe(kept);
    if (kept) expect(out).toEqual(before);
  });
});

describe('dotted paths', () => {
  const get = (field: string, json: Doc): boolean =>
    filterOf([{ include: { field, equals: 'hit' } }])({ json }) !== undefined;

  it.each<[string, string, Doc, boolean]>([
    ['nested wins over a dotted key', 'json.a.b', { a: { b: 'hit' }, 'a.b': 'miss' }, true],
    ['dotted key when nested is missing', 'json.a.b', { a: { c: 1 }, 'a.b': 'hit' }, true],
    ['dotted key when nested is a scalar', 'json.a.b', { a: 'x', 'a.b': 'hit' }, true],
    ['dotted key in the middle', 'json.a.b.c', { 'a.b': { c: 'hit' } }, true],
    ['whole dotted key at the end', 'json.a.b.c', { a: { 'b.c': 'hit' } }, true],
    ['dotted key spanning all', 'json.a.b.c', { 'a.b.c': 'hit' }, true],
    ['no spelling', 'json.a.b.c', { 'a.c': 'hit', b: 'hit' }, false],
  ])('%s', (_, field, json, found) => {
    expect(get(field, json)).toBe(found);
  });
});

describe('drop, rename, add', () => {
  it.each<[string, unknown, Doc, Doc]>([
    [
      'drop nested',
      { drop: ['json.user.id'] },
      { json: { user: { id: 1, n: 2 } } },
      { json: { user: { n: 2 } } },
    ],
    [
      'drop a label',
      { drop: ['kubernetes.labels.pod-template-hash'] },
      { kubernetes: { labels: { app: 'w', 'pod-template-hash': 'x' } } },
      { kubernetes: { labels: { app: 'w' } } },
    ],
    ['drop a whole object', { drop: ['json'] }, { json: { a: 1 }, message: 'm' }, { message: 'm' }],
    ['drop a dotted key', { drop: ['json.a.b'] }, { json: { 'a.b': 1, c: 2 } }, { json: { c: 2 } }],
    [
      'drop every spelling',
      { drop: ['json.user.password'] },
      { json: { user: { password: 'p', id: 1 }, 'user.password': 'q' } },
      { json: { user: { id: 1 } } },
    ],
    ['drop missing is a no-op', { drop: ['json.nope', 'nope'] }, { json: { a: 1 } }, { json: { a: 1 } }],
    ['drop several', { drop: ['a', 'b.c'] }, { a: 1, b: { c: 2, d: 3 } }, { b: { d: 3 } }],
    [
      'rename',
      { rename: { 'json.msg': 'json.message' } },
      { json: { msg: 'm' } },
      { json: { message: 'm' } },
    ],
    [
      'rename onto an existing field overwrites',
      { rename: { 'json.msg': 'json.message' } },
      { json: { msg: 'new', message: 'old' } },
      { json: { message: 'new' } },
    ],
    ['rename missing is a no-op', { rename: { 'json.msg': 'json.message' } }, { json: {} }, { json: {} }],
    [
      'rename to a new nested path',
      { rename: { 'json.uid': 'user.id' } },
      { json: { uid: 7 } },
      { json: {}, user: { id: 7 } },
    ],
    [
      'rename an object',
      { rename: { 'json.http': 'http' } },
      { json: { http: { status: 200 } } },
      { json: {}, http: { status: 200 } },
    ],
    [
      'rename blocked by a scalar keeps the source',
      { rename: { 'json.a': 'message.x' } },
      { json: { a: 1 }, message: 'm' },
      { json: { a: 1 }, message: 'm' },
    ],
    ['rename under itself', { rename: { a: 'a.b' } }, { a: 1 }, { a: { b: 1 } }],
    ['rename over its parent', { rename: { 'a.b': 'a' } }, { a: { b: 1, c: 2 } }, { a: 1 }],
    ['rename entries in order', { rename: { a: 'b', b: 'c' } }, { a: 1 }, { c: 1 }],
    [
      'rename onto a dotted key that exists',
      { rename: { x: 'json.a.b' } },
      { x: 1, json: { 'a.b': 0 } },
      { json: { 'a.b': 1 } },
    ],
    [
      'add',
      { add: { 'cluster.name': 'prod' } },
      { message: 'm' },
      { message: 'm', cluster: { name: 'prod' } },
    ],
    [
      'add overwrites',
      { add: { 'cluster.name': 'prod' } },
      { cluster: { name: 'x' } },
      { cluster: { name: 'prod' } },
    ],
    [
      'add into an existing object',
      { add: { 'kubernetes.cluster': 'c1' } },
      { kubernetes: { namespace: 'n' } },
      { kubernetes: { namespace: 'n', cluster: 'c1' } },
    ],
    [
      'add overwrites a dotted key where it is',
      { add: { 'cluster.name': 'prod' } },
      { 'cluster.name': 'x' },
      { 'cluster.name': 'prod' },
    ],
    [
      'add under a dotted object',
      { add: { 'a.b.c': 'v' } },
      { 'a.b': { d: 1 } },
      { 'a.b': { d: 1, c: 'v' } },
    ],
    ['add blocked by a scalar', { add: { 'message.x': 'v' } }, { message: 'm' }, { message: 'm' }],
    [
      'add blocked by an array',
      { add: { 'json.tags.x': 'v' } },
      { json: { tags: [] } },
      { json: { tags: [] } },
    ],
    [
      'add a key named like an Object method',
      { add: { 'json.toString': 'v' } },
      { json: {} },
      { json: { toString: 'v' } },
    ],
  ])('%s', (_, step, input, expected) => {
    expect(filterOf([step])(input)).toEqual(expected);
  });
});

describe('compileFilters', () => {
  it('is undefined without steps', () => {
    expect(compileFilters([], compile)).toBeUndefined();
  });

  it('applies steps in order and stops at the first that drops', () => {
    const filter = filterOf([
      { rename: { 'json.ns': 'team' } },
      { include: { field: 'team', equals: 'a' } },
      { add: { added: 'yes' } },
    ]);
    expect(filter({ json: { ns: 'a' } })).toEqual({ json: {}, team: 'a', added: 'yes' });
    const dropped: Doc = { json: { ns: 'b' } };
    expect(filter(dropped)).toBeUndefined();
    expect(dropped).toEqual({ json: {}, team: 'b' });
  });

  it('changes the document in place and returns it', () => {
    const input = doc();
    expect(filterOf([{ drop: ['json'] }])(input)).toBe(input);
    expect(input.json).toBeUndefined();
  });

  it('compiles each regex once, naming the step', () => {
    const seen: string[] = [];
    const filter = compileFilters(
      steps([{ include: { field: 'message', equals: 'x' } }, { exclude: { field: 'message', regex: 'a+' } }]),
      (pattern, what) => {
        seen.push(`${what}=${pattern}`);
        return compile(pattern);
      },
    );
    filter!({ message: 'x' });
    filter!({ message: 'x' });
    expect(seen).toEqual(['filters[1].exclude.regex=a+']);
  });

  it("passes the compiler's error through", () => {
    expect(() =>
      compileFilters(steps([{ include: { field: 'message', regex: '(' } }]), () => {
        throw new Error('filters[0].include.regex: bad');
      }),
    ).toThrow('filters[0].include.regex: bad');
  });
});

describe('parseFilters problems', () => {
  it.each<[string, unknown, string[]]>([
    [
      'not a list',
      { include: {} },
      ['filters: {"include":{}} is not valid: expected a list of filter steps'],
    ],
    [
      'a step is not a mapping',
      ['x'],
      ['filters[0]: "x" is not valid: expected a mapping with one of include, exclude, drop, rename, add'],
    ],
    ['empty step', [{}], ['filters[0]: needs one of include, exclude, drop, rename, add']],
    [
      'unknown step',
      [{ keep: 1 }],
      ["filters[0]: unknown key 'keep'; expected one of include, exclude, drop, rename, add"],
    ],
    [
      'two kinds',
      [{ include: { field: 'a', equals: 'x' }, drop: ['b'] }],
      [
        'filters[0]: has include and drop: a step does exactly one thing; write one step each, in the order wanted',
      ],
    ],
    [
      'neither equals nor regex',
      [{ include: { field: 'a' } }],
      ['filters[0].include: needs exactly one of equals or regex'],
    ],
    [
      'both equals and regex',
      [{ exclude: { field: 'a', equals: 'x', regex: 'y' } }],
      ['filters[0].exclude: needs exactly one of equals or regex'],
    ],
    [
      'missing field',
      [{ include: { equals: 'x' } }],
      ['filters[0].include.field: missing; expected a field path, e.g. kubernetes.namespace or json.user.id'],
    ],
    [
      'unknown key in a match',
      [{ include: { field: 'a', equals: 'x', regexp: 'y' } }],
      ["filters[0].include: unknown key 'regexp'; expected field with equals or regex"],
    ],
    [
      'empty equals list',
      [{ include: { field: 'a', equals: [] } }],
      ['filters[0].include.equals: [] is not valid: expected at least one value'],
    ],
    [
      'number in equals',
      [{ include: { field: 'a', equals: 404 } }],
      [
        'filters[0].include.equals: 404 is not valid: expected a string or a non-empty list of strings (quote numbers: "404")',
      ],
    ],
    ['empty path', [{ drop: [''] }], ['filters[0].drop[0]: a field path must not be empty']],
    [
      'double dot',
      [{ drop: ['json..a'] }],
      ["filters[0].drop[0]: 'json..a' has an empty segment (a leading, trailing or double dot)"],
    ],
    [
      'trailing dot',
      [{ include: { field: 'json.', equals: 'x' } }],
      ["filters[0].include.field: 'json.' has an empty segment (a leading, trailing or double dot)"],
    ],
    [
      '__proto__ segment',
      [{ drop: ['json.__proto__.x'] }],
      [
        "filters[0].drop[0]: 'json.__proto__.x' is not allowed: __proto__, constructor and prototype cannot be field names",
      ],
    ],
    [
      'constructor segment in a match',
      [{ include: { field: 'json.constructor', equals: 'x' } }],
      [
        "filters[0].include.field: 'json.constructor' is not allowed: __proto__, constructor and prototype cannot be field names",
      ],
    ],
    [
      'prototype as an add value target',
      [{ rename: { a: 'b.prototype' } }],
      [
        "filters[0].rename.a: 'b.prototype' is not allowed: __proto__, constructor and prototype cannot be field names",
      ],
    ],
    [
      'own __proto__ key in rename (as YAML gives it)',
      [{ rename: JSON.parse('{"__proto__":"x"}') }],
      [
        "filters[0].rename.__proto__: '__proto__' is not allowed: __proto__, constructor and prototype cannot be field names",
      ],
    ],
    [
      'own __proto__ key in add',
      [{ add: JSON.parse('{"__proto__":"x","ok":"y"}') }],
      [
        "filters[0].add.__proto__: '__proto__' is not allowed: __proto__, constructor and prototype cannot be field names",
      ],
    ],
    [
      'too many segments',
      [{ drop: [Array.from({ length: 17 }, () => 'a').join('.')] }],
      [`filters[0].drop[0]: '${Array.from({ length: 17 }, () => 'a').join('.')}' has more than 16 segments`],
    ],
    [
      'drop @timestamp',
      [{ drop: ['@timestamp'] }],
      [
        "filters[0].drop[0]: '@timestamp' cannot be dropped: logferry needs it for document ids and order (protected: @timestamp, log.offset, log.file.path)",
      ],
    ],
    [
      'drop a parent of log.offset',
      [{ drop: ['message', 'log'] }],
      [
        "filters[0].drop[1]: 'log' cannot be dropped: it holds log.offset, which logferry needs for document ids and order (protected: @timestamp, log.offset, log.file.path)",
      ],
    ],
    [
      'rename log.file.path',
      [{ rename: { 'log.file.path': 'path' } }],
      [
        'filters[0].rename["log.file.path"]: \'log.file.path\' cannot be renamed: logferry needs it for document ids and order (protected: @timestamp, log.offset, log.file.path)',
      ],
    ],
    [
      'rename onto log.offset',
      [{ rename: { 'json.offset': 'log.offset' } }],
      [
        'filters[0].rename["json.offset"]: \'log.offset\' cannot be replaced: logferry needs it for document ids and order (protected: @timestamp, log.offset, log.file.path)',
      ],
    ],
    [
      'add under log.file.path',
      [{ add: { 'log.file.path.x': 'v' } }],
      [
        'filters[0].add["log.file.path.x"]: \'log.file.path.x\' cannot be replaced: it is inside log.file.path, which logferry needs for document ids and order (protected: @timestamp, log.offset, log.file.path)',
      ],
    ],
    ['empty drop', [{ drop: [] }], ['filters[0].drop: [] is not valid: expected at least one field']],
    [
      'drop not a list',
      [{ drop: 'a' }],
      ['filters[0].drop: "a" is not valid: expected a list of field paths'],
    ],
    ['empty rename', [{ rename: {} }], ['filters[0].rename: expected at least one field']],
    [
      'rename a list',
      [{ rename: ['a'] }],
      ['filters[0].rename: ["a"] is not valid: expected a mapping of field: new field'],
    ],
    [
      'add a number',
      [{ add: { replicas: 3 } }],
      ['filters[0].add.replicas: 3 is not valid: expected a string (quote numbers and booleans: "3")'],
    ],
    [
      'every problem, each step named',
      [{ drop: ['ok'] }, { add: { a: 1 } }, { include: { field: 'a' } }],
      [
        'filters[1].add.a: 1 is not valid: expected a string (quote numbers and booleans: "3")',
        'filters[2].include: needs exactly one of equals or regex',
      ],
    ],
  ])('%s', (_, input, problems) => {
    expect(parseFilters(input)).toEqual({ ok: false, problems });
  });

  it('accepts nothing, an empty list, and every step kind', () => {
    expect(parseFilters(undefined)).toEqual({ ok: true, value: [] });
    expect(parseFilters(null)).toEqual({ ok: true, value: [] });
    expect(parseFilters([])).toEqual({ ok: true, value: [] });
    expect(
      parseFilters([
        { include: { field: 'kubernetes.namespace', equals: 'x' } },
        { exclude: { field: 'message', regex: '^GET /health' } },
        { include: { field: 'kubernetes.namespace', equals: ['x', 'y'] } },
        { drop: ['json.password'] },
        { rename: { 'json.msg': 'json.message', 'json.lvl': 'json.level' } },
        { add: { 'cluster.name': 'prod' } },
      ]),
    ).toEqual({
      ok: true,
      value: [
        { kind: 'include', field: 'kubernetes.namespace', equals: ['x'], regex: undefined },
        { kind: 'exclude', field: 'message', equals: undefined, regex: '^GET /health' },
        { kind: 'include', field: 'kubernetes.namespace', equals: ['x', 'y'], regex: undefined },
        { kind: 'drop', fields: ['json.password'] },
        {
          kind: 'rename',
          pairs: [
            ['json.msg', 'json.message'],
            ['json.lvl', 'json.level'],
          ],
        },
        { kind: 'add', pairs: [['cluster.name', 'prod']] },
      ],
    });
  });

  it('uses the given root in problems', () => {
    expect(parseFilters([{}], 'config a.yaml: filters')).toEqual({
      ok: false,
      problems: ['config a.yaml: filters[0]: needs one of include, exclude, drop, rename, add'],
    });
  });

  it.each<[readonly PropertyKey[], string]>([
    [[], 'filters'],
    [[2, 'include', 'field'], 'filters[2].include.field'],
    [[0, 'rename', 'json.msg'], 'filters[0].rename["json.msg"]'],
    [[0, 'add', '@timestamp'], 'filters[0].add.@timestamp'],
  ])('issuePath %j', (path, text) => {
    expect(issuePath('filters', path)).toBe(text);
  });

  it('pathProblem accepts ordinary paths', () => {
    for (const p of ['message', '@timestamp', 'json.user.id', 'kubernetes.labels.pod-template-hash', 'a/b']) {
      expect(pathProblem(p)).toBeUndefined();
    }
  });
});

describe('limitMessage', () => {
  const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

  it.each<[string, string, number, string, boolean]>([
    ['ASCII within', 'hello', 10, 'hello', false],
    ['ASCII exact fit', 'hello', 5, 'hello', false],
    ['ASCII cut', 'hello world', 5, 'hello', true],
    ['empty', '', 0, '', false],
    ['zero limit', 'abc', 0, '', true],
    ['negative limit', 'abc', -1, '', true],
    ['2-byte char exact fit', 'aé', 3, 'aé', false],
    ['2-byte char cut before', 'aé', 2, 'a', true],
    ['3-byte char at the cut', 'ab€', 4, 'ab', true],
    ['3-byte char exact fit', 'ab€', 5, 'ab€', false],
    ['4-byte char (surrogate pair) at the cut', 'a😀b', 4, 'a', true],
    ['4-byte char exact fit', 'a😀b', 5, 'a😀', true],
    ['limit smaller than one char', '😀', 3, '', true],
    ['limit smaller than one 3-byte char', '€', 2, '', true],
    ['lone surrogate counts as U+FFFD (3 bytes)', `a\ud800b`, 4, `a\ud800`, true],
    ['lone low surrogate', `\udc00\udc00`, 5, `\udc00`, true],
    ['high surrogate at the end', `ab\ud83d`, 4, 'ab', true],
  ])('%s', (_, message, max, expected, truncated) => {
    const out = limitMessage(message, max);
    expect(out).toEqual({ message: expected, truncated });
    expect(bytes(out.message)).toBeLessThanOrEqual(Math.max(0, max));
  });

  it('keeps the longest prefix that fits, for any text', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 60 }),
        fc.integer({ min: 0, max: 200 }),
        (text, max) => {
          const out = limitMessage(text, max);
          expect(text.startsWith(out.message)).toBe(true);
          expect(bytes(out.message)).toBeLessThanOrEqual(max);
          expect(out.truncated).toBe(bytes(text) > max);
          if (out.truncated) {
            // one more character would not fit (a surrogate pair is one character)
            const next = String.fromCodePoint(text.codePointAt(out.message.length)!);
            expect(bytes(out.message + next)).toBeGreaterThan(max);
          } else {
            expect(out.message).toBe(text);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('filters on arbitrary documents', () => {
  const SEGMENTS = [
    'a',
    'b',
    'json',
    'log',
    'x',
    'toString',
    'valueOf',
    'hasOwnProperty',
    '__defineGetter__',
    'a.b',
  ];
  const path = fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 3 }).map((s) => s.join('.'));
  const KEYS = [...SEGMENTS, '__proto__', 'constructor', 'prototype', 'a.b.x', ''];

  type Tree = { obj: Array<[string, Tree]> } | { arr: Tree[] } | { scalar: string | number | boolean | null };
  /** Documents as JSON text with any keys, `__proto__` included: JSON.parse makes them own properties. */
  const tree = fc.letrec<{ node: Tree; obj: Tree }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc
        .oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.boolean(), fc.constant(null))
        .map((scalar): Tree => ({ scalar })),
      tie('obj'),
      fc.array(tie('node'), { maxLength: 3 }).map((arr): Tree => ({ arr })),
    ),
    obj: fc
      .array(fc.tuple(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 3 })), tie('node')), {
        maxLength: 5,
      })
      .map((obj): Tree => ({ obj })),
  }));
  const text = (t: Tree): string =>
    'obj' in t
      ? `{${t.obj.map(([k, v]) => `${JSON.stringify(k)}:${text(v)}`).join(',')}}`
      : 'arr' in t
        ? `[${t.arr.map(text).join(',')}]`
        : JSON.stringify(t.scalar);
  const document = tree.obj.map((t) => JSON.parse(text(t)) as Doc);

  const step = fc.oneof(
    fc.record({
      include: fc.oneof(
        fc.record({ field: path, equals: fc.constantFrom('a', '1', 'true', 'null') }),
        fc.record({ field: path, regex: fc.constantFrom('a', '^$', '.') }),
      ),
    }),
    fc.record({
      exclude: fc.record({ field: path, equals: fc.array(fc.string({ maxLength: 2 }), { minLength: 1 }) }),
    }),
    fc.record({ drop: fc.array(path, { minLength: 1, maxLength: 3 }) }),
    fc.record({ rename: fc.dictionary(path, path, { minKeys: 1, maxKeys: 3 }) }),
    fc.record({ add: fc.dictionary(path, fc.string({ maxLength: 3 }), { minKeys: 1, maxKeys: 3 }) }),
  );

  it('never throw, never touch Object.prototype, and leave plain JSON', () => {
    const protoNames = Object.getOwnPropertyNames(Object.prototype).sort();
    fc.assert(
      fc.property(fc.array(step, { maxLength: 5 }), document, (config, input) => {
        const parsed = parseFilters(config);
        fc.pre(parsed.ok);
        const filter = parsed.ok ? compileFilters(parsed.value, compile) : undefined;
        const out = filter === undefined ? input : filter(input);
        expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoNames);
        expect(Object.keys(Object.prototype)).toEqual([]);
        expect(({} as Doc).a).toBeUndefined();
        if (out !== undefined) {
          const check = (v: unknown): void => {
            if (typeof v !== 'object' || v === null) return;
            expect([Object.prototype, Array.prototype]).toContain(Object.getPrototypeOf(v));
            for (const key of Object.keys(v)) check((v as Doc)[key]);
          };
          check(out);
          expect(() => JSON.stringify(out)).not.toThrow();
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('see __proto__ keys of a document as ordinary own keys', () => {
    const input = JSON.parse('{"__proto__":{"polluted":"yes"},"json":{"__proto__":{"x":1},"a":"1"}}') as Doc;
    const out = filterOf([
      { include: { field: 'json.a', equals: '1' } },
      { add: { 'json.b': 'v', c: 'w' } },
      { rename: { 'json.a': 'z.a' } },
      { drop: ['json.x'] },
    ])(input);
    expect(out).toBeDefined();
    expect(({} as Doc).polluted).toBeUndefined();
    expect(Object.hasOwn(out!, '__proto__')).toBe(true);
    expect(JSON.parse(JSON.stringify(out))).toEqual(
      JSON.parse(
        '{"__proto__":{"polluted":"yes"},"json":{"__proto__":{"x":1},"b":"v"},"c":"w","z":{"a":"1"}}',
      ),
    );
  });
});
