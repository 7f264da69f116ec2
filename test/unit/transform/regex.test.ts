import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/errors.ts';
import {
  compileParserRegex,
  compileRegex,
  MAX_REGEX_INPUT,
  MAX_REGEX_PROGRAM_SIZE,
} from '../../../src/transform/regex.ts';

const NGINX =
  '^(?P<remote_addr>\\S+) - (?P<remote_user>\\S+) \\[(?P<time_local>[^\\]]+)\\] "(?P<method>[A-Z]+) (?P<path>\\S+) (?P<protocol>[^"]+)" (?P<status>\\d{3}) (?P<body_bytes_sent>\\d+)';

describe('compileRegex: matching', () => {
  it.each<[string, string, string, Record<string, string> | undefined]>([
    [
      'nginx access log',
      NGINX,
      '10.0.0.1 - bob [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "-" "curl"',
      {
        remote_addr: '10.0.0.1',
        remote_user: 'bob',
        time_local: '10/Oct/2000:13:55:36 -0700',
        method: 'GET',
        path: '/a.gif',
        protocol: 'HTTP/1.0',
        status: '200',
        body_bytes_sent: '2326',
      },
    ],
    ['(?<name>) syntax', '(?<k>\\w+)=(?<v>\\w+)', 'x k1=v1 y', { k: 'k1', v: 'v1' }],
    ['unanchored: first match anywhere', '(?P<n>\\d+)', 'abc 12 34', { n: '12' }],
    ['anchored, no match', '^(?P<n>\\d+)', 'abc 12', undefined],
    ['no match', '(?P<n>\\d+)', 'no digits', undefined],
    ['an unmatched optional group is left out', '(?P<a>a)(?P<b>b)?', 'ac', { a: 'a' }],
    ['an empty group is kept', '(?P<a>a*)x', 'x', { a: '' }],
    ['unnamed groups are not fields', '(\\w+) (?P<b>\\w+)', 'one two', { b: 'two' }],
    ['unicode, surrogate pairs', '(?P<w>\\pL+) (?P<e>.)', 'héllo 😀', { w: 'héllo', e: '😀' }],
    ['flags inline', '(?i)level=(?P<l>INFO)', 'LEVEL=info', { l: 'info' }],
    ['. stops at a newline', '(?P<first>.+)', 'one\ntwo', { first: 'one' }],
    ['(?s) crosses newlines', '(?s)(?P<all>.+)', 'one\ntwo', { all: 'one\ntwo' }],
  ])('%s', (_name, pattern, text, expected) => {
    const matcher = compileRegex(pattern, 'parser "t"');
    const groups = matcher.groups(text);
    expect(groups === undefined ? undefined : { ...groups }).toEqual(expected);
    expect(matcher.test(text)).toBe(expected !== undefined);
  });

  describe('prototype safety', () => {
    afterEach(() => {
      delete (Object.prototype as Record<string, unknown>).polluted;
    });

    it('a group named __proto__ or constructor is own data', () => {
      const groups = compileRegex('(?P<__proto__>\\w+) (?P<constructor>\\w+)', 'parser "t"').groups(
        'polluted yes',
      );
      expect(Object.getPrototypeOf(groups)).toBeNull();
      expect(Object.keys(groups!)).toEqual(['__proto__', 'constructor']);
      expect(JSON.stringify(groups)).toBe('{"__proto__":"polluted","constructor":"yes"}');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });

  it('groups gives nothing beyond the input cap; test has no cap', () => {
    const matcher = compileRegex('(?P<x>x)', 'parser "t"');
    expect(matcher.groups(`${'y'.repeat(MAX_REGEX_INPUT - 1)}x`)).toEqual({ x: 'x' });
    expect(matcher.groups(`${'y'.repeat(MAX_REGEX_INPUT)}x`)).toBeUndefined();
    expect(matcher.test(`${'y'.repeat(MAX_REGEX_INPUT * 8)}x`)).toBe(true);
    expect(compileRegex('(?P<x>x)', 'parser "t"', 10).groups('yyyyyyyyyyx')).toBeUndefined();
  });
});

// Patterns that take exponential time on a backtracking engine: JavaScript's RegExp runs
// /^(a+)+$/ on 'a'.repeat(30) + 'b' for seconds, and on these inputs would not finish in a lifetime.
// On RE2 they are linear. No wall-time assertion: finishing within the test timeout is the test.
describe('no catastrophic backtracking', () => {
  it.each<[string, string]>([
    ['^(?P<a>a+)+$', `${'a'.repeat(100_000)}b`],
    ['(?P<x>x+x+)+y', 'x'.repeat(50_000)],
    ['^(?P<w>\\w+\\s?)*$', `${'word '.repeat(10_000)}!`],
    ['(?P<a>a|a)*b', 'a'.repeat(50_000)],
    ['^(?P<a>(a*)*)$', `${'a'.repeat(50_000)}b`],
  ])('%s', (pattern, text) => {
    const matcher = compileRegex(pattern, 'parser "evil"', Number.POSITIVE_INFINITY);
    expect(matcher.groups(text)).toBeUndefined();
    expect(matcher.test(text)).toBe(false);
    // and at the default cap
    expect(compileRegex(pattern, 'parser "evil"').groups(text.slice(-MAX_REGEX_INPUT))).toBeUndefined();
  });
});

describe('compileRegex: invalid patterns', () => {
  it.each<[string, string, string]>([
    ['lookahead', 'a(?=b)', 'invalid or unsupported Perl syntax: `(?=`'],
    ['negative lookahead', '(?!x)(?P<a>.)', 'invalid or unsupported Perl syntax: `(?!`'],
    ['lookbehind', '(?<=a)b', 'invalid named capture'],
    ['negative lookbehind', '(?<!a)b', 'invalid named capture'],
    ['backreference', '(?P<a>x)\\1', 'invalid escape sequence: `\\1`'],
    ['named backreference', '(?P<a>x)\\k<a>', 'invalid escape sequence: `\\k`'],
    ['possessive quantifier', 'a++', 'invalid nested repetition operator'],
    ['unclosed group', '(?P<a>x', 'missing closing )'],
    ['unclosed class', '[a-', 'missing closing ]'],
    ['repeat count over 1000', 'a{1001}', 'invalid repeat count'],
    ['duplicate group name', '(?P<a>x)(?P<a>y)', 'duplicate capture group name'],
    ['dotted group name', '(?P<log.level>x)', 'invalid named capture'],
    ['multi-line pattern stays one line', 'a\n(b', 'missing closing ): `a\\n(b`'],
  ])('%s', (_name, pattern, reason) => {
    let error: unknown;
    try {
      compileRegex(pattern, 'parser "nginx"');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UsageError);
    const message = (error as UsageError).message;
    expect((error as UsageError).code).toBe('LOGFERRY_ERR_USAGE');
    expect(message).not.toContain('\n');
    expect(message.startsWith('parser "nginx": invalid regex: ')).toBe(true);
    expect(message).toContain(reason);
    expect(message.endsWith('; RE2 syntax, no lookaround or backreferences')).toBe(true);
  });

  it('rejects a pattern whose program is too large', () => {
    expect(() => compileRegex('x'.repeat(MAX_REGEX_PROGRAM_SIZE + 10), 'filter "f"')).toThrow(
      /^filter "f": regex too large \(program size \d+, at most 20000\); simplify it$/,
    );
  });
});

describe('compileParserRegex', () => {
  it('names the parser, and compiles a pattern with named groups', () => {
    expect(compileParserRegex('nginx', NGINX).groups('1.2.3.4 - - [x] "GET / HTTP/1.1" 200 5')).toMatchObject(
      { remote_addr: '1.2.3.4', status: '200' },
    );
    expect(() => compileParserRegex('my "p"', '(')).toThrow(/^parser "my \\"p\\"": invalid regex: /);
  });

  it.each(['\\d+', '(\\d+)', ''])('rejects %j: no named groups', (pattern) => {
    expect(() => compileParserRegex('p', pattern)).toThrow(UsageError);
    expect(() => compileParserRegex('p', pattern)).toThrow(
      'parser "p": the regex has no named groups; name the fields as (?P<name>...)',
    );
  });
});
