import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { parseCri } from '../../../src/parse/cri.ts';
import { detectFormat, parserFor } from '../../../src/parse/detect.ts';
import { parseDocker } from '../../../src/parse/docker-json.ts';
import { parseJsonLine, parseText } from '../../../src/parse/plain.ts';
import type { LineParser } from '../../../src/parse/types.ts';
import type { Format } from '../../../src/pipeline/types.ts';
import { framed } from './framed.ts';

describe('detectFormat', () => {
  it.each<[string, string | Buffer, Format]>([
    ['CRI line', '2026-11-22T01:02:03.123456789Z stdout F hello', 'cri'],
    ['CRI partial', '2026-11-22T01:02:03.123456789Z stderr P hel', 'cri'],
    ['CRI with an empty message', '2026-11-22T01:02:03.123456789Z stdout F', 'cri'],
    ['docker line', '{"log":"hello\\n","stream":"stdout","time":"2026-11-22T01:02:03.1Z"}', 'docker'],
    ['docker partial', '{"stream":"stderr","log":"hel","time":"2026-11-22T01:02:03.1Z"}', 'docker'],
    ['JSON object', '{"level":"info","msg":"hi"}', 'json'],
    ['JSON object after whitespace', ' \t{"a":1}\r', 'json'],
    ['empty JSON object', '{}', 'json'],
    ['log and stream but an unknown stream', '{"log":"x","stream":"stdin"}', 'json'],
    ['log without stream', '{"log":"x"}', 'json'],
    ['log not a string', '{"log":1,"stream":"stdout"}', 'json'],
    ['JSON array', '[1,2]', 'text'],
    ['JSON string', '"hi"', 'text'],
    ['broken JSON', '{"a":', 'text'],
    ['text', 'hello world', 'text'],
    ['text starting like a date', '2026-11-22 hello', 'text'],
    ['malformed CRI', '2026-11-22T01:02:03Z stdout', 'text'],
    ['empty line', '', 'text'],
    ['invalid UTF-8', Buffer.from([0xff, 0x7b]), 'text'],
  ])('%s -> %s', (_name, line, format) => {
    expect(detectFormat(...framed(line))).toBe(format);
  });
});

describe('parserFor', () => {
  it.each<[Format, LineParser]>([
    ['cri', parseCri],
    ['docker', parseDocker],
    ['json', parseJsonLine],
    ['text', parseText],
  ])('%s', (format, parser) => {
    expect(parserFor(format)).toBe(parser);
  });
});
