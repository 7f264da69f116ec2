import type { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { parseJsonLine, parseText } from '../../../src/parse/plain.ts';
import type { LineParser, ParsedLine } from '../../../src/parse/types.ts';
import { bytes, framed } from './framed.ts';

type Expected = Omit<ParsedLine, 'messageStart' | 'messageEnd'>;

function text(message: string, invalidUtf8 = false): Expected {
  return { time: undefined, stream: undefined, partial: false, message, error: undefined, invalidUtf8 };
}

describe.each<[string, LineParser]>([
  ['parseText', parseText],
  ['parseJsonLine', parseJsonLine],
])('%s', (_name, parse) => {
  it.each<[string, string | Buffer, Expected]>([
    ['a line', 'hello world', text('hello world')],
    ['empty line', '', text('')],
    ['CR of CRLF stripped', 'hello\r', text('hello')],
    ['only one CR stripped', 'hello\r\r', text('hello\r')],
    ['a lone CR', '\r', text('')],
    ['CR inside kept', 'a\rb', text('a\rb')],
    ['surrounding spaces kept', '  a  ', text('  a  ')],
    ['JSON object kept as text', '{"level":"info","msg":"hi"}\r', text('{"level":"info","msg":"hi"}')],
    ['NUL bytes', bytes('a', [0], 'b'), text('a\u0000b')],
    ['invalid UTF-8', bytes('a', [0xff], 'b\r'), text('a\ufffdb', true)],
    ['a literal U+FFFD', 'a\ufffd', text('a\ufffd')],
    ['multi-byte', 'héllo 😀', text('héllo 😀')],
  ])('%s', (_n, line, expected) => {
    const [buf, start, end] = framed(line);
    const { messageStart, messageEnd, ...rest } = parse(buf, start, end);
    expect(rest).toStrictEqual(expected);
    // the whole line but a final CR
    const crlf = end > start && buf[end - 1] === 0x0d;
    expect([messageStart, messageEnd]).toStrictEqual([start, crlf ? end - 1 : end]);
  });
});
