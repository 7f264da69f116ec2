import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonObjectText } from '../../../src/parse/json-message.ts';
import { parseLogfmt } from '../../../src/transform/logfmt.ts';
import { compileParserRegex } from '../../../src/transform/regex.ts';
import {
  BUILTIN_PARSERS,
  jsonParser,
  levelOf,
  logfmtParser,
  messageOf,
  parserFor,
  parseTime,
  regexParser,
  timeOf,
} from '../../../src/transform/structured.ts';
import type { Matcher, MessageParser } from '../../../src/transform/types.ts';

describe('levelOf', () => {
  it.each<[string, Record<string, unknown>, string | undefined]>([
    ['level, lower-cased', { level: 'INFO' }, 'info'],
    ['lvl', { lvl: 'Warn' }, 'warn'],
    ['severity', { severity: 'ERROR' }, 'error'],
    ['log.level, dotted key (ECS)', { 'log.level': 'DEBUG' }, 'debug'],
    ['log.level, nested', { log: { level: 'notice' } }, 'notice'],
    ['loglevel', { loglevel: 'trace' }, 'trace'],
    ['kept as written otherwise', { level: 'Warning' }, 'warning'],
    ['pino 10', { level: 10 }, 'trace'],
    ['pino 20', { level: 20 }, 'debug'],
    ['pino 30', { level: 30 }, 'info'],
    ['pino 40', { level: 40 }, 'warn'],
    ['pino 50', { level: 50 }, 'error'],
    ['pino 60', { level: 60 }, 'fatal'],
    ['another number', { level: 35 }, undefined],
    ['a numeric string stays text', { level: '30' }, '30'],
    ['empty string', { level: '' }, undefined],
    ['longer than 32 characters', { level: 'x'.repeat(33) }, undefined],
    ['32 characters', { level: 'X'.repeat(32) }, 'x'.repeat(32)],
    ['object', { level: { name: 'info' } }, undefined],
    ['boolean (logfmt flag)', { level: true }, undefined],
    ['none', { msg: 'hi' }, undefined],
    ['order: level before severity', { severity: 'ERROR', level: 'info' }, 'info'],
    ['first usable wins', { level: 35, severity: 'warning' }, 'warning'],
    ['log that is not an object', { log: 'x', loglevel: 'info' }, 'info'],
  ])('%s', (_name, fields, expected) => {
    expect(levelOf(fields)).toBe(expected);
  });
});

describe('messageOf', () => {
  it.each<[string, Record<string, unknown>, string | undefined]>([
    ['message', { message: 'hello' }, 'hello'],
    ['msg', { msg: 'hi' }, 'hi'],
    ['message before msg', { msg: 'b', message: 'a' }, 'a'],
    ['empty message falls back to msg', { message: '', msg: 'b' }, 'b'],
    ['not a string', { message: { text: 'x' }, msg: 42 }, undefined],
    ['none', { text: 'x' }, undefined],
  ])('%s', (_name, fields, expected) => {
    expect(messageOf(fields)).toBe(expected);
  });
});

describe('parseTime', () => {
  it.each<[string, unknown, string | undefined]>([
    // RFC 3339
    ['UTC', '2026-11-23T12:00:00Z', '2026-11-23T12:00:00Z'],
    ['milliseconds', '2026-11-23T12:00:00.123Z', '2026-11-23T12:00:00.123Z'],
    [
      'nanoseconds with an offset',
      '2026-11-23T12:00:00.123456789+02:00',
      '2026-11-23T12:00:00.123456789+02:00',
    ],
    ['negative offset', '2026-11-23T12:00:00-07:30', '2026-11-23T12:00:00-07:30'],
    ['lower-case t and z', '2026-11-23t12:00:00.5z', '2026-11-23T12:00:00.5Z'],
    ['space separator', '2026-11-23 12:00:00+00:00', '2026-11-23T12:00:00+00:00'],
    ['offset without a colon', '2026-11-23T12:00:00.1+0200', '2026-11-23T12:00:00.1+02:00'],
    ['29 February of a leap year', '2028-02-29T00:00:00Z', '2028-02-29T00:00:00Z'],
    ['29 February 2000', '2000-02-29T00:00:00Z', '2000-02-29T00:00:00Z'],
    ['no offset', '2026-11-23T12:00:00', undefined],
    ['no offset, fraction', '2026-11-23T12:00:00.123456', undefined],
    ['29 February of another year', '2026-02-29T00:00:00Z', undefined],
    ['29 February 2100', '2100-02-29T00:00:00Z', undefined],
    ['31 April', '2026-04-31T00:00:00Z', undefined],
    ['month 13', '2026-13-01T00:00:00Z', undefined],
    ['day 0', '2026-11-00T00:00:00Z', undefined],
    ['hour 24', '2026-11-23T24:00:00Z', undefined],
    ['leap second', '2016-12-31T23:59:60Z', undefined],
    ['10 fraction digits', '2026-11-23T12:00:00.1234567890Z', undefined],
    ['empty fraction', '2026-11-23T12:00:00.Z', undefined],
    ['offset hour 24', '2026-11-23T12:00:00+24:00', undefined],
    ['trailing text', '2026-11-23T12:00:00Z ', undefined],
    ['date only', '2026-11-23', undefined],
    ['before 1970', '1969-12-31T23:59:59Z', undefined],
    ['1970 shifted before the epoch', '1970-01-01T00:30:00+01:00', undefined],
    ['the epoch', '1970-01-01T00:00:00Z', '1970-01-01T00:00:00Z'],
    ['2261', '2261-12-31T23:59:59Z', '2261-12-31T23:59:59Z'],
    ['2262 (beyond date_nanos)', '2262-01-01T00:00:00Z', undefined],
    ['year 9999', '9999-12-31T23:59:59Z', undefined],
    ['letters for digits', '2026-1a-23T12:00:00Z', undefined],
    // common log format
    ['nginx time_local', '10/Oct/2000:13:55:36 -0700', '2000-10-10T13:55:36-07:00'],
    ['nginx time_local, UTC', '23/Nov/2026:12:00:00 +0000', '2026-11-23T12:00:00+00:00'],
    ['nginx time_local, bad month', '10/Foo/2000:13:55:36 -0700', undefined],
    ['nginx time_local, 31 November', '31/Nov/2026:12:00:00 +0000', undefined],
    // epoch numbers, the unit told by the integer digits
    ['seconds', 1795334400, '2026-11-22T08:00:00Z'],
    ['seconds, 9 digits (1973)', 100000000, '1973-03-03T09:46:40Z'],
    ['seconds with a fraction', 1795334400.5, '2026-11-22T08:00:00.5Z'],
    ['seconds, zap float', 1795334400.1234567, '2026-11-22T08:00:00.1234567Z'],
    ['milliseconds', 1795334400123, '2026-11-22T08:00:00.123Z'],
    ['milliseconds with leading zeros', 1795334400007, '2026-11-22T08:00:00.007Z'],
    ['milliseconds, 12 digits (1973)', 100000000000, '1973-03-03T09:46:40.000Z'],
    ['milliseconds with a fraction', 1795334400123.5, '2026-11-22T08:00:00.1235Z'],
    ['microseconds', 1795334400123456, '2026-11-22T08:00:00.123456Z'],
    ['nanoseconds as a double', 1795334400000000000, '2026-11-22T08:00:00.000000000Z'],
    ['11 digits', 17953344001, undefined],
    ['14 digits', 17953344001234, undefined],
    ['8 digits', 99999999, undefined],
    ['zero', 0, undefined],
    ['negative', -1795334400, undefined],
    ['seconds beyond 2261', 9999999999, undefined],
    ['NaN', Number.NaN, undefined],
    ['Infinity', Number.POSITIVE_INFINITY, undefined],
    // epoch strings (logfmt and regex fields)
    ['seconds string', '1795334400', '2026-11-22T08:00:00Z'],
    ['seconds string with a fraction', '1795334400.123456789123', '2026-11-22T08:00:00.123456789Z'],
    ['milliseconds string', '1795334400123', '2026-11-22T08:00:00.123Z'],
    ['microseconds string', '1795334400123456', '2026-11-22T08:00:00.123456Z'],
    ['nanoseconds string', '1795334400123456789', '2026-11-22T08:00:00.123456789Z'],
    ['17 digits string', '17953344001234567', undefined],
    ['20 digits string', '17953344001234567890', undefined],
    ['leading zero', '0795334400', undefined],
    ['exponent string', '1.7e9', undefined],
    ['trailing dot', '1795334400.', undefined],
    ['leading dot', '.1795334400', undefined],
    ['two dots', '1795334400.1.2', undefined],
    ['sign', '+1795334400', undefined],
    ['empty', '', undefined],
    // other types
    ['boolean', true, undefined],
    ['null', null, undefined],
    ['object', { sec: 1795334400 }, undefined],
    ['array', [1795334400], undefined],
  ])('%s', (_name, value, expected) => {
    expect(parseTime(value)).toBe(expected);
  });

  it('a nanosecond integer kept exactly by the JSON parse', () => {
    expect(jsonParser('{"ts":1795334400123456789,"a":1.0}')).toEqual({
      text: '{"ts":1795334400123456789,"a":1.0}',
      level: undefined,
      message: undefined,
      time: '2026-11-22T08:00:00.123456789Z',
    });
  });
});

describe('timeOf', () => {
  it.each<[string, Record<string, unknown>, string | undefined]>([
    ['time', { time: '2026-11-23T12:00:00Z' }, '2026-11-23T12:00:00Z'],
    ['timestamp', { timestamp: 1795334400 }, '2026-11-22T08:00:00Z'],
    ['ts', { ts: 1795334400.25 }, '2026-11-22T08:00:00.25Z'],
    ['@timestamp', { '@timestamp': '2026-11-23T12:00:00.1Z' }, '2026-11-23T12:00:00.1Z'],
    ['time before ts', { ts: 1795334400, time: '2026-11-23T12:00:00Z' }, '2026-11-23T12:00:00Z'],
    ['an invalid time gives way to the next key', { time: '12:00', ts: 1795334400 }, '2026-11-22T08:00:00Z'],
    ['none valid', { time: '12:00', ts: 'soon' }, undefined],
  ])('%s', (_name, fields, expected) => {
    expect(timeOf(fields)).toBe(expected);
  });
});

describe('jsonParser', () => {
  it.each<[string, string, Record<string, string | undefined>]>([
    [
      'zap',
      '{"level":"info","ts":1795334400.1234567,"caller":"h.go:1","msg":"served","status":200}',
      { level: 'info', message: 'served', time: '2026-11-22T08:00:00.1234567Z' },
    ],
    [
      'pino',
      '{"level":30,"time":1795334400123,"pid":1,"msg":"done"}',
      { level: 'info', message: 'done', time: '2026-11-22T08:00:00.123Z' },
    ],
    [
      'logrus',
      '{"level":"warning","msg":"slow","time":"2026-11-23T12:00:02+01:00"}',
      { level: 'warning', message: 'slow', time: '2026-11-23T12:00:02+01:00' },
    ],
    [
      'ECS',
      '{"@timestamp":"2026-11-23T12:00:00.003Z","log.level":"INFO","message":"in","ecs.version":"1.6.0"}',
      { level: 'info', message: 'in', time: '2026-11-23T12:00:00.003Z' },
    ],
    [
      'GCP',
      '{"severity":"ERROR","message":"failed","timestamp":"2026-11-23T12:00:00.123456789Z"}',
      { level: 'error', message: 'failed', time: '2026-11-23T12:00:00.123456789Z' },
    ],
    ['no known fields', '{"a":{"b":1}}', { level: undefined, message: undefined, time: undefined }],
  ])('%s', (_name, message, expected) => {
    expect(jsonParser(message)).toEqual({ text: jsonObjectText(message), ...expected });
  });

  it.each(['', 'plain text', '[1]', '{"a":1', '"{}"'])('%j is not JSON object: undefined', (message) => {
    expect(jsonParser(message)).toBeUndefined();
  });

  it('its text is jsonObjectText for any JSON object', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })), (object) => {
        const message = JSON.stringify(object);
        expect(jsonParser(message)?.text).toBe(jsonObjectText(message));
      }),
    );
  });
});

describe('logfmtParser', () => {
  it('fields as JSON text, normalised', () => {
    expect(
      logfmtParser('ts=1795334400123 level=WARN msg="hello \\"x\\"" cached __proto__=1 constructor=2'),
    ).toEqual({
      text: '{"ts":"1795334400123","level":"WARN","msg":"hello \\"x\\"","cached":true,"__proto__":"1","constructor":"2"}',
      level: 'warn',
      message: 'hello "x"',
      time: '2026-11-22T08:00:00.123Z',
    });
    expect(logfmtParser('user logged in at 10:00')).toBeUndefined();
  });

  it('its text is the JSON of the fields, escapes and surrogates included', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('a', 'b', 'é', '\ud83d', '😀'), fc.string({ unit: 'binary' }))),
        (pairs) => {
          const message = pairs.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ');
          const fields = parseLogfmt(message);
          if (fields === undefined) return;
          expect(JSON.parse(logfmtParser(message)!.text)).toEqual(Object.fromEntries(fields));
        },
      ),
    );
  });
});

describe('regexParser', () => {
  const matcher = compileParserRegex(
    'nginx',
    '^(?P<remote_addr>\\S+) \\S+ (?P<remote_user>\\S+) \\[(?P<time>[^\\]]+)\\] "(?P<request>[^"]*)" (?P<status>\\d+)(?P<level> [a-z]+)?',
  );
  const parse = regexParser(matcher);

  it('named groups become fields; a group that did not take part is left out', () => {
    expect(parse('10.0.0.1 - bob [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326')).toEqual({
      text: '{"remote_addr":"10.0.0.1","remote_user":"bob","time":"10/Oct/2000:13:55:36 -0700","request":"GET / HTTP/1.0","status":"200"}',
      level: undefined,
      message: undefined,
      time: '2000-10-10T13:55:36-07:00',
    });
  });

  it('no match: undefined', () => {
    expect(parse('not an access log')).toBeUndefined();
  });

  it('a matcher that throws makes no parser throw', () => {
    const broken: Matcher = {
      test: () => {
        throw new Error('boom');
      },
      groups: () => {
        throw new Error('boom');
      },
    };
    expect(regexParser(broken)('x')).toBeUndefined();
  });

  it('one parser per matcher', () => {
    expect(regexParser(matcher)).toBe(parse);
  });
});

describe('parserFor', () => {
  const custom = new Map<string, Matcher>([['nginx', compileParserRegex('nginx', '(?P<a>a)')]]);

  it('finds built-in and custom parsers by exact name', () => {
    expect(BUILTIN_PARSERS).toEqual(['json', 'logfmt']);
    expect(parserFor('json', custom)).toBe(jsonParser);
    expect(parserFor('logfmt', custom)).toBe(logfmtParser);
    expect(parserFor('nginx', custom)).toBe(regexParser(custom.get('nginx')!));
    expect(parserFor('nginx', custom)?.('xay')?.text).toBe('{"a":"a"}');
    expect(parserFor('JSON', custom)).toBeUndefined();
    expect(parserFor('apache', custom)).toBeUndefined();
    expect(parserFor('__proto__', custom)).toBeUndefined();
  });

  it('with time: false, leaves the application time out (and is one parser per option)', () => {
    const options = { time: false };
    for (const name of ['json', 'logfmt', 'nginx']) {
      expect(parserFor(name, custom, options)).toBe(parserFor(name, custom, { time: false }));
      expect(parserFor(name, custom, options)).not.toBe(parserFor(name, custom));
    }
    const line = '{"level":"INFO","msg":"hi","ts":1795334400}';
    expect(parserFor('json', custom, options)?.(line)).toEqual({
      text: line,
      level: 'info',
      message: 'hi',
      time: undefined,
    });
    expect(parserFor('logfmt', custom, options)?.('ts=1795334400 level=info')?.time).toBeUndefined();
    expect(parserFor('logfmt', custom)?.('ts=1795334400 level=info')?.time).toBe('2026-11-22T08:00:00Z');
    const timed = new Map([['t', compileParserRegex('t', '(?P<ts>\\d+)')]]);
    expect(parserFor('t', timed, options)?.('1795334400')?.time).toBeUndefined();
    expect(parserFor('t', timed)?.('1795334400')?.time).toBe('2026-11-22T08:00:00Z');
  });
});

// Properties of every parser.

const PARSERS: Array<[string, MessageParser]> = [
  ['json', jsonParser],
  ['logfmt', logfmtParser],
  ['regex', regexParser(compileParserRegex('kv', '(?P<__proto__>\\w*)=(?P<level>\\w*) ?(?P<ts>\\d*)'))],
];

const timeLike = fc.oneof(
  fc.integer({ min: -1, max: 2 ** 53 }),
  fc.double(),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  fc.bigInt({ min: 0n, max: 10n ** 21n }).map(String),
);

const messages = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc
    .dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 })
    .map((o) => JSON.stringify(o)),
  fc
    .record({ level: fc.oneof(fc.string(), fc.integer()), ts: timeLike, msg: fc.string() })
    .map((o) => JSON.stringify(o)),
  fc.tuple(fc.string(), timeLike).map(([l, t]) => `level=${l} ts=${t} msg="${l}"`),
  fc
    .array(fc.constantFrom('=', '"', '\\', ' ', '{', '}', ':', 'a', '1', '__proto__', 'constructor', '\\u'))
    .map((parts) => parts.join('')),
);

describe.each(PARSERS)('%s parser properties', (_name, parse) => {
  afterEach(() => {
    delete (Object.prototype as Record<string, unknown>).polluted;
  });

  it('never throws; whatever it returns is an object as JSON text, with string fields', () => {
    fc.assert(
      fc.property(messages, (message) => {
        const fields = parse(message);
        if (fields === undefined) return;
        const value: unknown = JSON.parse(fields.text);
        expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
        for (const v of [fields.level, fields.message, fields.time]) {
          expect(v === undefined || typeof v === 'string').toBe(true);
        }
        if (fields.time !== undefined) expect(Number.isNaN(Date.parse(fields.time))).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('__proto__ and constructor keys stay data and never pollute Object.prototype', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('__proto__', 'constructor', 'prototype'),
        fc.constantFrom('{"polluted":true}', '"polluted"', '1'),
        (key, value) => {
          for (const message of [
            `{"${key}":${value},"level":"info"}`,
            `{"a":{"${key}":${value}}}`,
            `${key}=${value.replaceAll('"', '')} level=info`,
            `${key}=polluted`,
          ]) {
            const fields = parse(message);
            if (fields !== undefined) expect(typeof JSON.parse(fields.text)).toBe('object');
            expect(({} as Record<string, unknown>).polluted).toBeUndefined();
            expect(Object.prototype).not.toHaveProperty('polluted');
          }
        },
      ),
    );
    if (parse === jsonParser) {
      expect(parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":1}}}')?.text).toBe(
        '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":1}}}',
      );
    }
  });
});
