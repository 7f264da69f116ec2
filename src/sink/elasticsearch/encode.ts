import { UsageError } from '../../errors.ts';
import type { SourceFile } from '../../pipeline/types.ts';

/**
 * Deterministic document id: the file's stable id and the record's byte offset. A re-send of the
 * same record (after a timeout, a retry, a crash) carries the same id, and `create` turns it into a
 * 409 that counts as "already stored".
 */
export function documentId(file: SourceFile, offset: number): string {
  return `${file.identity.id}-${offset}`;
}

type Part =
  | { kind: 'text'; text: string }
  | { kind: 'field'; name: string }
  | { kind: 'date'; format: string };

/**
 * `--index` templates: literal text with `{field.name}` (a per-file field such as
 * `kubernetes.namespace`, or `host.name`) and `{yyyy.MM.dd}`-style dates of the record's
 * `@timestamp` in UTC (tokens yyyy, yy, MM, dd, HH). Substituted values are lower-cased and characters
 * Elasticsearch forbids in index names become `_`; a missing field becomes `unknown`.
 */
export class IndexTemplate {
  readonly #parts: Part[];
  readonly source: string;
  /** true when the name depends only on the file (not on each record's date) */
  readonly perFile: boolean;
  /** per file: the fields it was rendered from (they can arrive later, with pod metadata) and the name */
  readonly #cache = new WeakMap<SourceFile, { fields: SourceFile['fields']; name: string }>();

  constructor(template: string) {
    this.source = template;
    this.#parts = parseTemplate(template);
    this.perFile = !this.#parts.some((p) => p.kind === 'date');
    if (!this.#parts.some((p) => p.kind !== 'text')) validateIndexName(template);
  }

  /** The index of one document, from its file and its `@timestamp` text. */
  resolve(file: SourceFile, timestamp: string | undefined, hostName?: string): string {
    if (this.perFile) {
      const cached = this.#cache.get(file);
      if (cached !== undefined && cached.fields === file.fields) return cached.name;
      const name = this.#render(file, undefined, hostName);
      this.#cache.set(file, { fields: file.fields, name });
      return name;
    }
    const t = timestamp === undefined ? Number.NaN : Date.parse(timestamp);
    return this.#render(file, Number.isNaN(t) ? undefined : new Date(t), hostName);
  }

  #render(file: SourceFile, time: Date | undefined, hostName: string | undefined): string {
    let out = '';
    for (const p of this.#parts) {
      if (p.kind === 'text') out += p.text;
      else if (p.kind === 'date') out += formatDate(time ?? new Date(), p.format);
      else {
        const value =
          p.name === 'log.file.path' ? file.path : p.name === 'host.name' ? hostName : file.fields?.[p.name];
        out += sanitize(value ?? 'unknown');
      }
    }
    return out;
  }
}

function parseTemplate(template: string): Part[] {
  const parts: Part[] = [];
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf('{', i);
    if (open === -1) {
      parts.push({ kind: 'text', text: template.slice(i) });
      break;
    }
    if (open > i) parts.push({ kind: 'text', text: template.slice(i, open) });
    const close = template.indexOf('}', open);
    if (close === -1) throw new UsageError(`index template '${template}': '{' without '}'`);
    const inner = template.slice(open + 1, close).trim();
    if (inner === '') throw new UsageError(`index template '${template}': empty '{}'`);
    if (/^(yyyy|yy|MM|dd|HH)([.\-_](yyyy|yy|MM|dd|HH))*$/.test(inner))
      parts.push({ kind: 'date', format: inner });
    else if (/^[A-Za-z0-9_@][A-Za-z0-9_.@/-]*$/.test(inner)) parts.push({ kind: 'field', name: inner });
    else {
      throw new UsageError(
        `index template '${template}': '{${inner}}' is neither a field name nor a date like {yyyy.MM.dd}`,
      );
    }
    i = close + 1;
  }
  return parts;
}

const FORBIDDEN = /[\\/*?"<>| ,#:A-Z]/g;

function sanitize(value: string): string {
  return value.toLowerCase().replace(FORBIDDEN, '_');
}

export function validateIndexName(name: string): void {
  if (name === '' || name !== name.toLowerCase() || /[\\/*?"<>| ,#:]/.test(name) || /^[-_+]/.test(name)) {
    throw new UsageError(
      `index '${name}' is not a valid Elasticsearch index name (lower case, no spaces or \\/*?"<>|,#:, not starting with -_+)`,
    );
  }
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function formatDate(d: Date, format: string): string {
  return format.replace(/yyyy|yy|MM|dd|HH/g, (t) => {
    switch (t) {
      case 'yyyy':
        return String(d.getUTCFullYear());
      case 'yy':
        return pad(d.getUTCFullYear() % 100);
      case 'MM':
        return pad(d.getUTCMonth() + 1);
      case 'dd':
        return pad(d.getUTCDate());
      default:
        return pad(d.getUTCHours());
    }
  });
}

/**
 * The bulk action line for one document (with its trailing newline). `bypassPipeline` sends it
 * past the request's ingest pipeline (`"pipeline":"_none"`): dead letters must not be refused by
 * the pipeline that may have refused the original.
 */
export function actionLine(index: string, id: string | undefined, bypassPipeline = false): string {
  const idPart = id === undefined ? '' : `,"_id":${JSON.stringify(id)}`;
  const pipelinePart = bypassPipeline ? ',"pipeline":"_none"' : '';
  return `{"create":{"_index":${JSON.stringify(index)}${idPart}${pipelinePart}}}\n`;
}

/** How much of a rejected document the dead-letter index keeps (its text; the rest is cut and said so). */
export const DLQ_MAX_DOCUMENT_CHARS = 1024 * 1024;

/**
 * A dead-letter document for a record Elasticsearch refused: the original document as a string
 * (so it can never be refused for its mapping again), where it was going, and why it was refused.
 */
export function deadLetterDocument(
  doc: string,
  index: string,
  status: number,
  error: { type?: string | undefined; reason?: string | undefined },
  now: Date = new Date(),
): string {
  const truncated = doc.length > DLQ_MAX_DOCUMENT_CHARS;
  const body = {
    '@timestamp': now.toISOString(),
    message: truncated ? doc.slice(0, DLQ_MAX_DOCUMENT_CHARS) : doc,
    error: { type: error.type ?? 'unknown', message: error.reason ?? '', status },
    logferry: { dlq: { index, truncated } },
  };
  return JSON.stringify(body);
}
