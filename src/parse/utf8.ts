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
