import type { LineParser } from './types.ts';
import { isInvalidUtf8 } from './utf8.ts';

/** A plain text line is its own message; a CRLF file's '\r' is line ending, not content. */
export const parseText: LineParser = (buf, start, end) => {
  const e = end > start && buf[end - 1] === 0x0d ? end - 1 : end;
  const message = e > start ? buf.toString('utf8', start, e) : '';
  return {
    time: undefined,
    stream: undefined,
    partial: false,
    message,
    messageStart: start,
    messageEnd: e,
    error: undefined,
    invalidUtf8: message !== '' && isInvalidUtf8(buf, start, e, message),
  };
};

/**
 * JSON-lines files read like text: whether a line is a JSON object is decided once, when the
 * document is built (json-message.ts), so the object is not parsed twice.
 */
export const parseJsonLine: LineParser = parseText;
