// Parses a _bulk NDJSON body the way Elasticsearch 8.19's BulkRequestParser does, including which mistakes fail
// the whole request (400) and which fail one item (a 200 with `errors: true`). Pure: no I/O, no state.

import {
  type EsCause,
  type EsErrorBody,
  illegalArgument,
  requestError,
} from './fake-elasticsearch-errors.ts';
import { isPlainObject } from './fake-elasticsearch-mapping.ts';

export type BulkAction = 'create' | 'index' | 'update' | 'delete';

export type ParsedSource =
  | { ok: true; value: Record<string, unknown>; raw: string }
  | { ok: false; error: EsCause };

export interface BulkOp {
  action: BulkAction;
  index: string;
  // Explicit `_id` from the action line; undefined means Elasticsearch generates one.
  id: string | undefined;
  pipeline: string | undefined;
  // Absent for delete.
  source: ParsedSource | undefined;
}

export type BulkParseResult = { ok: true; ops: BulkOp[] } | { ok: false; error: EsErrorBody };

const ACTIONS: ReadonlySet<string> = new Set(['create', 'index', 'update', 'delete']);

// Keys Elasticsearch accepts inside an action's metadata object; anything else fails the whole request.
const META_KEYS: ReadonlySet<string> = new Set([
  '_index',
  '_id',
  'routing',
  'pipeline',
  'version',
  'version_type',
  'if_seq_no',
  'if_primary_term',
  'retry_on_conflict',
  'require_alias',
  'require_data_stream',
  'dynamic_templates',
  'list_executed_pipelines',
  '_source',
]);

export function parseBulkBody(
  text: string,
  defaults: { index: string | undefined; pipeline: string | undefined },
): BulkParseResult {
  if (text.length === 0) {
    return {
      ok: false,
      error: requestError(400, { type: 'parse_exception', reason: 'request body is required' }),
    };
  }
  if (!text.endsWith('\n')) {
    return { ok: false, error: illegalArgument('The bulk request must be terminated by a newline [\\n]') };
  }
  const lines = text.split('\n');
  // The split leaves an empty string after the terminating newline.
  lines.pop();
  const ops: Array<BulkOp | { missingIndex: true }> = [];
  let i = 0;
  while (i < lines.length) {
    const lineNo = i + 1;
    const line = lines[i]!;
    i += 1;
    if (line.trim() === '') continue;

    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      return { ok: false, error: jsonError(line, lineNo, err) };
    }
    if (!isPlainObject(parsed)) {
      return {
        ok: false,
        error: illegalArgument(
          `Malformed action/metadata line [${lineNo}], expected START_OBJECT but found [${tokenName(parsed)}]`,
        ),
      };
    }
    const actionName = Object.keys(parsed)[0];
    if (actionName === undefined) {
      return {
        ok: false,
        error: illegalArgument(
          `Malformed action/metadata line [${lineNo}], expected FIELD_NAME but found [END_OBJECT]`,
        ),
      };
    }
    if (!ACTIONS.has(actionName)) {
      return {
        ok: false,
        error: illegalArgument(
          `Malformed action/metadata line [${lineNo}], expected field [create], [delete], [index] or [update] but found [${actionName}]`,
        ),
      };
    }
    const meta = parsed[actionName];
    if (!isPlainObject(meta)) {
      return {
        ok: false,
        error: illegalArgument(
          `Malformed action/metadata line [${lineNo}], expected START_OBJECT or END_OBJECT but found [${tokenName(meta)}]`,
        ),
      };
    }
    for (const key of Object.keys(meta)) {
      if (!META_KEYS.has(key)) {
        return {
          ok: false,
          error: illegalArgument(`Action/metadata line [${lineNo}] contains an unknown parameter [${key}]`),
        };
      }
    }
    const action = actionName as BulkAction;
    const index = typeof meta._index === 'string' ? meta._index : defaults.index;
    const id = meta._id === undefined || meta._id === null ? undefined : String(meta._id);
    const pipeline = typeof meta.pipeline === 'string' ? meta.pipeline : defaults.pipeline;

    let source: ParsedSource | undefined;
    if (action !== 'delete') {
      // A trailing action without its source line is dropped silently, as Elasticsearch does.
      if (i >= lines.length) break;
      const raw = lines[i]!;
      i += 1;
      source = parseSource(raw);
    }
    if (index === undefined) {
      ops.push({ missingIndex: true });
      continue;
    }
    ops.push({ action, index, id, pipeline, source });
  }

  // Validation runs over the whole request after parsing, and names every problem at once.
  const problems: string[] = [];
  if (ops.length === 0) problems.push('no requests added');
  for (const op of ops) {
    if ('missingIndex' in op) problems.push('index is missing');
  }
  if (problems.length > 0) {
    return {
      ok: false,
      error: requestError(400, {
        type: 'action_request_validation_exception',
        reason: `Validation Failed: ${problems.map((p, n) => `${n + 1}: ${p};`).join('')}`,
      }),
    };
  }
  return { ok: true, ops: ops as BulkOp[] };
}

function parseSource(raw: string): ParsedSource {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    const cause = jsonError(raw, 1, err).error;
    const { root_cause: _root, ...inner } = cause;
    return {
      ok: false,
      error: {
        type: 'document_parsing_exception',
        reason: `[1:2] failed to parse: ${inner.reason}`,
        caused_by: inner,
      },
    };
  }
  if (!isPlainObject(value)) {
    return {
      ok: false,
      error: { type: 'document_parsing_exception', reason: 'Malformed content, must start with an object' },
    };
  }
  return { ok: true, value, raw };
}

function jsonError(line: string, lineNo: number, err: unknown): EsErrorBody {
  const message = err instanceof Error ? err.message : String(err);
  if (/end of (?:JSON )?input|Unterminated/i.test(message)) {
    return requestError(400, {
      type: 'x_content_e_o_f_exception',
      reason: `[${lineNo}:${line.length + 1}] Unexpected end of file`,
      caused_by: {
        type: 'json_e_o_f_exception',
        reason:
          'Unexpected end-of-input within/between Object entries\n' +
          ` at [Source: (byte[])"${line}"; line: 1, column: ${line.length + 1}]`,
      },
    });
  }
  return requestError(400, { type: 'x_content_parse_exception', reason: `[${lineNo}:1] ${message}` });
}

function tokenName(value: unknown): string {
  if (Array.isArray(value)) return 'START_ARRAY';
  if (typeof value === 'string') return 'VALUE_STRING';
  if (typeof value === 'number') return 'VALUE_NUMBER';
  if (value === true) return 'VALUE_TRUE';
  if (value === false) return 'VALUE_FALSE';
  return 'VALUE_NULL';
}

// Index names Elasticsearch refuses; the reason texts are the server's.
export function invalidIndexNameReason(name: string): string | undefined {
  if (name !== name.toLowerCase()) return 'must be lowercase';
  if (name === '.' || name === '..') return "must not be '.' or '..'";
  if (/^[-_+]/.test(name)) return "must not start with '_', '-', or '+'";
  if (/[\\/*?"<>| ,#:]/.test(name))
    return "must not contain the following characters ['\\\\','/','*','?','\"','<','>','|',' ',',']";
  if (Buffer.byteLength(name) > 255) return 'index name is too long';
  return undefined;
}
