// A small model of Elasticsearch 8 field mapping: dynamic mapping from the first value seen, dotted keys expanded
// into objects, coercion of scalars, and the document_parsing_exception a conflicting document gets. It exists
// because mapping conflicts (a label `app` next to `app.kubernetes.io/name`, a field that is a number in one log
// line and an object in the next) are how agents lose logs in production, and the agent must see them as
// per-item 400s. Messages follow ES 8.19; the `[line:column]` prefix is approximate.

import type { EsCause } from './fake-elasticsearch-errors.ts';

export type FieldType =
  | 'text'
  | 'keyword'
  | 'long'
  | 'float'
  | 'double'
  | 'boolean'
  | 'date'
  | 'object'
  | 'flattened';

export type DynamicMode = true | false | 'strict';

// Flattened dotted path -> type, e.g. 'kubernetes.labels.app' -> 'keyword'.
export type FieldMap = Map<string, FieldType>;

export type MappingResult = { ok: true; added: Array<[string, FieldType]> } | { ok: false; error: EsCause };

const ES_TYPE_ALIASES: Record<string, FieldType> = {
  text: 'text',
  match_only_text: 'text',
  keyword: 'keyword',
  constant_keyword: 'keyword',
  wildcard: 'keyword',
  ip: 'keyword',
  version: 'keyword',
  long: 'long',
  integer: 'long',
  short: 'long',
  byte: 'long',
  unsigned_long: 'long',
  float: 'float',
  half_float: 'float',
  scaled_float: 'float',
  double: 'double',
  boolean: 'boolean',
  date: 'date',
  date_nanos: 'date',
  object: 'object',
  nested: 'object',
  flattened: 'flattened',
};

// Reads the `properties` tree of a mappings body (index creation, index template) into a flat map.
export function fieldsFromMappings(mappings: unknown): {
  fields: FieldMap;
  typeNames: Map<string, string>;
  dynamic?: DynamicMode;
} {
  const fields: FieldMap = new Map();
  const typeNames = new Map<string, string>();
  const walk = (properties: unknown, prefix: string): void => {
    if (!isPlainObject(properties)) return;
    for (const [name, spec] of Object.entries(properties)) {
      if (!isPlainObject(spec)) continue;
      const path = prefix === '' ? name : `${prefix}.${name}`;
      const declared = typeof spec.type === 'string' ? spec.type : undefined;
      if (declared === undefined || declared === 'object' || declared === 'nested') {
        fields.set(path, 'object');
        walk(spec.properties, path);
      } else {
        // Unknown types behave like keyword: accepting scalars is the least surprising fallback.
        fields.set(path, ES_TYPE_ALIASES[declared] ?? 'keyword');
        typeNames.set(path, declared);
      }
    }
  };
  if (!isPlainObject(mappings)) return { fields, typeNames };
  walk(mappings.properties, '');
  const dynamic = parseDynamic(mappings.dynamic);
  return dynamic === undefined ? { fields, typeNames } : { fields, typeNames, dynamic };
}

// Rebuilds the nested `properties` tree Elasticsearch shows for GET /<index>/_mapping.
export function mappingsFromFields(
  fields: FieldMap,
  typeNames: ReadonlyMap<string, string> = new Map(),
): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  const sorted = [...fields.entries()].sort(([a], [b]) => a.localeCompare(b));
  for (const [path, type] of sorted) {
    const segments = path.split('.');
    let properties = root;
    for (const segment of segments.slice(0, -1)) {
      const parent = childObject(properties, segment);
      properties = childObject(parent, 'properties');
    }
    const leaf = segments.at(-1)!;
    if (type === 'object') {
      properties[leaf] ??= { properties: {} };
    } else if (type === 'text') {
      // Dynamic strings are text with a keyword sub-field in ES 8; show the same.
      properties[leaf] = { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 256 } } };
    } else {
      properties[leaf] = { type: typeNames.get(path) ?? type };
    }
  }
  return { properties: root };
}

// The object under `key`, created empty when missing.
function childObject(parent: Record<string, unknown>, key: string): Record<string, unknown> {
  const existing = parent[key];
  if (isPlainObject(existing)) return existing;
  const created: Record<string, unknown> = {};
  parent[key] = created;
  return created;
}

function parseDynamic(value: unknown): DynamicMode | undefined {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  if (value === 'strict') return 'strict';
  return undefined;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Checks one document against the index's fields. Returns the fields dynamic mapping would add; the caller
// commits them only if the whole document is accepted, as Elasticsearch applies a mapping update per document.
export function mapDocument(
  fields: FieldMap,
  source: Record<string, unknown>,
  opts: { dynamic: DynamicMode; id: string; rawLine: string; typeNames?: ReadonlyMap<string, string> },
): MappingResult {
  const added = new Map<string, FieldType>();
  const typeOf = (path: string): FieldType | undefined => fields.get(path) ?? added.get(path);
  // The name a message shows: what the mapping declared ('integer'), not the family the fake models it as.
  const typeName = (path: string, type: FieldType): string => opts.typeNames?.get(path) ?? type;
  // Columns are 1-based and found by searching the raw line for the key, so they are right for compact JSON
  // (what agents send) and approximate otherwise.
  const keyColumn = (key: string): number => {
    const at = opts.rawLine.indexOf(`${JSON.stringify(key)}:`);
    return at < 0 ? 1 : at + 1;
  };
  const valueColumn = (key: string): number => {
    const at = opts.rawLine.indexOf(`${JSON.stringify(key)}:`);
    return at < 0 ? 1 : at + JSON.stringify(key).length + 2;
  };
  const position = (key: string): string => `[1:${valueColumn(key)}]`;

  const visitObject = (obj: Record<string, unknown>, parent: string): EsCause | undefined => {
    keys: for (const [key, value] of Object.entries(obj)) {
      const segments = key.split('.');
      if (segments.some((s) => s.trim() === '')) {
        return {
          type: 'document_parsing_exception',
          reason: `${position(key)} field name cannot contain only whitespace: ['${key}']`,
        };
      }
      let path = parent;
      // Dotted keys are shorthand for nested objects: every segment but the last must be (or become) an object.
      for (const [i, segment] of segments.slice(0, -1).entries()) {
        path = path === '' ? segment : `${path}.${segment}`;
        const existing = typeOf(path);
        if (existing !== undefined && existing !== 'object') {
          // A flattened field takes whatever is below it.
          if (existing === 'flattened') continue keys;
          const rest = Object.fromEntries([[segments.slice(i + 1).join('.'), value]]);
          // Reached through a dotted key, the parser meets the object where it expected a scalar token.
          return scalarConflict(path, existing, expandDots(rest), key, {
            type: 'illegal_state_exception',
            reason: `Can't get text on a START_OBJECT at 1:${keyColumn(key)}`,
          });
        }
        if (existing === undefined) {
          const verdict = dynamicVerdict(path, segment);
          if (verdict === 'ignore') continue keys;
          if (verdict !== 'add') return verdict;
          added.set(path, 'object');
        }
      }
      const leaf = segments.at(-1)!;
      path = path === '' ? leaf : `${path}.${leaf}`;
      const error = visitValue(path, leaf, key, value, false);
      if (error !== undefined) return error;
    }
    return undefined;
  };

  const dynamicVerdict = (path: string, leaf: string): 'add' | 'ignore' | EsCause => {
    if (opts.dynamic === true) return 'add';
    if (opts.dynamic === false) return 'ignore';
    const parent = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '_doc';
    return {
      type: 'strict_dynamic_mapping_exception',
      reason: `${position(leaf)} mapping set to strict, dynamic introduction of [${leaf}] within [${parent}] is not allowed`,
    };
  };

  const scalarConflict = (
    path: string,
    type: FieldType,
    value: unknown,
    key: string,
    cause: EsCause,
  ): EsCause => ({
    type: 'document_parsing_exception',
    reason:
      `${position(key)} failed to parse field [${path}] of type [${typeName(path, type)}] in document with id ` +
      `'${opts.id}'. Preview of field's value: '${javaPreview(value)}'`,
    caused_by: cause,
  });

  const visitValue = (
    path: string,
    leaf: string,
    key: string,
    value: unknown,
    inArray: boolean,
  ): EsCause | undefined => {
    if (value === null) return undefined;
    if (Array.isArray(value)) {
      for (const element of value) {
        const error = visitValue(path, leaf, key, element, true);
        if (error !== undefined) return error;
      }
      return undefined;
    }
    let type = typeOf(path);
    if (type === 'flattened') return undefined;
    if (type === undefined) {
      const verdict = dynamicVerdict(path, leaf);
      if (verdict === 'ignore') return undefined;
      if (verdict !== 'add') return verdict;
      type = inferType(value);
      added.set(path, type);
    }
    if (isPlainObject(value)) {
      if (type !== 'object')
        return scalarConflict(path, type, value, key, objectIntoScalarCause(type, valueColumn(key)));
      return visitObject(value, path);
    }
    if (type === 'object') {
      // Inside an array Elasticsearch has lost the field name by then, and says so.
      const field = inArray ? 'null' : leaf;
      return {
        type: 'document_parsing_exception',
        reason: `${position(key)} object mapping for [${path}] tried to parse field [${field}] as object, but found a concrete value`,
      };
    }
    const cause = coercionFailure(type, value, {
      position: position(key),
      rawLine: opts.rawLine,
      endColumn: valueColumn(key) + JSON.stringify(value).length,
    });
    if (cause === undefined) return undefined;
    return scalarConflict(path, type, value, key, cause);
  };

  const error = visitObject(source, '');
  if (error !== undefined) return { ok: false, error };
  return { ok: true, added: [...added.entries()] };
}

function expandDots(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    const segments = key.split('.');
    let target = out;
    for (const segment of segments.slice(0, -1)) {
      target = childObject(target, segment);
    }
    target[segments.at(-1)!] = value;
  }
  return out;
}

function objectIntoScalarCause(type: FieldType, column: number): EsCause {
  if (type === 'long' || type === 'float' || type === 'double') {
    return { type: 'illegal_argument_exception', reason: 'Cannot parse object as number' };
  }
  if (type === 'text' || type === 'keyword') {
    return {
      type: 'illegal_argument_exception',
      reason: `Expected text at 1:${column} but found START_OBJECT`,
    };
  }
  return { type: 'illegal_state_exception', reason: `Can't get text on a START_OBJECT at 1:${column}` };
}

// Dynamic mapping of a first-seen value, as ES 8 does with default settings (date_detection on,
// numeric_detection off).
function inferType(value: unknown): FieldType {
  if (isPlainObject(value)) return 'object';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return Number.isInteger(value) ? 'long' : 'float';
  if (typeof value === 'string' && looksLikeDate(value)) return 'date';
  return 'text';
}

// strict_date_optional_time (with at least a full date) or `yyyy/MM/dd HH:mm:ss`, the default dynamic date formats.
const ISO_DATE =
  /^\d{4}-\d{2}-\d{2}(?:T\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/;
const SLASH_DATE = /^\d{4}\/\d{2}\/\d{2}(?: \d{2}:\d{2}:\d{2})?(?: [+-]\d{4})?$/;

function looksLikeDate(value: string): boolean {
  return ISO_DATE.test(value) || SLASH_DATE.test(value);
}

function coercionFailure(
  type: FieldType,
  value: unknown,
  where: { position: string; rawLine: string; endColumn: number },
): EsCause | undefined {
  switch (type) {
    case 'text':
    case 'keyword':
    case 'object':
    case 'flattened':
      return undefined;
    case 'long':
    case 'float':
    case 'double': {
      if (typeof value === 'number') return undefined;
      if (typeof value === 'boolean') {
        const token = value ? 'VALUE_TRUE' : 'VALUE_FALSE';
        // Jackson quotes the source it was reading, as Elasticsearch passes its message through.
        const source = where.rawLine;
        const reason =
          `Current token (${token}) not numeric, can not use numeric value accessors\n` +
          ` at [Source: (byte[])"${source}"; line: 1, column: ${where.endColumn}]`;
        return {
          type: 'x_content_parse_exception',
          reason: `${where.position} ${reason}`,
          caused_by: { type: 'json_parse_exception', reason },
        };
      }
      const text = String(value);
      if (text.trim() !== '' && Number.isFinite(Number(text))) return undefined;
      return { type: 'illegal_argument_exception', reason: `For input string: "${text}"` };
    }
    case 'boolean': {
      if (typeof value === 'boolean' || value === 'true' || value === 'false' || value === '')
        return undefined;
      return {
        type: 'illegal_argument_exception',
        reason: `Failed to parse value [${String(value)}] as only [true] or [false] are allowed.`,
      };
    }
    case 'date': {
      if (typeof value === 'number') return undefined;
      if (typeof value === 'string' && (looksLikeDate(value) || /^\d+$/.test(value))) return undefined;
      return {
        type: 'illegal_argument_exception',
        reason: `failed to parse date field [${String(value)}] with format [strict_date_optional_time||epoch_millis]`,
        caused_by: { type: 'date_time_parse_exception', reason: 'Failed to parse with all enclosed parsers' },
      };
    }
  }
}

// Elasticsearch previews a rejected value with Java's Map/List toString: {a=1, b=[x, y]}.
export function javaPreview(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(javaPreview).join(', ')}]`;
  if (isPlainObject(value)) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${k}=${javaPreview(v)}`)
      .join(', ')}}`;
  }
  return String(value);
}
