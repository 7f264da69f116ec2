import type { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCri } from '../../../src/parse/cri.ts';
import { malformedLine, type ParsedLine } from '../../../src/parse/types.ts';
import { bytes, framed } from './framed.ts';

const TS = '2026-11-22T01:02:03.123456789Z';

/** A parsed line; its message range is checked on its own, as the suffix of the line. */
type Expected = Omit<ParsedLine, 'messageStart' | 'messageEnd'>;

function ok(
  message: string,
  stream: 'stdout' | 'stderr' = 'stdout',
  partial = false,
  time = TS,
  invalidUtf8 = false,
): Expected {
  return { time, stream, partial, message, error: undefined, invalidUtf8 };
}

function bad(error: string, message: string, invalidUtf8 = false): ParsedLine {
  return malformedLine(message, invalidUtf8, error);
}

/** The message's byte range counted from the line's start, as if the line were alone in its buffer. */
function relative(parsed: ParsedLine, start: number): ParsedLine {
  return parsed.messageStart < 0
    ? parsed
    : { ...parsed, messageStart: parsed.messageStart - start, messageEnd: parsed.messageEnd - start };
}

const big = 'x'.repeat(16 * 1024);

describe('parseCri', () => {
  it.each<[string, string | Buffer, Expected]>([
    ['stdout full line', `${TS} stdout F hello world`, ok('hello world')],
    ['stderr full line', `${TS} stderr F boom`, ok('boom', 'stderr')],
    ['partial fragment', `${TS} stdout P first half `, ok('first half ', 'stdout', true)],
    ['empty message after the tag and a space', `${TS} stdout F `, ok('')],
    ['empty message with nothing after the tag', `${TS} stdout F`, ok('')],
    ['empty partial', `${TS} stderr P`, ok('', 'stderr', true)],
    ['future tag after F', `${TS} stdout F:x hello`, ok('hello')],
    ['future tag after P', `${TS} stdout P:a:b hello`, ok('hello', 'stdout', true)],
    ['spaces inside the message are kept', `${TS} stdout F  a  b  `, ok(' a  b  ')],
    ['CR of a CRLF message is kept', `${TS} stdout F hello\r`, ok('hello\r')],
    ['NUL bytes are content', bytes(`${TS} stdout F a`, [0, 0], 'b'), ok('a\u0000\u0000b')],
    ['second precision', '2026-11-22T01:02:03Z stdout F x', ok('x', 'stdout', false, '2026-11-22T01:02:03Z')],
    [
      'numeric offset',
      '2026-11-22T01:02:03.123456789+01:00 stdout F x',
      ok('x', 'stdout', false, '2026-11-22T01:02:03.123456789+01:00'),
    ],
    ['lowercase t', '2026-11-22t01:02:03.1z stdout F x', ok('x', 'stdout', false, '2026-11-22t01:02:03.1z')],
    ['multi-byte UTF-8', `${TS} stdout F héllo 日本 😀`, ok('héllo 日本 😀')],
    ['a literal U+FFFD is valid UTF-8', `${TS} stdout F a\ufffdb`, ok('a\ufffdb')],
    [
      'invalid UTF-8 in the message',
      bytes(`${TS} stdout F a`, [0xff, 0xfe], 'b'),
      ok('a\ufffd\ufffdb', 'stdout', false, TS, true),
    ],
    [
      'truncated multi-byte sequence at the end of a partial',
      bytes(`${TS} stdout P ab`, [0xe6, 0x97]),
      ok('ab\ufffd', 'stdout', true, TS, true),
    ],
    ['16 KiB partial', `${TS} stdout P ${big}`, ok(big, 'stdout', true)],
    ['JSON message', `${TS} stdout F {"level":"info","msg":"hi"}`, ok('{"level":"info","msg":"hi"}')],
  ])('%s', (_name, line, expected) => {
    const [buf, start, end] = framed(line);
    const { messageStart, messageEnd, ...rest } = parseCri(buf, start, end);
    expect(rest).toStrictEqual(expected);
    // The message is the end of the line, so its range is pinned by its end and its text.
    expect(messageEnd).toBe(end);
    expect(messageStart).toBeGreaterThan(start);
    expect(buf.toString('utf8', messageStart, messageEnd)).toBe(expected.message);
  });

  it.each<[string, string | Buffer, [number, number]]>([
    ['a message', `${TS} stdout F hello`, [40, 45]],
    ['a partial', `${TS} stderr P hello`, [40, 45]],
    ['nothing after the tag', `${TS} stdout F`, [39, 39]],
    ['an empty message after a space', `${TS} stdout F `, [40, 40]],
    ['future tags', `${TS} stdout P:a:b hi`, [44, 46]],
    ['invalid UTF-8 counts bytes', bytes(`${TS} stdout P a`, [0xff, 0xfe], 'b'), [40, 44]],
    ['a cut character', bytes(`${TS} stdout P `, [0xe2, 0x82]), [40, 42]],
  ])('the message range of %s', (_name, line, range) => {
    const [buf, start, end] = framed(line);
    const parsed = parseCri(buf, start, end);
    expect([parsed.messageStart - start, parsed.messageEnd - start]).toStrictEqual(range);
  });

  it.each<[string, string | Buffer, string]>([
    ['empty line', '', 'cri: empty line'],
    ['only a timestamp', TS, 'cri: missing stream'],
    ['timestamp and a space', `${TS} `, 'cri: missing stream'],
    ['truncated after the stream', '2026-11-22T01:02:03Z stdout', 'cri: missing tag'],
    ['truncated after the stream and a space', '2026-11-22T01:02:03Z stdout ', 'cri: missing tag'],
    ['truncated stream', `${TS} std`, 'cri: bad stream'],
    ['unknown stream', `${TS} stdin F x`, 'cri: bad stream'],
    ['stream glued to the tag', `${TS} stdoutF x`, 'cri: bad stream'],
    ['uppercase stream', `${TS} STDOUT F x`, 'cri: bad stream'],
    ['unknown tag', `${TS} stdout X hello`, 'cri: bad tag'],
    ['tag not separated by a colon', `${TS} stdout Fx hello`, 'cri: bad tag'],
    ['lowercase tag', `${TS} stdout f hello`, 'cri: bad tag'],
    ['two spaces before the tag', `${TS} stdout  F hello`, 'cri: bad tag'],
    ['plain text', 'hello world', 'cri: bad timestamp'],
    ['text without spaces', 'x'.repeat(100), 'cri: bad timestamp'],
    ['date only', '2026-11-22 stdout F x', 'cri: bad timestamp'],
    ['no T', '2026-11-22 01:02:03.123Z stdout F x', 'cri: bad timestamp'],
    ['two-digit year', '26-11-22T01:02:03.123456Z stdout F x', 'cri: bad timestamp'],
    ['timestamp too long', `2026-11-22T01:02:03.${'1'.repeat(30)}Z stdout F x`, 'cri: bad timestamp'],
    ['letters in the timestamp', '2026-11-22T01:02:03.abcdefZ stdout F x', 'cri: bad timestamp'],
    [
      'docker JSON line',
      '{"log":"hi\\n","stream":"stdout","time":"2026-11-22T01:02:03Z"}',
      'cri: bad timestamp',
    ],
    ['leading space', ` ${TS} stdout F x`, 'cri: bad timestamp'],
  ])('%s is malformed', (_name, line, error) => {
    const raw = typeof line === 'string' ? line : line.toString('utf8');
    expect(parseCri(...framed(line))).toStrictEqual(bad(error, raw));
  });

  it('flags invalid UTF-8 over the whole raw line of a malformed line', () => {
    const line = bytes([0xff], ` ${TS} stdout F x`);
    expect(parseCri(...framed(line))).toStrictEqual(
      bad('cri: bad timestamp', `\ufffd ${TS} stdout F x`, true),
    );
  });

  it('never throws and never reads outside its range', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (arr, prefixed) => {
        const line = prefixed ? bytes(`${TS} stdout F `, Array.from(arr)) : bytes(Array.from(arr));
        const [buf, start, end] = framed(line);
        const framedResult = parseCri(buf, start, end);
        expect(relative(framedResult, start)).toStrictEqual(parseCri(line, 0, line.length));
        if (framedResult.error !== undefined) expect(framedResult.message).toBe(line.toString('utf8'));
        else
          expect(buf.toString('utf8', framedResult.messageStart, framedResult.messageEnd)).toBe(
            framedResult.message,
          );
      }),
    );
  });
});
