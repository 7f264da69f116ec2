import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { argvError, parseBytes, parsePositiveInt } from '../cli/values.ts';
import { UsageError } from '../errors.ts';
import { recordOptionProblems, recordOptions } from '../transform/resolve.ts';
import { AGENT_OPTIONS, envName, type OptionSpec } from './options.ts';

/** Option values by dotted key (`output.batchDocs`), every key present (undefined when unset). */
export type ConfigValues = ReadonlyMap<string, unknown>;

export class ConfigError extends UsageError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.problems = problems;
  }
}

function expected(spec: OptionSpec): string {
  if (spec.shape !== undefined) return spec.shape;
  switch (spec.type) {
    case 'string':
      return 'a non-empty string';
    case 'int':
      return 'a positive whole number';
    case 'bytes':
      return 'a size in bytes, e.g. 262144 or "256KiB"';
    case 'bool':
      return 'true or false';
    case 'list':
      return 'a list of strings';
    case 'enum':
      return `one of ${spec.choices!.join(', ')}`;
    case 'structured':
      return spec.shape ?? 'a structured value';
  }
}

function bytesValue(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  try {
    return parseBytes('', v);
  } catch {
    return undefined;
  }
}

function valueSchema(spec: OptionSpec): z.ZodType {
  if (spec.schema !== undefined) return spec.schema();
  switch (spec.type) {
    case 'string':
      return z.string().min(1);
    case 'int':
      return z.number().int().positive();
    case 'bytes':
      return z.union([z.number(), z.string()]).refine((v) => bytesValue(v) !== undefined);
    case 'bool':
      return z.boolean();
    case 'list':
      return z.array(z.string().min(1));
    case 'enum':
      return z.enum(spec.choices as [string, ...string[]]);
    case 'structured':
      return spec.schema!();
  }
}

/** The config file's schema: nested objects by key, strict (an unknown key is an error), all optional. */
export function fileSchema(): z.ZodType {
  type Tree = { [name: string]: Tree | OptionSpec };
  const tree: Tree = {};
  for (const spec of AGENT_OPTIONS) {
    const parts = spec.key.split('.');
    let node = tree;
    for (const p of parts.slice(0, -1)) {
      node[p] ??= {};
      node = node[p] as Tree;
    }
    node[parts.at(-1)!] = spec;
  }
  const build = (node: Tree): z.ZodType =>
    z
      .strictObject(
        Object.fromEntries(
          Object.entries(node).map(([name, child]) => [
            name,
            ('key' in child && typeof child.key === 'string'
              ? valueSchema(child as OptionSpec)
              : build(child as Tree)
            ).optional(),
          ]),
        ),
      )
      .optional();
  return build(tree);
}

function specByPath(path: readonly PropertyKey[]): OptionSpec | undefined {
  const key = path.join('.');
  return AGENT_OPTIONS.find((s) => s.key === key);
}

/** The structured option a path is inside of (`filters.2.include` -> filters), if any. */
function structuredAt(path: readonly PropertyKey[]): OptionSpec | undefined {
  for (let n = path.length; n > 0; n--) {
    const spec = specByPath(path.slice(0, n));
    if (spec !== undefined) return spec.type === 'structured' ? spec : undefined;
  }
  return undefined;
}

/** `filters.2.include` -> `filters[2].include` */
function showPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function getPath(obj: unknown, path: readonly PropertyKey[]): unknown {
  let v = obj;
  for (const p of path) v = (v as Record<PropertyKey, unknown> | undefined)?.[p];
  return v;
}

function show(v: unknown): string {
  const text = JSON.stringify(v);
  return text === undefined ? String(v) : text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Validates a parsed config file; every problem is reported, one line each. */
export function validateFile(doc: unknown, source: string): Map<string, unknown> {
  const values = new Map<string, unknown>();
  if (doc === null || doc === undefined) return values;
  const result = fileSchema().safeParse(doc);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const structured = structuredAt(issue.path);
      if (structured !== undefined) {
        const what =
          issue.code === 'unrecognized_keys'
            ? `unknown key ${issue.keys.map((k) => `'${k}'`).join(', ')}`
            : issue.message;
        return `${source}: ${showPath(issue.path)}: ${what}; expected ${structured.shape ?? 'see docs/configuration.md'}`;
      }
      if (issue.code === 'unrecognized_keys') {
        const at = issue.path.length > 0 ? `${issue.path.join('.')}.` : '';
        return `${source}: unknown key ${issue.keys.map((k) => `'${at}${k}'`).join(', ')}; see docs/configuration.md for the keys`;
      }
      const spec = specByPath(issue.path);
      const key = issue.path.join('.') || '(top level)';
      const value = getPath(doc, issue.path);
      return spec === undefined
        ? `${source}: ${key}: ${show(value)} is not valid: expected a mapping of keys`
        : `${source}: ${key}: ${show(value)} is not valid: expected ${expected(spec)}`;
    });
    throw new ConfigError(problems);
  }
  for (const spec of AGENT_OPTIONS) {
    const v = getPath(doc, spec.key.split('.'));
    if (v !== undefined) values.set(spec.key, spec.type === 'bytes' ? bytesValue(v) : v);
  }
  return values;
}

/** A flag or environment value (always a string, or a boolean flag) -> the option's type. */
function fromString(spec: OptionSpec, raw: string | boolean, where: string): unknown {
  if (typeof raw === 'boolean') return raw;
  switch (spec.type) {
    case 'string':
      if (raw === '') throw new UsageError(`${where}: must not be empty`);
      return raw;
    case 'int':
      return parsePositiveInt(where, raw);
    case 'bytes':
      return parseBytes(where, raw);
    case 'bool':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new UsageError(`${where}: '${raw}' is not valid: expected true or false`);
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    case 'enum':
      if (!spec.choices!.includes(raw)) {
        throw new UsageError(`${where}: '${raw}' is not valid: expected one of ${spec.choices!.join(', ')}`);
      }
      return raw;
    case 'structured':
      throw new UsageError(`${where}: set ${spec.key} in the config file`);
  }
}

export function readConfigFile(file: string): Map<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `config file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new UsageError(`config file ${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc !== null && (typeof doc !== 'object' || Array.isArray(doc))) {
    throw new UsageError(`config file ${file}: expected a mapping of keys at the top level`);
  }
  return validateFile(doc, file);
}

export function flagOptions(): Record<string, { type: 'string' | 'boolean' }> {
  const out: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const spec of AGENT_OPTIONS) {
    if (spec.flag !== undefined) out[spec.flag] = { type: spec.type === 'bool' ? 'boolean' : 'string' };
  }
  return out;
}

export interface LoadedConfig {
  values: ConfigValues;
  configFile: string | undefined;
  once: boolean;
}

/**
 * Defaults < config file < LOGFERRY_* environment < flags. Bad input of any kind is a UsageError
 * naming the key (or flag, or variable), the value and what was expected.
 */
export function loadAgentConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): LoadedConfig | 'help' {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      allowNegative: true,
      strict: true,
      options: {
        ...flagOptions(),
        config: { type: 'string' },
        once: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw argvError(err, 'agent');
  }
  const flags = parsed.values as Record<string, string | boolean | undefined>;
  if (flags.help === true) return 'help';
  const configFile = typeof flags.config === 'string' ? flags.config : undefined;
  const values = new Map<string, unknown>();
  for (const spec of AGENT_OPTIONS) values.set(spec.key, spec.default);
  if (configFile !== undefined) for (const [k, v] of readConfigFile(configFile)) values.set(k, v);
  for (const spec of AGENT_OPTIONS) {
    const name = envName(spec);
    const raw = name === undefined ? undefined : env[name];
    if (raw !== undefined && raw !== '') values.set(spec.key, fromString(spec, raw, name!));
  }
  for (const spec of AGENT_OPTIONS) {
    const raw = spec.flag === undefined ? undefined : flags[spec.flag];
    if (raw !== undefined) values.set(spec.key, fromString(spec, raw, `--${spec.flag}`));
  }
  if (values.get('nodeName') === undefined && env.NODE_NAME) values.set('nodeName', env.NODE_NAME);
  checkRecordOptions(values, configFile ?? 'config');
  workerCount(values.get('workers'), '--workers');
  return { values, configFile, once: flags.once === true };
}

/** `--workers`: auto, or a whole number from 0 (no worker threads) to 64. */
export function workerCount(value: unknown, where: string): number {
  if (value === 'auto' || value === undefined) return Math.min(4, Math.max(1, availableParallelism() - 1));
  const n = typeof value === 'number' ? value : /^\d+$/.test(String(value)) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 0 || n > 64) {
    throw new UsageError(
      `${where}: '${String(value)}' is not valid: expected auto or a number of threads from 0 to 64`,
    );
  }
  return n;
}

/**
 * What the schema cannot see: rule and parser names that must exist, regexes that must compile on
 * the RE2 engine, filter steps (transform/resolve.ts).
 */
function checkRecordOptions(values: ReadonlyMap<string, unknown>, source: string): void {
  const problems = recordOptionProblems(recordOptions(<T>(key: string) => values.get(key) as T));
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${source}: ${p}`));
}

/** `logferry check-config FILE`: the file alone (over the defaults), validated. */
export function checkConfigFile(file: string): void {
  const values = new Map<string, unknown>();
  for (const spec of AGENT_OPTIONS) values.set(spec.key, spec.default);
  for (const [k, v] of readConfigFile(file)) values.set(k, v);
  checkRecordOptions(values, file);
}

export function agentUsage(): string {
  const lines = ['Usage: logferry agent [--config FILE] [--once] [options]', ''];
  lines.push('Runs the node agent: tails the pods directory, adds pod metadata, ships to Elasticsearch.');
  lines.push('Every option can also be set in the config file (key) or the environment (LOGFERRY_*).', '');
  for (const spec of AGENT_OPTIONS) {
    if (spec.flag === undefined) continue;
    const flag = spec.type === 'bool' ? `--[no-]${spec.flag}` : `--${spec.flag} <${spec.type}>`;
    const def =
      spec.default === undefined || (Array.isArray(spec.default) && spec.default.length === 0)
        ? ''
        : ` (default: ${String(spec.default)})`;
    lines.push(`  ${flag.padEnd(34)} ${spec.description}${def}`);
  }
  lines.push('  --config <file>                    YAML config file (see docs/configuration.md)');
  lines.push(
    '  --once                             read every file to its current end, deliver, save, exit 0',
  );
  lines.push('  -h, --help                         show this help', '');
  return lines.join('\n');
}
