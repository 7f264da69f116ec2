import { type LogRecord, RecordFlag } from '../parse/types.ts';

/**
 * The per-file parts of every document of a file, serialized once per file (not per line), so a
 * document is a concatenation of known text plus the record's escaped message.
 */
export interface DocumentContext {
  /** JSON string literal of `log.file.path` */
  pathJson: string;
  /** `"host":{"name":"..."}` */
  host: string;
  /** enrichment members: '' or starting with ',' */
  extra: string;
}

const FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [RecordFlag.ParseError, 'parse_error'],
  [RecordFlag.InvalidUtf8, 'invalid_utf8'],
  [RecordFlag.Split, 'split'],
  [RecordFlag.Partial, 'partial'],
  [RecordFlag.Incomplete, 'incomplete'],
  [RecordFlag.Multiline, 'multiline'],
  [RecordFlag.Truncated, 'truncated'],
];

const flagsCache = new Map<number, string>();

function flagsJson(flags: number): string {
  let text = flagsCache.get(flags);
  if (text === undefined) {
    text = JSON.stringify(FLAG_NAMES.filter(([bit]) => (flags & bit) !== 0).map(([, name]) => name));
    flagsCache.set(flags, text);
  }
  return text;
}

export function documentContext(path: string, hostName: string, extra = ''): DocumentContext {
  return { pathJson: JSON.stringify(path), host: `"host":{"name":${JSON.stringify(hostName)}}`, extra };
}

/**
 * One record as a JSON document (no trailing newline). `jsonFields` is the message's JSON object
 * text when the message is one (see parse/json-message.ts); it goes under `json` so an
 * application's fields can never overwrite logferry's own (`message`, `log.*`, `@timestamp`...).
 * `fallbackTimeJson` (a JSON string literal) is used when the format carries no timestamp (plain
 * text, JSON lines): the time logferry read the line.
 */
export function encodeDocument(
  rec: LogRecord,
  ctx: DocumentContext,
  fallbackTimeJson: string,
  jsonFields: string | undefined,
): string {
  let doc = `{"@timestamp":${rec.time === undefined ? fallbackTimeJson : JSON.stringify(rec.time)},"message":${JSON.stringify(rec.message)}`;
  if (rec.stream !== undefined) doc += `,"stream":"${rec.stream}"`;
  doc += `,"log":{"file":{"path":${ctx.pathJson}},"offset":${rec.offset}`;
  if (rec.flags !== 0) {
    doc += `,"flags":${flagsJson(rec.flags)}`;
    if ((rec.flags & RecordFlag.Split) !== 0) doc += `,"part":${rec.part}`;
  }
  doc += `},${ctx.host}`;
  if (jsonFields !== undefined) doc += `,"json":${jsonFields}`;
  if (rec.error !== undefined) doc += `,"error":{"type":"parse","message":${JSON.stringify(rec.error)}}`;
  return `${doc}${ctx.extra}}`;
}

/** Whether the record's message should be tried as a JSON object (whole, well-formed records only). */
export function mayCarryJson(rec: LogRecord): boolean {
  return (rec.flags & (RecordFlag.ParseError | RecordFlag.Split | RecordFlag.Incomplete)) === 0;
}
