import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { type LogfmtFields, parseLogfmt } from '../../../src/transform/logfmt.ts';

/** The fields as entries sorted by key. */
function entries(fields: LogfmtFields | undefined): Array<[string, string | true]> | undefined {
  return fields === undefined ? undefined : sorted([...fields]);
}

function sorted(list: Array<[string, string | true]>): Array<[string, string | true]> {
  return list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

describe('parseLogfmt', () => {
  it.each<[string, string, Record<string, string | true>]>([
    ['a lone pair', 'a=b', { a: 'b' }],
    [
      'typical line',
      'ts=2026-11-23T12:00:00Z level=info msg="request served" status=200',
      { ts: '2026-11-23T12:00:00Z', level: 'info', msg: 'request served', status: '200' },
    ],
    ['quoted value with spaces and =', 'a="x = y" b=1', { a: 'x = y', b: '1' }],
    ['escaped quote and backslash', 'msg="say \\"hi\\" c:\\\\dir" n=1', { msg: 'say "hi" c:\\dir', n: '1' }],
    [
      'escapes n r t b f / and \\u',
      'a="1\\n2\\r3\\t4\\b5\\f6\\/7\\u00e9\\u263A" b=1',
      { a: '1\n2\r3\t4\b5\f6/7é☺', b: '1' },
    ],
    ['unknown escape kept as is', 'a="\\x41 \\q" b=1', { a: '\\x41 \\q', b: '1' }],
    ['short or bad \\u kept as is', 'a="\\u12" b="\\uZZZZ"', { a: '\\u12', b: '\\uZZZZ' }],
    ['empty value', 'a= b=1', { a: '', b: '1' }],
    ['empty quoted value', 'a="" b=""', { a: '', b: '' }],
    ['empty value last', 'a=1 b=', { a: '1', b: '' }],
    ['bare key is a flag', 'a=1 b=2 cached', { a: '1', b: '2', cached: true }],
    ['bare keys between pairs', 'a=1 x b=2', { a: '1', x: true, b: '2' }],
    ['= inside a bare value', 'url=/search?q=a&n=2 status=200', { url: '/search?q=a&n=2', status: '200' }],
    ['backslash in a bare value is literal', 'path=C:\\tmp\\x n=1', { path: 'C:\\tmp\\x', n: '1' }],
    [
      'unicode keys and values',
      'ключ=значение emoji=😀 msg="héllo wörld 日本"',
      { ключ: 'значение', emoji: '😀', msg: 'héllo wörld 日本' },
    ],
    ['key characters _ . - @ / $ #', 'a_b.c-d@e/f$g#h=1 x=2', { 'a_b.c-d@e/f$g#h': '1', x: '2' }],
    ['duplicate keys: last wins', 'a=1 b=2 a=3', { a: '3', b: '2' }],
    ['flag then pair with the same key', 'a=1 b=2 a', { a: true, b: '2' }],
    ['tabs, newlines and runs of spaces separate', '  a=1\tb=2 \n c="x y"  ', { a: '1', b: '2', c: 'x y' }],
    ['integer-like keys', '1=a 2=b', { 1: 'a', 2: 'b' }],
    ['a bare value keeps its punctuation (lenient)', 'a=1, b=2', { a: '1,', b: '2' }],
  ])('%s', (_name, message, expected) => {
    expect(entries(parseLogfmt(message))).toEqual(sorted(Object.entries(expected)));
  });

  it('keeps the line order; a duplicate keeps its first place and its last value', () => {
    expect([...parseLogfmt('b=1 a=2 c=3 b=4')!]).toEqual([
      ['b', '4'],
      ['a', '2'],
      ['c', '3'],
    ]);
  });

  it.each<[string, string]>([
    ['empty', ''],
    ['whitespace', ' \t\n '],
    ['prose', 'user logged in at 10:00'],
    ['a single word', 'started'],
    ['prose ending in a pair', 'Starting server on port=8080'],
    ['prose with a pair inside', 'retrying: attempt=3 of max=5'],
    ['a pair then prose', 'a=b and then some words'],
    ['pairs do not outnumber flags', 'a=1 b=2 x y'],
    ['a pair then a time', 'status=ok at 10:00'],
    ['a URL with a query string', 'http://example.com/?a=b'],
    ['request line', 'GET /index.html?a=b HTTP/1.1'],
    ['JSON', '{"a":1,"b":2}'],
    ['yaml-ish', 'key: value'],
    ['missing key', '=b c=d'],
    ['unterminated quote', 'a="unterminated b=1'],
    ['unterminated after an escaped quote', 'a="x\\" b=1'],
    ['backslash at the very end', 'a="x\\'],
    ['quote inside a bare value', 'a=b"c d=e'],
    ['text right after a quoted value', 'a="b"c d=e'],
    ['quoted key', '"a"=b c=d'],
    ['key with a colon', 'a=1 b:c=2'],
  ])('%s is not logfmt', (_name, message) => {
    expect(parseLogfmt(message)).toBeUndefined();
  });

  describe('prototype safety', () => {
    afterEach(() => {
      delete (Object.prototype as Record<string, unknown>).polluted;
    });

    it('keeps __proto__, constructor and prototype as data', () => {
      const fields = parseLogfmt('__proto__=x constructor=y prototype=z toString=w polluted');
      expect([...fields!]).toEqual([
        ['__proto__', 'x'],
        ['constructor', 'y'],
        ['prototype', 'z'],
        ['toString', 'w'],
        ['polluted', true],
      ]);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
    });
  });
});

// Round trip: any key/value map, written as logfmt the way go-logfmt writes it, reads back the same.

const KEY_ASCII = [...'abcxyzABCXYZ0189_.-@/$#'];
const key = fc.string({
  unit: fc.oneof(
    fc.constantFrom(...KEY_ASCII),
    fc.integer({ min: 0x80, max: 0xffff }).map((c) => String.fromCharCode(c)),
  ),
  minLength: 1,
  maxLength: 12,
});
const value = fc.string({ unit: 'binary', maxLength: 30 });

/** A value as go-logfmt writes it: bare when it can be, else quoted with JSON-like escapes. */
function quote(v: string): string {
  const needsQuotes = v === '' || [...v].some((c) => c.charCodeAt(0) <= 0x20 || c === '"');
  if (!needsQuotes) return v;
  let body = '';
  for (const c of v) {
    const code = c.charCodeAt(0);
    if (c === '\\') body += '\\\\';
    else if (c === '"') body += '\\"';
    else if (c === '\n') body += '\\n';
    else if (c === '\r') body += '\\r';
    else if (c === '\t') body += '\\t';
    else if (code < 0x20) body += `\\u${code.toString(16).padStart(4, '0')}`;
    else body += c;
  }
  return `"${body}"`;
}

describe('parseLogfmt properties', () => {
  it('reads back any map of keys to strings and flags', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(key, value), { selector: ([k]) => k, minLength: 1, maxLength: 8 }),
        fc.uniqueArray(key, { maxLength: 3 }),
        fc.constantFrom(' ', '\t', '  '),
        (pairs, flagKeys, space) => {
          const flags = flagKeys.filter((k) => !pairs.some(([p]) => p === k)).slice(0, pairs.length - 1);
          const line = [...pairs.map(([k, v]) => `${k}=${quote(v)}`), ...flags].join(space);
          const expected: Array<[string, string | true]> = [
            ...pairs,
            ...flags.map((k): [string, true] => [k, true]),
          ];
          expect(entries(parseLogfmt(line))).toEqual(sorted(expected));
        },
      ),
    );
  });

  it('never throws, and returns string keys with string or true values', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 80 }),
          fc
            .array(fc.oneof(fc.constantFrom('=', '"', '\\', ' ', 'a', 'b', '\\"', '\\u', '__proto__'), value))
            .map((parts) => parts.join('')),
        ),
        (message) => {
          const fields = parseLogfmt(message);
          if (fields !== undefined) {
            for (const [k, v] of fields)
              expect(typeof k === 'string' && (v === true || typeof v === 'string')).toBe(true);
          }
        },
      ),
    );
  });
});
