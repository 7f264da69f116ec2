// The transform stage, between parsing and encoding (see docs/DESIGN.md): multiline grouping of
// a file's records, structured parsing of their messages, filters and throttling. Everything here
// is per file and order-dependent, so it runs inside the file's FileProcessor.
import type { LogRecord } from '../parse/types.ts';

/** A compiled regular expression on a linear-time engine (RE2 semantics: no backtracking). */
export interface Matcher {
  /** whether the pattern matches anywhere in `text` */
  test(text: string): boolean;
  /** the named groups of the first match, or undefined when there is none */
  groups(text: string): Record<string, string> | undefined;
}

/** What a structured parser found in a message. */
export interface StructuredFields {
  /**
   * The fields as the JSON text of an object, embedded as is under the merge key (default `json`):
   * produced once per record, never parsed again downstream.
   */
  text: string;
  /** normalised severity from `level`/`severity`/`lvl`... (lower case), for `log.level` */
  level?: string | undefined;
  /** the application's own message (`message`/`msg`), for the document's `message` */
  message?: string | undefined;
  /** the application's own timestamp as RFC 3339 (ISO 8601) text, for `@timestamp` when enabled */
  time?: string | undefined;
}

/** Parses one record's message; undefined when the message is not in its format. Never throws. */
export type MessageParser = (message: string) => StructuredFields | undefined;

/**
 * Where a restart must skip records of one stream: they, or records they were part of (a multiline
 * group, a record joined from partial lines), were already delivered (see docs/multiline.md).
 */
export interface SkipEntry {
  stream: 'stdout' | 'stderr' | undefined;
  /** records of `stream` at offsets up to and including this one are skipped */
  through: number;
}

/** Groups a file's records into multiline records (parse/multiline/grouper.ts). */
export interface RecordGrouper {
  push(rec: LogRecord, out: LogRecord[]): void;
  /** emits every pending group */
  flush(out: LogRecord[]): void;
  hasPending(): boolean;
  reset(): void;
  /** where a checkpoint may be, at most `limit`, and what a restart there must skip */
  resumePoint(limit: number): { offset: number; skip: SkipEntry[] };
  /** on a restart: drop the records the skip entries name */
  skipThrough(skip: SkipEntry[]): void;
}

/** A document filter (transform/filters.ts): the document changed, or undefined to drop it. */
export type RecordFilter = (doc: Record<string, unknown>) => Record<string, unknown> | undefined;

/** Per-container rate limit in drop mode (transform/throttle.ts). */
export interface DropThrottle {
  /** whether a record of `bytes` may pass; a refused one is counted */
  admit(bytes: number): boolean;
  /** the counts refused since the last call, and the summary record's message, then reset */
  summary(): { lines: number; bytes: number; message: string } | undefined;
}

/** Everything applied to one file's records between parsing and encoding. */
export interface FileTransform {
  /** a fresh grouper for this file, when a multiline rule applies */
  grouper?: RecordGrouper | undefined;
  /** parses messages into fields; undefined: messages stay text */
  parser?: MessageParser | undefined;
  filter?: RecordFilter | undefined;
  maxRecordBytes?: number | undefined;
  throttle?: DropThrottle | undefined;
}

/** What the tail engine needs from the record options (transform/resolve.ts builds it from config). */
export interface Transforms {
  /** the merge key and whether an application's timestamp is used (encode/document.ts) */
  readonly fields: { mergeKey: string; appTimestamp: boolean };
  /** a pending multiline group is emitted after its file was silent this long */
  readonly flushMs: number;
  /**
   * The transform for a file, from its path and what enrichment said about it (annotations,
   * namespace); `meta` is undefined without enrichment.
   */
  forFile(path: string, meta: TransformMeta | undefined): FileTransform;
  /**
   * Pause-mode throttling: after a chunk of `records` records and `bytes` bytes from the file at
   * `path`, how long (ms) its container's files wait before their next read; 0 when within limits.
   */
  pauseAfter(path: string, meta: TransformMeta | undefined, records: number, bytes: number): number;
}

/** What enrichment says about a file that the transforms use. */
export interface TransformMeta {
  /** `logferry.io/parser` annotation */
  parser?: string | undefined;
  /** `logferry.io/multiline` annotation */
  multiline?: string | undefined;
  /** per-file string fields (e.g. `kubernetes.namespace`) */
  fields?: Readonly<Record<string, string>> | undefined;
}
