import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { documentContext, encodeDocument } from '../../../src/encode/document.ts';
import { recycleLocally } from '../../../src/parse/body-pool.ts';
import {
  FileProcessor,
  IGNORED_EVENTS,
  type ProcessResult,
  writeDecimal,
} from '../../../src/parse/file-processor.ts';
import { jsonObjectText } from '../../../src/parse/json-message.ts';
import { RecordFlag } from '../../../src/parse/types.ts';
import type { DocumentAction } from '../../../src/pipeline/types.ts';

const PATH = '/var/log/pods/ns_pod_uid/app/0.log';
const HOST = 'node-1';
const TIME = '2026-11-22T00:00:00.123456789Z';
const noEvents = IGNORED_EVENTS;

/** CRI `F` lines of `messages`, each complete, in one buffer. */
function criLines(messages: string[]): Buffer {
  return Buffer.from(messages.map((m) => `${TIME} stdout F ${m}\n`).join(''));
}

/** The agent's kind of action line (Sink.frame), or none (tail to stdout). */
const ACTIONS: Array<[string, DocumentAction | undefined]> = [
  ['documents only', undefined],
  ['after action lines with ids', { head: '{"create":{"_index":"logs-ns","_id":"f-', withOffset: true }],
  ['after whole action lines', { head: '{"create":{"_index":"lögs"}}\n', withOffset: false }],
];

function actionText(action: DocumentAction | undefined, offset: number): string {
  if (action === undefined) return '';
  return action.withOffset ? `${action.head}${offset}"}}\n` : action.head;
}

function processAll(input: Buffer, action?: DocumentAction): ProcessResult {
  const proc = new FileProcessor(
    documentContext(PATH, HOST, '', undefined, action),
    { format: 'cri', maxLineBytes: 1 << 20 },
    noEvents,
  );
  return proc.process(input, input.length, 0, true);
}

/** The body the records must give: each document as encodeDocument writes it, then '\n'. */
function expected(messages: string[], action?: DocumentAction, base = 0): { body: Buffer; ends: number[] } {
  const ctx = documentContext(PATH, HOST);
  let offset = base;
  const docs = messages.map((message) => {
    const rec = {
      offset,
      time: TIME,
      stream: 'stdout' as const,
      message,
      flags: 0,
      error: undefined,
      part: 0,
    };
    offset += Buffer.byteLength(`${TIME} stdout F ${message}\n`);
    const json = jsonObjectText(message);
    const doc = encodeDocument(rec, ctx, '"unused"', json === undefined ? undefined : { text: json });
    return `${actionText(action, rec.offset)}${doc}\n`;
  });
  let end = 0;
  return { body: Buffer.from(docs.join('')), ends: docs.map((d) => (end += Buffer.byteLength(d))) };
}

function checkEncoding(messages: string[], action?: DocumentAction): ProcessResult {
  const result = processAll(criLines(messages), action);
  const want = expected(messages, action);
  expect(result.framed).toBe(action !== undefined);
  expect(result.body.toString('utf8')).toBe(want.body.toString('utf8'));
  expect(result.body.equals(want.body)).toBe(true);
  expect(result.ends).toEqual(want.ends);
  return result;
}

describe.each(ACTIONS)('FileProcessor encoding, %s', (_what, action) => {
  const long = (unit: string, n: number): string => unit.repeat(n);

  it.each<[string, string[]]>([
    ['ASCII only', ['hello', '{"level":"info","n":1}', 'x']],
    ['Latin-1', ['héllo', 'plain', 'ümlaut ß']],
    ['three-byte characters', ['東京', 'ascii', 'Москва и 東京']],
    ['astral characters (surrogate pairs)', ['😀', 'a😀b', '{"e":"😀"}']],
    [
      'one non-ASCII line among many ASCII ones',
      [...Array(200).fill('ascii line'), 'é', ...Array(200).fill('more')],
    ],
    ['the longest document is non-ASCII and last', [...Array(50).fill('short'), long('東', 5000)]],
    ['every document is non-ASCII', Array(300).fill(long('東京', 40))],
    ['a long document among short ones', ['a', long('x', 100_000), 'b']],
    ['a long non-ASCII document first', [long('😀', 30_000), ...Array(100).fill('é')]],
    ['escapes', ['tab\there', 'quote " and backslash \\', '\u0001 control']],
  ])('%s: bytes and ends as the documents joined', (_name, messages) => {
    checkEncoding(messages, action);
  });

  it('one processor over chunks whose documents grow 200-fold: each body exact', () => {
    const proc = new FileProcessor(
      documentContext(PATH, HOST, '', undefined, action),
      { format: 'cri', maxLineBytes: 1 << 20 },
      noEvents,
    );
    let base = 0;
    for (const messages of [Array(300).fill('short'), Array(40).fill(long('y', 20_000)), ['z']]) {
      const input = criLines(messages);
      const result = proc.process(input, input.length, base, false);
      const want = expected(messages, action, base);
      expect(result.body.equals(want.body)).toBe(true);
      expect(result.ends).toEqual(want.ends);
      // acknowledged: its memory is reused by the next chunk's body
      recycleLocally(result.body);
      base += input.length;
    }
  });

  it('invalid UTF-8 is written as U+FFFD and flagged', () => {
    const input = Buffer.concat([
      Buffer.from(`${TIME} stdout F a`),
      Buffer.from([0xff, 0xc3]),
      Buffer.from('b\n'),
    ]);
    const result = processAll(input);
    const doc = JSON.parse(result.body.toString('utf8')) as { message: string; log: { flags: string[] } };
    expect(doc.message).toBe('a\ufffd\ufffdb');
    expect(doc.log.flags).toEqual(['invalid_utf8']);
    expect(result.ends).toEqual([result.body.length]);
    expect(RecordFlag.InvalidUtf8).toBeGreaterThan(0);
  });

  it('does not keep a much larger allocation alive behind the body', () => {
    // a long document sizes the spare room; the body must not be a view into three times its size
    const result = checkEncoding([long('x', 200_000), 'a'], action);
    expect(result.body.buffer.byteLength).toBeLessThanOrEqual(Math.ceil(result.body.length * 1.25));
  });

  it('gives the bytes and ends of the documents joined, for any text', () => {
    const text = fc
      .array(
        fc.oneof(
          fc.constantFrom('a', '{', '"', 'é', '東', '😀', '\\'),
          fc.string({ unit: 'binary', maxLength: 3 }),
        ),
        {
          maxLength: 40,
        },
      )
      .map((parts) => parts.join(''))
      .filter((m) => !m.includes('\n') && !m.includes('\r'));
    const json = fc
      .dictionary(fc.string({ unit: 'binary' }), fc.jsonValue({ maxDepth: 3 }))
      .map((o) => JSON.stringify(o));
    const message = fc.oneof(
      text,
      json,
      fc.constant('{"ts":1795334400.1234567,"id":12345678901234567890,"é":1.50}'),
    );
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 60 }), (messages) => {
        checkEncoding(messages, action);
      }),
      { numRuns: 300 },
    );
  });
});

describe('writeDecimal', () => {
  it.each([0, 7, 9, 10, 99, 100, 101, 1_000_000, 123_456_789_012, Number.MAX_SAFE_INTEGER])('%d', (n) => {
    const buf = Buffer.alloc(24, 0x2e);
    const end = writeDecimal(buf, 3, n);
    expect(buf.toString('latin1', 3, end)).toBe(String(n));
    expect(buf.toString('latin1', 0, 3)).toBe('...');
    expect(buf[end]).toBe(0x2e);
  });
});
