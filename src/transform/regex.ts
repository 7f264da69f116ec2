// User-supplied regular expressions (custom parsers, filters) run on re2js, a port of RE2: matching
// is linear in the input (automata, no backtracking), so no pattern a user writes can make the
// agent spin on a line. The price is RE2's syntax: no lookaround, no backreferences.
import { RE2JS } from 're2js';
import { UsageError } from '../errors.ts';
import type { Matcher } from './types.ts';

/**
 * Longest message `groups` is run on, in UTF-16 code units; a longer one does not match. Linear is
 * not free: extracting groups runs RE2's NFA at up to ~0.5 µs per character (re2js, one core,
 * `.*`-heavy patterns; an nginx pattern on a 105-character line takes ~11 µs), so a 256 KiB line
 * could hold its file for ~120 ms per pattern; 32 Ki characters bounds that at ~16 ms. Access-log
 * lines, what regex parsers are for, are far shorter. `test` needs no cap: it runs on RE2's DFA at
 * ~10 ns per character (~3 ms for a 256 KiB line).
 */
export const MAX_REGEX_INPUT = 32 * 1024;

/**
 * Largest compiled program accepted (RE2's own measure of a pattern's cost; `\S+ \[(?P<t>[^\]]+)\]`
 * is 11, a whole nginx access-log pattern 64). Matching memory and time per
 * character grow with it.
 */
export const MAX_REGEX_PROGRAM_SIZE = 20_000;

const HINT = 'RE2 syntax, no lookaround or backreferences';

/**
 * Compiles `pattern` (RE2 syntax; named groups as `(?P<name>...)` or `(?<name>...)`). `what` names
 * the pattern's owner for the error, e.g. `parser "nginx"`. Throws a UsageError with one line:
 * `parser "nginx": invalid regex: missing closing ): ...; RE2 syntax, no lookaround or backreferences`.
 * `groups` gives nothing for a message longer than `maxInput` (see MAX_REGEX_INPUT).
 */
export function compileRegex(pattern: string, what: string, maxInput = MAX_REGEX_INPUT): Matcher {
  return compile(pattern, what, maxInput);
}

function compile(pattern: string, what: string, maxInput: number): Re2Matcher {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    throw new UsageError(`${what}: invalid regex: ${oneLine(reason(err))}; ${HINT}`, { cause: err });
  }
  const size = re.programSize();
  if (size > MAX_REGEX_PROGRAM_SIZE) {
    throw new UsageError(
      `${what}: regex too large (program size ${size}, at most ${MAX_REGEX_PROGRAM_SIZE}); simplify it`,
    );
  }
  return new Re2Matcher(re, maxInput);
}

/**
 * A custom parser's pattern: as compileRegex, and it must have at least one named group (the
 * groups are the parser's fields).
 */
export function compileParserRegex(name: string, pattern: string, maxInput = MAX_REGEX_INPUT): Matcher {
  const what = `parser ${JSON.stringify(name)}`;
  const matcher = compile(pattern, what, maxInput);
  if (matcher.names.length === 0) {
    throw new UsageError(`${what}: the regex has no named groups; name the fields as (?P<name>...)`);
  }
  return matcher;
}

class Re2Matcher implements Matcher {
  readonly #re: RE2JS;
  readonly #maxInput: number;
  /** the named groups, in pattern order */
  readonly names: readonly string[];

  constructor(re: RE2JS, maxInput: number) {
    this.#re = re;
    this.#maxInput = maxInput;
    this.names = Object.keys(re.namedGroups());
  }

  test(text: string): boolean {
    return this.#re.test(text);
  }

  /**
   * The named groups of the first match (unanchored: anchor with `^`/`$`); groups that took no part
   * in the match are left out. A null-prototype object, so a group named `__proto__` is plain data.
   */
  groups(text: string): Record<string, string> | undefined {
    if (text.length > this.#maxInput) return undefined;
    const m = this.#re.matcher(text);
    if (!m.find()) return undefined;
    const out: Record<string, string> = Object.create(null);
    for (const name of this.names) {
      const value = m.group(name);
      if (value !== null) out[name] = value;
    }
    return out;
  }
}

function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^error parsing regexp: /, '');
}

function oneLine(text: string): string {
  return text.replace(/\r?\n|\r/g, '\\n');
}
