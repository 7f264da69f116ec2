import { isUtf8 } from 'node:buffer';

/**
 * Whether `buf[start, end)` was invalid UTF-8, given its decoded text. The decoder turns every
 * invalid sequence into U+FFFD, so text without one proves the bytes valid with a string search
 * that V8 answers at once for one-byte strings; only text holding a U+FFFD (rare: invalid bytes or
 * a literal EF BF BD) pays for a view of the bytes and `isUtf8`.
 */
export function isInvalidUtf8(buf: Buffer, start: number, end: number, decoded: string): boolean {
  return decoded.includes('\ufffd') && !isUtf8(buf.subarray(start, end));
}

/**
 * `end`, or the start of the character `buf[start, end)` ends inside of: the start of a trailing
 * lead byte whose sequence needs more bytes than are left. Cutting there keeps a character whole
 * when its remaining bytes are still to come. Bytes that can never form a character are not held
 * back; they decode as U+FFFD wherever the cut falls.
 */
export function completeEnd(buf: Uint8Array, start: number, end: number): number {
  let i = end - 1;
  // a sequence is at most 4 bytes: a lead and up to 3 continuation bytes (10xxxxxx)
  while (i > start && end - i < 4 && (buf[i]! & 0xc0) === 0x80) i--;
  if (i < start) return end;
  const lead = buf[i]!;
  const length = lead >= 0xf8 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return end - i < length ? i : end;
}
