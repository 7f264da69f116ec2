import type { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDocker } from '../../../src/parse/docker-json.ts';
import { malformedLine, type ParsedLine } from '../../../src/parse/types.ts';
import { bytes, framed } from './framed.ts';

const TIME = '2026-11-22T01:02:03.123456789Z';

function ok(message: string, partial = false, fields: Partial<ParsedLine> = {}): ParsedLine {
  return {
    time: TIME,
    stream: 'stdout',
    partial,
    message,
    messageStart: -1,
    messageEnd: -1,
    error: undefined,
    invalidUtf8: false,
    ...fields,
  };
}

function bad(error: string, message: string, invalidUtf8 = false): ParsedLine {
  return malformedLine(message, invalidUtf8, error);
}

describe('parseDocker', () => {
  it.each<[string, string | Buffer, ParsedLine]>([
    ['complete line', `{"log":"hello\\n","stream":"stdout","time":"${TIME}"}`, ok('hello')],
    [
      'stderr',
      `{"log":"boom\\n","stream":"stderr","time":"${TIME}"}`,
      ok('boom', false, { stream: 'stderr' }),
    ],
    ['keys in another order', `{"time":"${TIME}","stream":"stdout","log":"hi\\n"}`, ok('hi')],
    [
      'extra keys',
      `{"log":"hi\\n","stream":"stdout","attrs":{"tag":"a","n":[1,2]},"time":"${TIME}","x":null}`,
      ok('hi'),
    ],
    [
      'partial without its newline',
      `{"log":"first half","stream":"stdout","time":"${TIME}"}`,
      ok('first half', true),
    ],
    ['empty line of output', `{"log":"\\n","stream":"stdout","time":"${TIME}"}`, ok('')],
    ['only one newline is stripped', `{"log":"a\\n\\n","stream":"stdout","time":"${TIME}"}`, ok('a\n')],
    ['CR is content', `{"log":"a\\r\\n","stream":"stdout","time":"${TIME}"}`, ok('a\r')],
    [
      'escapes',
      `{"log":"q\\"b\\\\t\\tu\\u00e9\\ud83d\\ude00\\u0000\\n","stream":"stdout","time":"${TIME}"}`,
      ok('q"b\\t\tué😀\u0000'),
    ],
    ['raw UTF-8', `{"log":"héllo 日本 😀\\n","stream":"stdout","time":"${TIME}"}`, ok('héllo 日本 😀')],
    ['no time', '{"log":"hi\\n","stream":"stdout"}', ok('hi', false, { time: undefined })],
    ['time not a string', '{"log":"hi\\n","stream":"stdout","time":5}', ok('hi', false, { time: undefined })],
    ['surrounding whitespace', ` \t{"log":"hi\\n","stream":"stdout","time":"${TIME}"}\r`, ok('hi')],
    [
      'invalid UTF-8 inside the log string',
      bytes('{"log":"a', [0xc3, 0x28], `\\n","stream":"stdout","time":"${TIME}"}`),
      ok('a\ufffd(', false, { invalidUtf8: true }),
    ],
  ])('%s', (_name, line, expected) => {
    expect(parseDocker(...framed(line))).toStrictEqual(expected);
  });

  it.each<[string, string, string]>([
    ['empty line', '', 'docker: empty line'],
    ['whitespace only', '  ', 'docker: empty line'],
    ['plain text', 'hello', 'docker: not an object'],
    ['array', '[{"log":"hi\\n","stream":"stdout"}]', 'docker: not an object'],
    ['number', '42', 'docker: not an object'],
    ['null', 'null', 'docker: not an object'],
    ['string', '"hi"', 'docker: not an object'],
    ['truncated JSON', '{"log":"hel', 'docker: bad json'],
    ['trailing garbage', '{"log":"hi\\n","stream":"stdout"} x', 'docker: bad json'],
    ['CRI line', `${TIME} stdout F hi`, 'docker: not an object'],
    ['missing log', '{"stream":"stdout","time":"t"}', 'docker: missing log'],
    ['log not a string', '{"log":5,"stream":"stdout"}', 'docker: missing log'],
    ['log null', '{"log":null,"stream":"stdout"}', 'docker: missing log'],
    ['missing stream', '{"log":"hi\\n"}', 'docker: missing stream'],
    ['unknown stream', '{"log":"hi\\n","stream":"stdin"}', 'docker: bad stream'],
    ['stream not a string', '{"log":"hi\\n","stream":1}', 'docker: bad stream'],
  ])('%s is malformed', (_name, line, error) => {
    expect(parseDocker(...framed(line))).toStrictEqual(bad(error, line));
  });

  it('flags invalid UTF-8 in a malformed line', () => {
    expect(parseDocker(...framed(bytes('{"log":', [0xff])))).toStrictEqual(
      bad('docker: bad json', '{"log":\ufffd', true),
    );
  });

  it('never throws on arbitrary bytes or JSON', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string()), fc.uint8Array({ maxLength: 8 }), (text, noise) => {
        const line = bytes(text, Array.from(noise));
        const result = parseDocker(...framed(line));
        if (result.error !== undefined) expect(result.message).toBe(line.toString('utf8'));
      }),
    );
  });
});
