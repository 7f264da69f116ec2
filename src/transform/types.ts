// The transform stage, between parsing and encoding (see docs/DESIGN.md): multiline grouping of
// a file's records, structured parsing of their messages, filters and throttling. Everything here
// is per file and order-dependent, so it runs inside the file's FileProcessor.

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
