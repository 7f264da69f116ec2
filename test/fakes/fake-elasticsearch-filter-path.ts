// The `filter_path` response filter: comma-separated dotted paths, `*` inside a segment, `**` for any depth, a
// leading `-` to exclude. Arrays are transparent and emptied objects and arrays disappear, so
// `filter_path=errors,items.*.error` on a clean bulk answers `{"errors":false}` exactly as Elasticsearch does.

import { isPlainObject } from './fake-elasticsearch-mapping.ts';

type Pattern = string[];

export function applyFilterPath(body: unknown, filterPath: string): unknown {
  const includes: Pattern[] = [];
  const excludes: Pattern[] = [];
  for (const raw of filterPath.split(',')) {
    const filter = raw.trim();
    if (filter === '') continue;
    if (filter.startsWith('-')) excludes.push(filter.slice(1).split('.'));
    else includes.push(filter.split('.'));
  }
  let out = includes.length > 0 ? (include(body, includes) ?? {}) : body;
  if (excludes.length > 0) out = exclude(out, excludes) ?? {};
  return out;
}

function segmentMatches(pattern: string, key: string): boolean {
  if (pattern === '*') return true;
  if (!pattern.includes('*')) return pattern === key;
  const regex = new RegExp(`^${pattern.split('*').map(escapeRegex).join('.*')}$`);
  return regex.test(key);
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// For one key, which patterns still apply below it, and whether some pattern ends exactly here.
function step(patterns: Pattern[], key: string): { whole: boolean; below: Pattern[] } {
  let whole = false;
  const below: Pattern[] = [];
  for (const pattern of patterns) {
    const [head, ...rest] = pattern;
    if (head === undefined) continue;
    if (head === '**') {
      if (rest.length === 0) {
        whole = true;
        continue;
      }
      below.push(pattern);
      const inner = step([rest], key);
      whole ||= inner.whole;
      below.push(...inner.below);
      continue;
    }
    if (!segmentMatches(head, key)) continue;
    if (rest.length === 0) whole = true;
    else below.push(rest);
  }
  return { whole, below };
}

function include(node: unknown, patterns: Pattern[]): unknown {
  if (Array.isArray(node)) {
    const kept = node.map((element) => include(element, patterns)).filter((v) => v !== undefined);
    return kept.length > 0 ? kept : undefined;
  }
  if (!isPlainObject(node)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    const { whole, below } = step(patterns, key);
    if (whole) {
      out[key] = value;
      continue;
    }
    if (below.length === 0) continue;
    const kept = include(value, below);
    if (kept !== undefined) out[key] = kept;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function exclude(node: unknown, patterns: Pattern[]): unknown {
  if (Array.isArray(node)) {
    const kept = node.map((element) => exclude(element, patterns)).filter((v) => v !== undefined);
    return kept.length > 0 ? kept : undefined;
  }
  if (!isPlainObject(node)) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    const { whole, below } = step(patterns, key);
    if (whole) continue;
    if (below.length === 0) {
      out[key] = value;
      continue;
    }
    const kept = exclude(value, below);
    if (kept !== undefined) out[key] = kept;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
