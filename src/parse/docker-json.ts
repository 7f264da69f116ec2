import { type LineParser, malformedLine, type ParsedLine } from './types.ts';
import { isInvalidUtf8 } from './utf8.ts';

const malformed = malformedLine;

/**
 * Docker's json-file driver: `{"log":"hello\n","stream":"stdout","time":"..."}`, keys in any order,
 * extra keys (`attrs`) ignored. Docker writes a line longer than 16 KiB as several objects whose
 * `log` lacks the final '\n'; those are partial. JSON.parse is acceptable here: docker nodes are
 * the legacy path, and CRI is where the per-line cost matters.
 */
export const parseDocker: LineParser = (buf, start, end) => {
  const raw = buf.toString('utf8', start, end);
  // Invalid bytes come out as U+FFFD, which JSON.parse takes as ordinary characters.
  const invalidUtf8 = isInvalidUtf8(buf, start, end, raw);

  let i = start;
  while (i < end && isJsonSpace(buf[i]!)) i++;
  if (i === end) return malformed(raw, invalidUtf8, 'docker: empty line');
  // Checked before parsing so that arrays, numbers and text fail without throwing.
  if (buf[i] !== 0x7b) return malformed(raw, invalidUtf8, 'docker: not an object');

  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return malformed(raw, invalidUtf8, 'docker: bad json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return malformed(raw, invalidUtf8, 'docker: not an object');
  }

  const { log, stream, time } = value as { log?: unknown; stream?: unknown; time?: unknown };
  if (typeof log !== 'string') return malformed(raw, invalidUtf8, 'docker: missing log');
  if (stream !== 'stdout' && stream !== 'stderr') {
    return malformed(
      raw,
      invalidUtf8,
      stream === undefined ? 'docker: missing stream' : 'docker: bad stream',
    );
  }
  const partial = log.charCodeAt(log.length - 1) !== 0x0a;
  return {
    time: typeof time === 'string' ? time : undefined,
    stream,
    partial,
    message: partial ? log : log.slice(0, -1),
    // JSON-decoded, so no byte range of the line. A character docker cut in two is lost before it
    // reaches us: the json-file driver writes each piece's invalid bytes as \ufffd (moby jsonlog,
    // ffjsonWriteJSONBytesAsString).
    messageStart: -1,
    messageEnd: -1,
    error: undefined,
    invalidUtf8,
  };
};

export function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
