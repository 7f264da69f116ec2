// Config-driven filters (see docs/filters.md): an ordered list of steps that keep or drop a record
// by a field's value, drop, rename or add fields. Steps are validated once at config time (every
// problem is one line naming the step), compiled once, then run on every document of every file.

import { Buffer } from 'node:buffer';
import { z } from 'zod';
import type { Matcher } from './types.ts';

/** logferry's own fields, needed for document ids and order: never dropped, renamed or replaced. */
export const PROTECTED_FIELDS: readonly string[] = ['@timestamp', 'log.offset', 'log.file.path'];

/** Segments that could reach an object's prototype: rejected in every field path. */
const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** At most this many dotted segments in a field path (bounds the dotted-key search, see `locate`). */
export const MAX_PATH_SEGMENTS = 16;

const STEP_KINDS = ['include', 'exclude', 'drop', 'rename', 'add'] as const;
type StepKind = (typeof STEP_KINDS)[number];

/** `include`/`exclude`: keep (or drop) the records whose field equals one of `equals`, or matches `regex`. */
export interface MatchStep {
  kind: 'include' | 'exclude';
  field: string;
  equals?: readonly string[] | undefined;
  regex?: string | undefined;
}
export interface DropStep {
  kind: 'drop';
  fields: readonly string[];
}
export interface RenameStep {
  kind: 'rename';
  /** [from, to], applied in the order written */
  pairs: ReadonlyArray<readonly [string, string]>;
}
export interface AddStep {
  kind: 'add';
  /** [field, value], applied in the order written */
  pairs: ReadonlyArray<readonly [string, string]>;
}
/** One validated step of `filters:`. */
export type FilterStep = MatchStep | DropStep | RenameStep | AddStep;

/**
 * Applies the steps to a document object (as parsed from the encoded JSON document), changing it in
 * place: returns the same object, or undefined when the record is dropped. Never throws.
 */
export type Filter = (doc: Record<string, unknown>) => Record<string, unknown> | undefined;

export type CompileRegex = (pattern: string, what: string) => Matcher;

// ---------------------------------------------------------------------------------------------
// Problems: zod issues as one line each

function show(v: unknown): string {
  const text = JSON.stringify(v);
  return text === undefined ? String(v) : text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** `filters`, [2, 'include', 'field'] -> `filters[2].include.field`; odd keys as `["json.msg"]`. */
export function issuePath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (typeof p === 'string' && /^[A-Za-z_@][\w@-]*$/.test(p)) out += `.${p}`;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const p of path) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, p)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/**
 * Zod issues of a config value (`input`, found under the key `root`) as one line each:
 * `filters[2].include: needs exactly one of equals or regex`. The loader prefixes the file.
 * `hint(path)` completes an unknown-key problem with the keys expected there.
 */
export function issueProblems(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  root: string,
  hint: (path: readonly PropertyKey[]) => string | undefined = () => undefined,
): string[] {
  return issues.map((issue) => {
    const at = issuePath(root, issue.path);
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => `'${k}'`).join(', ');
      const expected = hint(issue.path);
      return `${at}: unknown key ${keys}${expected === undefined ? '' : `; expected ${expected}`}`;
    }
    if (issue.code === 'custom') return `${at}: ${issue.message}`;
    const value = valueAt(input, issue.path);
    return value === undefined
      ? `${at}: missing; ${issue.message}`
      : `${at}: ${show(value)} is not valid: ${issue.message}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Schema

/** Why a field path is not usable, or undefined when it is. */
export function pathProblem(path: string): string | undefined {
  if (path === '') return 'a field path must not be empty';
  const segments = path.split('.');
  if (segments.some((s) => s === ''))
    return `'${path}' has an empty segment (a leading, trailing or double dot)`;
  const bad = segments.find((s) => FORBIDDEN_SEGMENTS.has(s));
  if (bad !== undefined) {
    return `'${path}' is not allowed: __proto__, constructor and prototype cannot be field names`;
  }
  if (segments.length > MAX_PATH_SEGMENTS) return `'${path}' has more than ${MAX_PATH_SEGMENTS} segments`;
  return undefined;
}

/** Why a field may not be written (dropped, renamed, replaced), or undefined when it may. */
function protectedProblem(path: string, what: string): string | undefined {
  const hit = PROTECTED_FIELDS.find(
    (p) => p === path || p.startsWith(`${path}.`) || path.startsWith(`${p}.`),
  );
  if (hit === undefined) return undefined;
  const why =
    hit === path
      ? 'logferry needs it for document ids and order'
      : `${hit.startsWith(`${path}.`) ? 'it holds' : 'it is inside'} ${hit}, which logferry needs for document ids and order`;
  return `'${path}' cannot be ${what}: ${why} (protected: ${PROTECTED_FIELDS.join(', ')})`;
}

const FIELD_EXPECTED = 'expected a field path, e.g. kubernetes.namespace or json.user.id';

function fieldSchema(what?: string) {
  return z.string({ error: FIELD_EXPECTED }).superRefine((path, ctx) => {
    const problem = pathProblem(path) ?? (what === undefined ? undefined : protectedProblem(path, what));
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });
}

const matchSchema = z
  .strictObject(
    {
      field: fieldSchema(),
      equals: z
        .union([z.string(), z.array(z.string()).min(1, { error: 'expected at least one value' })], {
          error: 'expected a string or a non-empty list of strings (quote numbers: "404")',
        })
        .optional(),
      regex: z.string({ error: 'expected a regular expression (RE2 syntax) as a string' }).optional(),
    },
    { error: 'expected a mapping: { field, equals } or { field, regex }' },
  )
  .superRefine((m, ctx) => {
    if ((m.equals === undefined) === (m.regex === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'needs exactly one of equals or regex' });
    }
  });

/**
 * A mapping of field paths (keys) to strings, checked by hand on the raw input: zod's records skip
 * an own `__proto__` key silently (a YAML file can have one), and the order written is kept.
 */
function pairsSchema(kind: 'rename' | 'add') {
  const keyVerb = kind === 'rename' ? 'renamed' : 'replaced';
  return z.unknown().transform((input, ctx): Array<readonly [string, string]> => {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      ctx.addIssue({
        code: 'custom',
        message: `${show(input)} is not valid: expected a mapping of ${kind === 'rename' ? 'field: new field' : 'field: value'}`,
      });
      return [];
    }
    const pairs: Array<readonly [string, string]> = [];
    const keys = Object.keys(input);
    if (keys.length === 0) ctx.addIssue({ code: 'custom', message: 'expected at least one field' });
    for (const key of keys) {
      const value: unknown = (input as Record<string, unknown>)[key];
      const keyProblem = pathProblem(key) ?? protectedProblem(key, keyVerb);
      if (keyProblem !== undefined) {
        ctx.addIssue({ code: 'custom', message: keyProblem, path: [key] });
        continue;
      }
      if (typeof value !== 'string') {
        const expected =
          kind === 'rename' ? FIELD_EXPECTED : 'expected a string (quote numbers and booleans: "3")';
        ctx.addIssue({ code: 'custom', message: `${show(value)} is not valid: ${expected}`, path: [key] });
        continue;
      }
      if (kind === 'rename') {
        const targetProblem = pathProblem(value) ?? protectedProblem(value, 'replaced');
        if (targetProblem !== undefined) {
          ctx.addIssue({ code: 'custom', message: targetProblem, path: [key] });
          continue;
        }
      }
      pairs.push([key, value]);
    }
    return pairs;
  });
}

const stepSchema = z
  .strictObject(
    {
      include: matchSchema.optional(),
      exclude: matchSchema.optional(),
      drop: z
        .array(fieldSchema('dropped'), { error: 'expected a list of field paths' })
        .min(1, { error: 'expected at least one field' })
        .optional(),
      rename: pairsSchema('rename').optional(),
      add: pairsSchema('add').optional(),
    },
    { error: `expected a mapping with one of ${STEP_KINDS.join(', ')}` },
  )
  .superRefine((step, ctx) => {
    const kinds = STEP_KINDS.filter((k) => step[k] !== undefined);
    if (kinds.length === 0) {
      ctx.addIssue({ code: 'custom', message: `needs one of ${STEP_KINDS.join(', ')}` });
    } else if (kinds.length > 1) {
      ctx.addIssue({
        code: 'custom',
        message: `has ${kinds.join(' and ')}: a step does exactly one thing; write one step each, in the order wanted`,
      });
    }
  })
  .transform((step): FilterStep => {
    // only reached when the step is valid: exactly one kind is set
    const kind = STEP_KINDS.find((k) => step[k] !== undefined) as StepKind;
    switch (kind) {
      case 'include':
      case 'exclude': {
        const m = step[kind]!;
        const equals =
          m.equals === undefined ? undefined : typeof m.equals === 'string' ? [m.equals] : m.equals;
        return { kind, field: m.field, equals, regex: m.regex };
      }
      case 'drop':
        return { kind, fields: step.drop! };
      case 'rename':
      case 'add':
        return { kind, pairs: step[kind]! };
    }
  });

/** The config value `filters:`: an ordered list of steps, strict (unknown keys are errors). */
export const filtersSchema = z.array(stepSchema, { error: 'expected a list of filter steps' });

function filtersHint(path: readonly PropertyKey[]): string | undefined {
  if (path.length === 1) return `one of ${STEP_KINDS.join(', ')}`;
  if (path.length === 2 && (path[1] === 'include' || path[1] === 'exclude')) {
    return 'field with equals or regex';
  }
  return undefined;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; problems: string[] };

/** Validates the config value `filters:`; problems are one line each, prefixed with `root`. */
export function parseFilters(input: unknown, root = 'filters'): ParseResult<FilterStep[]> {
  if (input === undefined || input === null) return { ok: true, value: [] };
  const result = filtersSchema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  // a step with only unknown keys: its unknown-key problem already says what is expected
  const unknownAt = new Set(
    result.error.issues.filter((i) => i.code === 'unrecognized_keys').map((i) => i.path.join('.')),
  );
  const issues = result.error.issues.filter(
    (i) => !(i.code === 'custom' && i.message.startsWith('needs one of') && unknownAt.has(i.path.join('.'))),
  );
  return { ok: false, problems: issueProblems(issues, input, root, filtersHint) };
}

// ---------------------------------------------------------------------------------------------
// Field access on documents

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A field path split once: `keys[i][j]` is segments i..j joined with dots (j exclusive). */
interface CompiledPath {
  n: number;
  keys: string[][];
}

function compilePath(path: string): CompiledPath {
  const segments = path.split('.');
  const keys = segments.map((_, i) => {
    const row: string[] = [];
    for (let j = i + 1; j <= segments.length; j++) row[j] = segments.slice(i, j).join('.');
    return row;
  });
  return { n: segments.length, keys };
}

interface Location {
  parent: Obj;
  key: string;
}

/**
 * Where segments [i, end) of the path are in `obj`: at every level a single segment (nested
 * objects) is tried first, then longer literal keys containing dots (`"a.b"`), shortest first, and
 * the first complete match wins. Own keys only; arrays are values, never traversed.
 */
function locate(obj: Obj, p: CompiledPath, i: number, end: number, all?: Location[]): Location | undefined {
  const row = p.keys[i]!;
  for (let j = i + 1; j <= end; j++) {
    const key = row[j]!;
    if (!Object.hasOwn(obj, key)) continue;
    if (j === end) {
      if (all === undefined) return { parent: obj, key };
      all.push({ parent: obj, key });
      continue;
    }
    const v = obj[key];
    if (isObject(v)) {
      const found = locate(v, p, j, end, all);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function getField(doc: Obj, p: CompiledPath): unknown {
  const at = locate(doc, p, 0, p.n);
  return at === undefined ? undefined : at.parent[at.key];
}

/**
 * Sets the field: where it already is (any spelling, see `locate`), else as nested objects under
 * the deepest existing object on its path. Returns false, changing nothing, when a non-object value
 * is in the way (`json.user` is a string and the path is `json.user.id`).
 */
function setField(doc: Obj, p: CompiledPath, value: unknown): boolean {
  const at = locate(doc, p, 0, p.n);
  if (at !== undefined) {
    at.parent[at.key] = value;
    return true;
  }
  let obj = doc;
  let start = 0;
  for (let k = p.n - 1; k >= 1; k--) {
    const prefix = locate(doc, p, 0, k);
    if (prefix === undefined) continue;
    const v = prefix.parent[prefix.key];
    if (!isObject(v)) return false;
    obj = v;
    start = k;
    break;
  }
  for (let i = start; i < p.n - 1; i++) {
    const next: Obj = {};
    obj[p.keys[i]![i + 1]!] = next;
    obj = next;
  }
  obj[p.keys[p.n - 1]![p.n]!] = value;
  return true;
}

/** Removes every spelling of the field (nested and dotted keys alike). */
function dropField(doc: Obj, p: CompiledPath): void {
  const all: Location[] = [];
  locate(doc, p, 0, p.n, all);
  for (const at of all) delete at.parent[at.key];
}

function renameField(doc: Obj, from: CompiledPath, to: CompiledPath): void {
  const at = locate(doc, from, 0, from.n);
  if (at === undefined) return;
  const value = at.parent[at.key];
  delete at.parent[at.key];
  if (!setField(doc, to, value)) at.parent[at.key] = value;
}

/** A value's text for `equals`: strings as is, numbers and booleans by their string form. */
function scalarText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Compilation

type Op = (doc: Obj) => boolean;

function compileStep(step: FilterStep, index: number, compile: CompileRegex): Op {
  switch (step.kind) {
    case 'include':
    case 'exclude': {
      const field = compilePath(step.field);
      let matches: (v: unknown) => boolean;
      if (step.regex !== undefined) {
        const matcher = compile(step.regex, `filters[${index}].${step.kind}.regex`);
        matches = (v) => typeof v === 'string' && matcher.test(v);
      } else {
        const wanted = new Set(step.equals);
        matches = (v) => {
          const text = scalarText(v);
          return text !== undefined && wanted.has(text);
        };
      }
      return step.kind === 'include'
        ? (doc) => matches(getField(doc, field))
        : (doc) => !matches(getField(doc, field));
    }
    case 'drop': {
      const fields = step.fields.map(compilePath);
      return (doc) => {
        for (const f of fields) dropField(doc, f);
        return true;
      };
    }
    case 'rename': {
      const pairs = step.pairs.map(([from, to]) => [compilePath(from), compilePath(to)] as const);
      return (doc) => {
        for (const [from, to] of pairs) renameField(doc, from, to);
        return true;
      };
    }
    case 'add': {
      const pairs = step.pairs.map(([field, value]) => [compilePath(field), value] as const);
      return (doc) => {
        for (const [field, value] of pairs) setField(doc, field, value);
        return true;
      };
    }
  }
}

/**
 * Compiles validated steps into one Filter; undefined when there are none (nothing to do per
 * record). Regular expressions are compiled here with `compile`, whose error (a UsageError naming
 * `filters[i].include.regex`) propagates.
 */
export function compileFilters(steps: readonly FilterStep[], compile: CompileRegex): Filter | undefined {
  if (steps.length === 0) return undefined;
  const ops = steps.map((step, i) => compileStep(step, i, compile));
  return (doc) => {
    for (const op of ops) if (!op(doc)) return undefined;
    return doc;
  };
}

// ---------------------------------------------------------------------------------------------
// Record-size limit

/**
 * The message cut so that its UTF-8 length is at most `maxBytes`, at a character boundary (a
 * surrogate pair is never split; a lone surrogate counts as the 3 bytes of U+FFFD it is written
 * as). Pure: the caller sets RecordFlag.Truncated when `truncated`.
 */
export function limitMessage(message: string, maxBytes: number): { message: string; truncated: boolean } {
  // every UTF-16 code unit is at most 3 UTF-8 bytes
  if (message.length * 3 <= maxBytes || Buffer.byteLength(message, 'utf8') <= maxBytes) {
    return { message, truncated: false };
  }
  let bytes = 0;
  let i = 0;
  while (i < message.length) {
    const c = message.charCodeAt(i);
    let size = 3;
    let units = 1;
    if (c < 0x80) size = 1;
    else if (c < 0x800) size = 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < message.length) {
      const d = message.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        size = 4;
        units = 2;
      }
    }
    if (bytes + size > maxBytes) break;
    bytes += size;
    i += units;
  }
  return { message: message.slice(0, i), truncated: true };
}
