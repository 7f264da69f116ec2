import { Buffer } from 'node:buffer';
import fc from 'fast-check';

export const TIMES = [
  '2026-11-22T01:02:03.123456789Z',
  '2026-11-22T01:02:03Z',
  '2026-11-22T01:02:03.1+02:00',
  '2026-11-22t01:02:03.5z',
] as const;

const STREAMS = ['stdout', 'stderr'] as const;

/** Bytes that matter to the parsers, drawn often so that short inputs still meet them. */
const NASTY_BYTES = [
  0x00, 0x0a, 0x0d, 0x20, 0x22, 0x5c, 0x7b, 0x7d, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xff,
];

export const nastyBytes = (maxLength: number): fc.Arbitrary<Buffer> =>
  fc
    .array(fc.oneof(fc.constantFrom(...NASTY_BYTES), fc.integer({ min: 0, max: 255 }), fc.constant(0x78)), {
      maxLength,
    })
    .map((a) => Buffer.from(a));

/** Message text without a newline: any code points, including lone surrogates (encoded as U+FFFD). */
export const messageText = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 60 }),
    fc.string({ unit: 'grapheme', maxLength: 30 }),
    fc.json({ maxDepth: 3 }),
  )
  .map((s) => s.replaceAll('\n', ' '));

/** Message bytes without a newline: text or raw bytes. */
export const messageBytes = fc.oneof(
  messageText.map((s) => Buffer.from(s, 'utf8')),
  nastyBytes(40).map((b) => Buffer.from(b.toString('latin1').replaceAll('\n', ' '), 'latin1')),
);

export interface CriLine {
  time: string;
  stream: 'stdout' | 'stderr';
  partial: boolean;
  message: Buffer;
}

export const criLine: fc.Arbitrary<CriLine> = fc.record({
  time: fc.constantFrom(...TIMES),
  stream: fc.constantFrom(...STREAMS),
  partial: fc.boolean(),
  message: messageBytes,
});

export function criBytes(l: CriLine): Buffer {
  return Buffer.concat([
    Buffer.from(`${l.time} ${l.stream} ${l.partial ? 'P' : 'F'} `),
    l.message,
    Buffer.from('\n'),
  ]);
}

export const dockerLine = fc
  .record({
    log: messageText,
    partial: fc.boolean(),
    stream: fc.constantFrom(...STREAMS),
    time: fc.constantFrom(...TIMES),
  })
  .map(({ log, partial, stream, time }) =>
    Buffer.from(`${JSON.stringify({ log: partial ? log : `${log}\n`, stream, time })}\n`),
  );

export const jsonLine = fc
  .dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 })
  .map((o) => Buffer.from(`${JSON.stringify(o)}\n`));

/** Any line of any format, or garbage with or without newlines. */
export const anyChunk = fc.oneof(
  criLine.map(criBytes),
  dockerLine,
  jsonLine,
  nastyBytes(60),
  fc
    .tuple(messageBytes, fc.constantFrom('\n', '\r\n'))
    .map(([b, eol]) => Buffer.concat([b, Buffer.from(eol)])),
);

/** A file: lines of mixed formats, possibly ending without a newline. */
export const mixedFile = fc
  .tuple(fc.array(anyChunk, { maxLength: 25 }), nastyBytes(20))
  .map(([lines, tail]) => Buffer.concat([...lines, tail]));

/** A well-formed CRI file, possibly ending inside a line. */
export const criFile = fc.array(criLine, { maxLength: 40 });

/** How a simulated tail reads: file growth steps, read size above maxLineBytes, maxLineBytes. */
export const tailShape = fc.record({
  maxLineBytes: fc.integer({ min: 16, max: 160 }),
  extraRead: fc.integer({ min: 1, max: 300 }),
  growth: fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 12 }),
});
