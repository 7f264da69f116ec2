import type { Stream } from '../pipeline/types.ts';

/**
 * One physical line decoded by a format parser. Parsers are pure, never throw, and get the line as
 * a byte range of a Buffer (`end` excludes the '\n') so the hot path slices nothing it does not keep.
 */
export interface ParsedLine {
  /** the runtime's timestamp text as written (CRI RFC3339Nano, docker `time`); undefined if none */
  time: string | undefined;
  stream: Stream | undefined;
  /** CRI `P`, or a docker `log` without a trailing '\n': the record continues on a later line */
  partial: boolean;
  /** the message text (docker: trailing '\n' removed); the whole raw line when `error` is set */
  message: string;
  /**
   * The message's byte range within the buffer given to the parser, when the message is such a
   * range (CRI, text); -1 and -1 when it is not (docker, where `log` is JSON-decoded) or when
   * `error` is set. The range is valid only while the caller keeps that buffer unchanged. It lets
   * the joiner decode joined CRI fragments from their joined bytes: runtimes cut long lines at
   * byte counts, not at character boundaries, so decoding each fragment alone would turn a
   * character cut in two into U+FFFD. `message` is still decoded for partial lines, since callers
   * that do not join (an incomplete last line, an over-long line's first piece) read it.
   */
  messageStart: number;
  messageEnd: number;
  /** why the line is malformed (e.g. 'cri: missing stream'); undefined when it parsed */
  error: string | undefined;
  /** the bytes were not valid UTF-8 (decoded with U+FFFD replacements) */
  invalidUtf8: boolean;
}

export type LineParser = (buf: Buffer, start: number, end: number) => ParsedLine;

/** Bit flags a record can carry; rendered as `log.flags` in the document. */
export const RecordFlag = {
  /** the line did not match its format; `message` is the raw line */
  ParseError: 1,
  /** bytes were not valid UTF-8 */
  InvalidUtf8: 2,
  /** one piece of a record longer than max-line-bytes */
  Split: 4,
  /** joined from CRI P / docker partial fragments */
  Partial: 8,
  /** emitted without its final newline (file rotated away / deleted / truncated) */
  Incomplete: 16,
  /** several physical records grouped by a multiline rule (a stack trace) */
  Multiline: 32,
  /** the message was cut to the record-size limit */
  Truncated: 64,
  /** a summary of records dropped by the per-container rate limit */
  Throttled: 128,
} as const;

/** A logical record: one or more physical lines joined, ready to be encoded. */
export interface LogRecord {
  /** byte offset of the first byte of the record's first physical line */
  offset: number;
  /**
   * Offset of the record's last physical line, when it has several (joined partial fragments, a
   * multiline group); undefined: `offset`. A restart inside a record already sent uses it to skip
   * the record's lines after the checkpoint (parse/multiline/grouper.ts, `resumePoint`).
   */
  lastOffset?: number | undefined;
  time: string | undefined;
  stream: Stream | undefined;
  message: string;
  /** RecordFlag bits */
  flags: number;
  /** parse error reason, when flags has ParseError */
  error: string | undefined;
  /** 0-based piece number when flags has Split */
  part: number;
}

/** A line that did not match its format: kept whole as the message, flagged with why. */
export function malformedLine(message: string, invalidUtf8: boolean, error: string): ParsedLine {
  return {
    time: undefined,
    stream: undefined,
    partial: false,
    message,
    messageStart: -1,
    messageEnd: -1,
    error,
    invalidUtf8,
  };
}
