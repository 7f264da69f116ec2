import { type LogRecord, RecordFlag } from '../parse/types.ts';
import type { DocumentAction } from '../pipeline/types.ts';
import type { StructuredFields } from '../transform/types.ts';

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
  /** `,"<merge key>":` — what precedes a message's parsed fields */
  fieldsPrefix: string;
  /** use the application's own valid timestamp as `@timestamp` */
  appTimestamp: boolean;
  /**
   * The sink's line written before each document (Elasticsearch: the bulk action line), so a
   * document and its action line are built together, off the main thread; undefined: documents only.
   */
  action?: DocumentAction | undefined;
}

/** What follows the offset digits of a `withOffset` action line. */
export const ACTION_ID_END = '"}}\n';

export interface FieldOptions {
  /** parsed fields go under this key (default `json`) */
  mergeKey: string;
  appTimestamp: boolean;
}

export const DEFAULT_FIELD_OPTIONS: FieldOptions = { mergeKey: 'json', appTimestamp: false };

const FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [RecordFlag.ParseError, 'parse_error'],
  [RecordFlag.InvalidUtf8, 'invalid_utf8'],
  [RecordFlag.Split, 'split'],
  [RecordFlag.Partial, 'partial'],
  [RecordFlag.Incomplete, 'incomplete'],
  [RecordFlag.Multiline, 'multiline'],
  [RecordFlag.Truncated, 'truncated'],
  [RecordFlag.Throttled, 'throttled'],
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

export function documentContext(
  path: string,
  hostName: string,
  extra = '',
  fields: FieldOptions = DEFAULT_FIELD_OPTIONS,
  action?: DocumentAction | undefined,
): DocumentContext {
  return {
    pathJson: JSON.stringify(path),
    host: `"host":{"name":${JSON.stringify(hostName)}}`,
    extra,
    fieldsPrefix: `,${JSON.stringify(fields.mergeKey)}:`,
    appTimestamp: fields.appTimestamp,
    action,
  };
}

/**
 * One record as a JSON document (no trailing newline). `fields` is what a structured parser found
 * in the message (see transform/types.ts): its object text goes under the merge key (default
 * `json`) so an application's fields can never overwrite logferry's own (`message`, `log.*`,
 * `@timestamp`...); the application's own message, when it has one, becomes `message` and its
 * level `log.level`. `fallbackTimeJson` (a JSON string literal) is used when the format carries no
 * timestamp (plain text, JSON lines): the time logferry read the line.
 */
export function encodeDocument(
  rec: LogRecord,
  ctx: DocumentContext,
  fallbackTimeJson: string,
  fields: StructuredFields | undefined,
): string {
  return `${encodeDocumentHead(rec, ctx, fallbackTimeJson, fields)}${ctx.extra}}`;
}

/**
 * The document without the file's enrichment members (`ctx.extra`) and the closing brace: the hot
 * path writes those as bytes encoded once per file (parse/file-processor.ts).
 */
export function encodeDocumentHead(
  rec: LogRecord,
  ctx: DocumentContext,
  fallbackTimeJson: string,
  fields: StructuredFields | undefined,
): string {
  const time =
    ctx.appTimestamp && fields?.time !== undefined
      ? JSON.stringify(fields.time)
      : rec.time === undefined
        ? fallbackTimeJson
        : JSON.stringify(rec.time);
  let doc = `{"@timestamp":${time},"message":${JSON.stringify(fields?.message ?? rec.message)}`;
  if (rec.stream !== undefined) doc += `,"stream":"${rec.stream}"`;
  doc += `,"log":{"file":{"path":${ctx.pathJson}},"offset":${rec.offset}`;
  if (fields?.level !== undefined) doc += `,"level":${JSON.stringify(fields.level)}`;
  if (rec.flags !== 0) {
    doc += `,"flags":${flagsJson(rec.flags)}`;
    if ((rec.flags & RecordFlag.Split) !== 0) doc += `,"part":${rec.part}`;
  }
  doc += `},${ctx.host}`;
  if (fields !== undefined) doc += `${ctx.fieldsPrefix}${fields.text}`;
  if (rec.error !== undefined) doc += `,"error":{"type":"parse","message":${JSON.stringify(rec.error)}}`;
  return doc;
}

/** Whether the record's message should be tried as a JSON object (whole, well-formed records only). */
export function mayCarryJson(rec: LogRecord): boolean {
  return (rec.flags & (RecordFlag.ParseError | RecordFlag.Split | RecordFlag.Incomplete)) === 0;
}
