// The record options of the config (multiline, parsers, filters, limits, throttling), compiled
// once, and the per-file choice among them: which multiline rule and which parser a file gets
// from its pod's annotations, the path globs and the defaults. The tail engine asks `forFile` once
// a file's metadata is known and before reading it.
import { dirname, matchesGlob } from 'node:path';
import { UsageError } from '../errors.ts';
import { MultilineGrouper } from '../parse/multiline/grouper.ts';
import {
  builtinRule,
  customRule,
  isMultilineRuleName,
  type MultilineRule,
} from '../parse/multiline/rules.ts';
import { compileFilters, type Filter, parseFilters } from './filters.ts';
import { compileParserRegex, compileRegex } from './regex.ts';
import { BUILTIN_PARSERS, parserFor } from './structured.ts';
import { type ThrottleEvents, ThrottleRegistry, throttleSummaryRecord } from './throttle.ts';
import type {
  DropThrottle,
  FileTransform,
  Matcher,
  MessageParser,
  TransformMeta,
  Transforms,
} from './types.ts';

export interface RecordOptions {
  multiline: {
    default: string;
    rules: readonly { path: string; rule: string }[];
    custom: Readonly<Record<string, { start?: string | undefined; continuation?: string | undefined }>>;
    flushMs: number;
    maxLines: number;
    maxBytes: number;
  };
  parser: string;
  parsers: readonly { name: string; regex: string }[];
  mergeKey: string;
  appTimestamp: boolean;
  filters: unknown;
  maxRecordBytes: number | undefined;
  throttle: {
    linesPerSec: number | undefined;
    bytesPerSec: number | undefined;
    burstSeconds: number;
    action: 'drop' | 'pause';
  };
}

/** The record options from the agent's config values (src/config/options.ts keys). */
export function recordOptions(get: <T>(key: string) => T): RecordOptions {
  return {
    multiline: {
      default: get<string>('multiline.default'),
      rules: get<{ path: string; rule: string }[]>('multiline.rules'),
      custom: get<Record<string, { start?: string; continuation?: string }>>('multiline.custom'),
      flushMs: get<number>('multiline.flushMs'),
      maxLines: get<number>('multiline.maxLines'),
      maxBytes: get<number>('multiline.maxBytes'),
    },
    parser: get<string>('parse.parser'),
    parsers: get<{ name: string; regex: string }[]>('parsers'),
    mergeKey: get<string>('parse.mergeKey'),
    appTimestamp: get<boolean>('parse.appTimestamp'),
    filters: get<unknown>('filters'),
    maxRecordBytes: get<number | undefined>('limits.maxRecordBytes'),
    throttle: {
      linesPerSec: get<number | undefined>('throttle.linesPerSec'),
      bytesPerSec: get<number | undefined>('throttle.bytesPerSec'),
      burstSeconds: get<number>('throttle.burstSeconds'),
      action: get<'drop' | 'pause'>('throttle.action'),
    },
  };
}

/** Names the `logferry.io/parser` annotation may give that choose a file format, not a parser. */
const FORMAT_NAMES = new Set(['cri', 'docker', 'text']);
/** Keys of the document that the merge key must not replace. */
const OWN_KEYS = new Set([
  '@timestamp',
  'message',
  'stream',
  'log',
  'host',
  'kubernetes',
  'error',
  'throttled',
]);

interface Compiled {
  rules: Map<string, MultilineRule>;
  parsers: Map<string, Matcher>;
  filter: Filter | undefined;
}

/** Compiles everything, collecting every problem (one line each) rather than stopping at the first. */
function compile(opts: RecordOptions): { compiled: Compiled; problems: string[] } {
  const problems: string[] = [];
  const attempt = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
      return undefined;
    }
  };
  const rules = new Map<string, MultilineRule>();
  for (const [name, spec] of Object.entries(opts.multiline.custom)) {
    if (isMultilineRuleName(name)) {
      problems.push(`multiline.custom.${name}: '${name}' is a built-in rule; choose another name`);
      continue;
    }
    const where = `multiline.custom.${name}`;
    const start =
      spec.start === undefined ? undefined : attempt(() => compileRegex(spec.start!, `${where}.start`));
    const continuation =
      spec.continuation === undefined
        ? undefined
        : attempt(() => compileRegex(spec.continuation!, `${where}.continuation`));
    if (start !== undefined || continuation !== undefined)
      rules.set(name, customRule({ name, start, continuation }));
  }
  const knownRule = (name: string) => isMultilineRuleName(name) || Object.hasOwn(opts.multiline.custom, name);
  const ruleNames = () =>
    `none, auto, java, python, go, node, ruby, dotnet${Object.keys(opts.multiline.custom)
      .map((n) => `, ${n}`)
      .join('')}`;
  if (!knownRule(opts.multiline.default)) {
    problems.push(
      `multiline.default: unknown rule '${opts.multiline.default}'; expected one of ${ruleNames()}`,
    );
  }
  opts.multiline.rules.forEach((r, i) => {
    if (!knownRule(r.rule)) {
      problems.push(`multiline.rules[${i}].rule: unknown rule '${r.rule}'; expected one of ${ruleNames()}`);
    }
  });

  const parsers = new Map<string, Matcher>();
  for (const [i, p] of opts.parsers.entries()) {
    if (BUILTIN_PARSERS.includes(p.name) || p.name === 'none' || FORMAT_NAMES.has(p.name)) {
      problems.push(`parsers[${i}].name: '${p.name}' is a built-in name; choose another`);
      continue;
    }
    if (parsers.has(p.name)) {
      problems.push(`parsers[${i}].name: '${p.name}' is declared twice`);
      continue;
    }
    const m = attempt(() => compileParserRegex(p.name, p.regex));
    if (m !== undefined) parsers.set(p.name, m);
  }
  const knownParser = (name: string) =>
    name === 'none' || BUILTIN_PARSERS.includes(name) || parsers.has(name);
  if (!knownParser(opts.parser) && !opts.parsers.some((p) => p.name === opts.parser)) {
    problems.push(
      `parse.parser: unknown parser '${opts.parser}'; expected json, logfmt, none or a name declared under parsers`,
    );
  }
  if (OWN_KEYS.has(opts.mergeKey) || opts.mergeKey.includes('.') || opts.mergeKey === '') {
    problems.push(
      `parse.mergeKey: '${opts.mergeKey}' would collide with logferry's own fields; choose a key such as json or app`,
    );
  }

  let filter: Filter | undefined;
  const parsed = parseFilters(opts.filters);
  if (!parsed.ok) problems.push(...parsed.problems);
  else filter = attempt(() => compileFilters(parsed.value, compileRegex));

  return { compiled: { rules, parsers, filter }, problems };
}

/** Every problem of the record options, one line each (empty when they are fine). */
export function recordOptionProblems(opts: RecordOptions): string[] {
  return compile(opts).problems;
}

/** The compiled record options: what each file gets. */
export class RecordTransforms implements Transforms {
  readonly fields: { mergeKey: string; appTimestamp: boolean };
  readonly flushMs: number;
  readonly #opts: RecordOptions;
  readonly #compiled: Compiled;
  readonly #throttles: ThrottleRegistry | undefined;
  readonly #warn: (message: string) => void;
  readonly #warned = new Set<string>();

  /** Throws a UsageError naming every problem. */
  constructor(opts: RecordOptions, events: { throttle?: ThrottleEvents; warn: (message: string) => void }) {
    const { compiled, problems } = compile(opts);
    if (problems.length > 0) throw new UsageError(problems.join('\n'));
    this.#opts = opts;
    this.#compiled = compiled;
    this.#warn = events.warn;
    this.fields = { mergeKey: opts.mergeKey, appTimestamp: opts.appTimestamp };
    this.flushMs = opts.multiline.flushMs;
    const t = opts.throttle;
    this.#throttles =
      t.linesPerSec === undefined && t.bytesPerSec === undefined
        ? undefined
        : new ThrottleRegistry(
            {
              linesPerSec: t.linesPerSec,
              bytesPerSec: t.bytesPerSec,
              burstSeconds: t.burstSeconds,
              action: t.action,
            },
            { events: events.throttle },
          );
  }

  forFile(path: string, meta: TransformMeta | undefined): FileTransform {
    const rule = this.#rule(path, meta);
    const { maxLines, maxBytes } = this.#opts.multiline;
    return {
      grouper: rule === undefined ? undefined : new MultilineGrouper(rule, { maxLines, maxBytes }),
      parser: this.#parser(path, meta),
      filter: this.#compiled.filter,
      maxRecordBytes: this.#opts.maxRecordBytes,
      throttle: this.#throttles?.config.action === 'drop' ? this.#dropThrottle(path, meta) : undefined,
    };
  }

  pauseAfter(path: string, meta: TransformMeta | undefined, records: number, bytes: number): number {
    const registry = this.#throttles;
    if (registry === undefined || registry.config.action !== 'pause') return 0;
    return registry.get(containerKey(path), namespaceOf(path, meta)).afterChunk(records, bytes);
  }

  #warnOnce(key: string, message: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#warn(message);
  }

  /** The annotation, then the first matching path glob, then the default; undefined for none. */
  #rule(path: string, meta: TransformMeta | undefined): MultilineRule | undefined {
    let name = this.#opts.multiline.default;
    const rule = this.#opts.multiline.rules.find((r) => matchesGlob(path, r.path));
    if (rule !== undefined) name = rule.rule;
    const annotated = meta?.multiline;
    if (annotated !== undefined) {
      if (isMultilineRuleName(annotated) || this.#compiled.rules.has(annotated)) name = annotated;
      else {
        this.#warnOnce(
          `multiline:${annotated}`,
          `logferry.io/multiline: unknown rule '${annotated}' (on ${path}); using '${name}'`,
        );
      }
    }
    if (name === 'none') return undefined;
    return this.#compiled.rules.get(name) ?? (isMultilineRuleName(name) ? builtinRule(name) : undefined);
  }

  #parser(path: string, meta: TransformMeta | undefined): MessageParser | undefined {
    let name = this.#opts.parser;
    const annotated = meta?.parser;
    if (annotated !== undefined) {
      if (annotated === 'text') name = 'none';
      else if (FORMAT_NAMES.has(annotated)) {
        // a file format (the tail engine applies it); messages get the default parser
      } else if (
        annotated === 'none' ||
        BUILTIN_PARSERS.includes(annotated) ||
        this.#compiled.parsers.has(annotated)
      ) {
        name = annotated;
      } else {
        this.#warnOnce(
          `parser:${annotated}`,
          `logferry.io/parser: unknown parser '${annotated}' (on ${path}); using '${name}'`,
        );
      }
    }
    if (name === 'none') return undefined;
    return parserFor(name, this.#compiled.parsers, { time: this.#opts.appTimestamp });
  }

  #dropThrottle(path: string, meta: TransformMeta | undefined): DropThrottle {
    const registry = this.#throttles!;
    const key = containerKey(path);
    const namespace = namespaceOf(path, meta);
    return {
      admit: (bytes) => registry.get(key, namespace).admit(bytes),
      summary: () => {
        const s = registry.get(key, namespace).summary();
        if (s === undefined) return undefined;
        return { lines: s.lines, bytes: s.bytes, message: throttleSummaryRecord(s, registry.config).message };
      },
    };
  }
}

/** A container's files (live and rotated) share its directory: one rate limit for all of them. */
function containerKey(path: string): string {
  return dirname(path);
}

/** The file's namespace: from metadata, else from the kubelet path `<ns>_<pod>_<uid>/<container>/`. */
function namespaceOf(path: string, meta: TransformMeta | undefined): string {
  const fromMeta = meta?.fields?.['kubernetes.namespace'];
  if (fromMeta !== undefined) return fromMeta;
  const podDir = dirname(dirname(path)).split('/').at(-1) ?? '';
  const ns = podDir.split('_')[0];
  return ns === undefined || ns === '' || ns === podDir ? '' : ns;
}
