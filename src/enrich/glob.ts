/**
 * Glob patterns for Kubernetes names and label/annotation keys: `*` matches any run of characters (including
 * '/', which in `example.com/team` is part of a key, not a path separator), `?` matches one character, and
 * everything else matches itself. No brackets or braces: names are DNS-1123, and a list of patterns already gives
 * alternatives. Chosen over node:path matchesGlob because that one treats '/' as a path separator.
 */
export type GlobMatcher = (name: string) => boolean;

const NONE: GlobMatcher = () => false;

/** One matcher for a list of patterns (matches if any pattern does); an empty list matches nothing. */
export function compileGlobs(patterns: readonly string[]): GlobMatcher {
  if (patterns.length === 0) return NONE;
  const exact = new Set<string>();
  const sources: string[] = [];
  for (const pattern of patterns) {
    if (!/[*?]/.test(pattern)) {
      exact.add(pattern);
      continue;
    }
    let source = '';
    for (const ch of pattern) {
      if (ch === '*') source += '.*';
      else if (ch === '?') source += '.';
      else source += ch.replace(/[\\^$.|+()[\]{}/-]/g, '\\$&');
    }
    sources.push(source);
  }
  const re = sources.length === 0 ? undefined : new RegExp(`^(?:${sources.join('|')})$`, 's');
  return (name) => exact.has(name) || re?.test(name) === true;
}
