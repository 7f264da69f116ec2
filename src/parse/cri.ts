import { type LineParser, malformedLine, type ParsedLine } from './types.ts';
import { isInvalidUtf8 } from './utf8.ts';

const SPACE = 0x20;
const MIN_TIME_LENGTH = 20; // 2026-11-22T01:02:03Z
const MAX_TIME_LENGTH = 40; // nanoseconds and a numeric offset fit with room to spare

// Only the bytes an RFC 3339 timestamp can hold. Checking them keeps garbage out cheaply and makes
// the kept `time` text safe to decode as latin1 and to embed in a JSON document without escaping.
const TIME_BYTE = new Uint8Array(256);
for (const c of '0123456789-:.+TtZz') TIME_BYTE[c.charCodeAt(0)] = 1;

function malformed(buf: Buffer, start: number, end: number, error: string): ParsedLine {
  const message = buf.toString('utf8', start, end);
  return malformedLine(message, isInvalidUtf8(buf, start, end, message), error);
}

/**
 * `<RFC3339Nano> <stdout|stderr> <tag> <message>` as written by containerd and CRI-O, where tag is
 * `P` or `F`, optionally followed by `:`-separated tags the CRI spec reserves for later use.
 */
export const parseCri: LineParser = (buf, start, end) => {
  if (end <= start) return malformed(buf, start, end, 'cri: empty line');

  // The scan stops one byte past the longest timestamp, so a line without spaces costs 41 bytes.
  const timeLimit = Math.min(end, start + MAX_TIME_LENGTH + 1);
  let i = start;
  let sawT = false;
  for (; i < timeLimit; i++) {
    const c = buf[i]!;
    if (c === SPACE) break;
    if (TIME_BYTE[c] === 0) return malformed(buf, start, end, 'cri: bad timestamp');
    if (c === 0x54 || c === 0x74) sawT = true;
  }
  const timeEnd = i;
  const timeLength = timeEnd - start;
  if (
    timeLength < MIN_TIME_LENGTH ||
    timeLength > MAX_TIME_LENGTH ||
    !sawT ||
    buf[start + 4] !== 0x2d ||
    !isDigit(buf[start]!) ||
    !isDigit(buf[start + 1]!) ||
    !isDigit(buf[start + 2]!) ||
    !isDigit(buf[start + 3]!)
  ) {
    return malformed(buf, start, end, 'cri: bad timestamp');
  }

  const s = timeEnd + 1;
  if (s >= end) return malformed(buf, start, end, 'cri: missing stream');
  let stream: 'stdout' | 'stderr';
  if (end - s < 6 || buf[s] !== 0x73 || buf[s + 1] !== 0x74 || buf[s + 2] !== 0x64) {
    return malformed(buf, start, end, 'cri: bad stream');
  } else if (buf[s + 3] === 0x6f && buf[s + 4] === 0x75 && buf[s + 5] === 0x74) {
    stream = 'stdout';
  } else if (buf[s + 3] === 0x65 && buf[s + 4] === 0x72 && buf[s + 5] === 0x72) {
    stream = 'stderr';
  } else {
    return malformed(buf, start, end, 'cri: bad stream');
  }
  if (s + 6 < end && buf[s + 6] !== SPACE) return malformed(buf, start, end, 'cri: bad stream');

  const t = s + 7;
  if (t >= end) return malformed(buf, start, end, 'cri: missing tag');
  const first = buf[t];
  if (first !== 0x50 && first !== 0x46) return malformed(buf, start, end, 'cri: bad tag');
  let tagEnd = t + 1;
  while (tagEnd < end && buf[tagEnd] !== SPACE) tagEnd++;
  if (tagEnd > t + 1 && buf[t + 1] !== 0x3a) return malformed(buf, start, end, 'cri: bad tag');

  // `... stdout F` with nothing after the tag is an empty message, as is `... stdout F `.
  const messageStart = tagEnd < end ? tagEnd + 1 : end;
  const message = messageStart < end ? buf.toString('utf8', messageStart, end) : '';
  return {
    time: buf.toString('latin1', start, timeEnd),
    stream,
    partial: first === 0x50,
    message,
    messageStart,
    messageEnd: end,
    error: undefined,
    invalidUtf8: message !== '' && isInvalidUtf8(buf, messageStart, end, message),
  };
};

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
