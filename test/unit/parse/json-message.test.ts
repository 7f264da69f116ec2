import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  jsonObjectText,
  MAX_JSON_DEPTH,
  parseJsonObject,
  rawJsonText,
} from '../../../src/parse/json-message.ts';

/** `depth` objects nested in one another: depth 1 is `{}`. */
function nestedObjects(depth: number): string {
  return `${'{"a":'.repeat(depth - 1)}{}${'}'.repeat(depth - 1)}`;
}

describe('jsonObjectText', () => {
  it.each<[string, string, string]>([
    ['flat object', '{"level":"info","msg":"hi"}', '{"level":"info","msg":"hi"}'],
    ['empty object', '{}', '{}'],
    // A one-line object without duplicate keys is already valid JSON text: kept as written
    // (parsing validates it; serializing it again would only cost time)
    ['whitespace inside is kept', '{ "a" : 1 , "b" : [ 1 , 2 ] }', '{ "a" : 1 , "b" : [ 1 , 2 ] }'],
    ['a line break inside is serialized again (it would break NDJSON)', '{"a":\n1}', '{"a":1}'],
    ['duplicate keys with a line break', '{"a":1,\r\n"a":2}', '{"a":2}'],
    ['surrounding whitespace', ' \t\r\n{"a":1}\r\n ', '{"a":1}'],
    ['nested', '{"a":{"b":{"c":[{"d":null}]}},"e":true}', '{"a":{"b":{"c":[{"d":null}]}},"e":true}'],
    ['duplicate keys keep the last', '{"a":1,"b":2,"a":3}', '{"a":3,"b":2}'],
    ['nested duplicate keys', '{"o":{"x":1,"x":{"y":2}}}', '{"o":{"x":{"y":2}}}'],
    ['escapes are kept as written', '{"a":"\\u0041\\/\\n"}', '{"a":"\\u0041\\/\\n"}'],
    ['escapes beside a duplicate key are normalized', '{"a":"\\u0041","a":"\\/"}', '{"a":"/"}'],
    ['a lone surrogate stays escaped', '{"a":"\\ud800"}', '{"a":"\\ud800"}'],
    ['raw control-free unicode', '{"msg":"héllo 😀"}', '{"msg":"héllo 😀"}'],
    ['brackets in strings', `{"a":"${'{['.repeat(100)}","b":"]}"}`, `{"a":"${'{['.repeat(100)}","b":"]}"}`],
    [
      'escaped quotes and backslashes in strings',
      '{"a":"x\\"{{{\\\\","b":"\\\\\\"[["}',
      '{"a":"x\\"{{{\\\\","b":"\\\\\\"[["}',
    ],
    [
      'an escaped quote does not end a string',
      `{"a":"\\"${'{'.repeat(100)}"}`,
      `{"a":"\\"${'{'.repeat(100)}"}`,
    ],
    ['short numbers as written', '{"a":1.0,"b":-0.5,"c":100}', '{"a":1.0,"b":-0.5,"c":100}'],
    ['short numbers beside a duplicate key, as doubles', '{"a":1.0,"a":2.50}', '{"a":2.5}'],
    ['64-bit integer keeps its digits', '{"id":12345678901234567890}', '{"id":12345678901234567890}'],
    ['negative big integer', '{"id":-9223372036854775808}', '{"id":-9223372036854775808}'],
    ['long fraction keeps its digits', '{"t":1700000000.123456789}', '{"t":1700000000.123456789}'],
    ['exponent beyond a double', '{"x":1e400,"y":[2E-5]}', '{"x":1e400,"y":[2E-5]}'],
    [
      'big numbers beside short ones',
      '{"a":1.0,"id":12345678901234567890}',
      '{"a":1.0,"id":12345678901234567890}',
    ],
    // A long number that prints back as its own text takes the plain parse; the bytes are the same.
    ['long float that round-trips (zap ts)', '{"ts":1795334400.1234567}', '{"ts":1795334400.1234567}'],
    ['exponent that round-trips', '{"x":1e+21,"y":-1.5e-7}', '{"x":1e+21,"y":-1.5e-7}'],
    [
      'round-tripping long number beside short ones',
      '{"ts":1795334400.1234567,"a":1.0,"b":[2.50]}',
      '{"ts":1795334400.1234567,"a":1.0,"b":[2.50]}',
    ],
    [
      'round-tripping long number beside a big integer',
      '{"ts":1795334400.1234567,"span":12345678901234567890}',
      '{"ts":1795334400.1234567,"span":12345678901234567890}',
    ],
    // 15 digits in 16 characters: normalized alone, kept as text when a long number calls for the
    // number-keeping parse (as before the round-trip check)
    ['15 digits, 16 characters, alone', '{"x":1.50000000000000}', '{"x":1.50000000000000}'],
    [
      '15 digits, 16 characters, beside a big integer',
      '{"x":1.50000000000000,"id":12345678901234567890}',
      '{"x":1.50000000000000,"id":12345678901234567890}',
    ],
    [
      '15 digits, 16 characters, beside a round-tripping long number',
      '{"x":1.50000000000000,"ts":1795334400.1234567}',
      '{"x":1.50000000000000,"ts":1795334400.1234567}',
    ],
    ['exponent with trailing zeros', '{"x":1.50e3}', '{"x":1.50e3}'],
    ['digits inside strings are text', '{"a":"12345678901234567890"}', '{"a":"12345678901234567890"}'],
    ['depth limit reached', nestedObjects(MAX_JSON_DEPTH), nestedObjects(MAX_JSON_DEPTH)],
  ])('%s', (_name, message, expected) => {
    expect(jsonObjectText(message)).toBe(expected);
  });

  it.each<[string, string]>([
    ['empty', ''],
    ['whitespace', '  \t '],
    ['plain text', 'hello world'],
    ['text that starts with a brace', '{hello} world'],
    ['text mentioning JSON', 'got {"a":1}'],
    ['array', '[{"a":1}]'],
    ['string', '"{\\"a\\":1}"'],
    ['number', '42'],
    ['null', 'null'],
    ['true', 'true'],
    ['truncated object', '{"a":1'],
    ['trailing text', '{"a":1} tail'],
    ['two objects', '{"a":1}{"b":2}'],
    ['single quotes', "{'a':1}"],
    ['trailing comma', '{"a":1,}'],
    ['unterminated string', '{"a":"}'],
    ['non-JSON whitespace around', '\u00a0{"a":1}'],
    ['one level too deep', nestedObjects(MAX_JSON_DEPTH + 1)],
    ['too deep through arrays', `{"a":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`],
    ['very deep', nestedObjects(100_000)],
    [
      'too deep after a string ending in an escaped backslash',
      `{"a":"\\\\","b":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`,
    ],
  ])('%s is not an object', (_name, message) => {
    expect(jsonObjectText(message)).toBeUndefined();
  });

  describe('__proto__ keys', () => {
    afterEach(() => {
      delete (Object.prototype as Record<string, unknown>).polluted;
    });

    it.each<[string, string]>([
      ['top level', '{"__proto__":{"polluted":true},"a":1}'],
      ['nested', '{"a":{"__proto__":{"polluted":true}}}'],
      [
        'with a big number (number-preserving parse)',
        '{"__proto__":{"polluted":true},"id":12345678901234567890}',
      ],
    ])('%s is kept as data and pollutes nothing', (_name, message) => {
      expect(jsonObjectText(message)).toBe(message);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
    });
  });

  it('returns valid JSON of the same object for any JSON object, and never throws', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 5 })), (object) => {
        const text = jsonObjectText(JSON.stringify(object));
        expect(text).toBeDefined();
        expect(JSON.parse(text!)).toStrictEqual(JSON.parse(JSON.stringify(object)));
      }),
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        const text = jsonObjectText(`{${s}`);
        if (text !== undefined) expect(typeof JSON.parse(text)).toBe('object');
      }),
    );
  });
});

describe('parseJsonObject', () => {
  it('is what jsonObjectText gives, up to serialization: one parse gives the text and the fields', () => {
    for (const message of [
      '{"level":"info","ts":1795334400.1234567,"msg":"hi"}',
      '{"id":12345678901234567890,"a":1.0}',
      '{"a":1,"a":{"b":[1,2]}}',
      '{"__proto__":{"x":1}}',
    ]) {
      const object = parseJsonObject(message);
      expect(object).toBeDefined();
      expect(JSON.stringify(object)).toBe(JSON.stringify(parseJsonObject(jsonObjectText(message)!)));
    }
    expect(parseJsonObject('{"level":"info","n":2}')).toEqual({ level: 'info', n: 2 });
  });

  it.each(['', 'text', '[1]', '{"a":1', nestedObjects(MAX_JSON_DEPTH + 1)])('%j: undefined', (message) => {
    expect(parseJsonObject(message)).toBeUndefined();
  });

  it('a number a double would not keep is a raw JSON value, with its source text', () => {
    const object = parseJsonObject('{"ts":1795334400123456789,"n":1.0,"s":"1"}')!;
    expect(rawJsonText(object.ts)).toBe('1795334400123456789');
    expect(object.n).toBe(1);
    expect(rawJsonText(object.n)).toBeUndefined();
    expect(rawJsonText(object.s)).toBeUndefined();
    expect(rawJsonText({ rawJSON: '1' })).toBeUndefined();
    expect(rawJsonText(null)).toBeUndefined();
  });
});
