import { Buffer } from 'node:buffer';

/**
 * A line placed between neighbours in a larger buffer, as the tailer hands it over, so that a
 * parser reading past `end` or before `start` shows up in the results.
 */
export function framed(line: string | Buffer): [Buffer, number, number] {
  const bytes = typeof line === 'string' ? Buffer.from(line, 'utf8') : line;
  const before = Buffer.from('2026-11-22T01:02:03.000000000Z stdout F before\n');
  const after = Buffer.from('\n2026-11-22T01:02:04.000000000Z stderr F after\n');
  return [Buffer.concat([before, bytes, after]), before.length, before.length + bytes.length];
}

export function bytes(...parts: (string | number[])[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));
}
