/**
 * Deeper objects are kept as plain text. Elasticsearch maps every nested object as a field path,
 * and a log line nested this deep is far more likely an attack or a bug than a structure worth
 * indexing.
 */
export const MAX_JSON_DEPTH = 64;

// A double holds every 15-digit decimal exactly; longer numbers (64-bit ids, nanosecond clocks)
// and exponents (1e400 would become null) are written back from their source text instead.
const MAX_EXACT_DIGITS = 15;

const PLAIN = 0;
const TOO_DEEP = 1;
const KEEP_NUMBER_TEXT = 2;

// scanStructure's findings, as bits
/** a number a double may not keep: more than MAX_EXACT_DIGITS digits, or an exponent */
const LONG_NUMBER = 1;
/** a number keepNumberText would keep as text whose double prints differently */
const TEXT_DIFFERS = 2;

type RawJson = (text: string) => unknown;
// Typed here because lib es2023 does not declare it; present since Node 21 (V8 11.4).
const rawJson = (JSON as unknown as { rawJSON?: RawJson }).rawJSON;
const isRawJson = (JSON as unknown as { isRawJSON?: (value: unknown) => boolean }).isRawJSON;

/**
 * The message as the JSON text of an object, ready to embed as a field value, or undefined when
 * the message is not a JSON object. Parsing and serializing again (rather than validating and
 * copying) is what drops duplicate keys, which Elasticsearch rejects. `__proto__` keys are safe:
 * JSON.parse defines them as own properties and never sets a prototype. Never throws.
 */
export function jsonObjectText(message: string): string | undefined {
  return parseJsonFields(message)?.text;
}

/**
 * The message parsed as a JSON object (see parseJsonObject) and its JSON text for the document.
 * The text is the message itself when that is already what `JSON.stringify` would give in
 * substance: one line, and no duplicate key (as many keys in the parsed object as `:` outside
 * strings in the text). Only then is serializing again skipped, which is most of the cost of a JSON
 * log line after parsing it; a duplicate key (Elasticsearch rejects those) or a line break inside
 * the object (it would break NDJSON) takes the `JSON.stringify` path.
 */
export function parseJsonFields(
  message: string,
): { object: Record<string, unknown>; text: string } | undefined {
  const object = parseJsonObject(message);
  if (object === undefined) return undefined;
  const keys = scannedKeys;
  const reusable = message.indexOf('\n') === -1 && message.indexOf('\r') === -1 && countKeys(object) === keys;
  return { object, text: reusable ? message.trim() : JSON.stringify(object) };
}

/** Keys of every object in a parsed JSON value (numbers kept as JSON.rawJSON are values, not objects). */
function countKeys(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  if (Array.isArray(value)) {
    let n = 0;
    for (const v of value) if (typeof v === 'object') n += countKeys(v);
    return n;
  }
  if (isRawJson?.(value) === true) return 0;
  let n = 0;
  for (const k in value) {
    n++;
    const v = (value as Record<string, unknown>)[k];
    if (typeof v === 'object') n += countKeys(v);
  }
  return n;
}

/** `:` outside strings in the text scanStructure last looked at: its keys, duplicates included. */
let scannedKeys = 0;

/**
 * The message parsed as a JSON object, or undefined when it is not one (or nests deeper than
 * MAX_JSON_DEPTH). `JSON.stringify` of the result is jsonObjectText's text, so a caller that also
 * reads fields from the object (transform/structured.ts) parses once. Numbers a double would not
 * keep are `JSON.rawJSON` values (see rawJsonText). Never throws.
 */
export function parseJsonObject(message: string): Record<string, unknown> | undefined {
  const n = message.length;
  let s = 0;
  while (s < n && isJsonSpace(message.charCodeAt(s))) s++;
  // Plain text stops here, for the price of a few character reads.
  if (s === n || message.charCodeAt(s) !== 0x7b) return undefined;
  let e = n - 1;
  while (isJsonSpace(message.charCodeAt(e))) e--;
  if (message.charCodeAt(e) !== 0x7d) return undefined;

  const scan = scanStructure(message, s, e + 1);
  if (scan === TOO_DEEP) return undefined;
  try {
    const value: unknown =
      scan === KEEP_NUMBER_TEXT && rawJson !== undefined
        ? JSON.parse(message, keepNumberText)
        : JSON.parse(message);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    return value as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The source text of a number parseJsonObject kept as `JSON.rawJSON`, or undefined for any other value. */
export function rawJsonText(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null && isRawJson?.(value) === true
    ? (value as { rawJSON: string }).rawJSON
    : undefined;
}

function keepNumberText(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== 'number' || context?.source === undefined) return value;
  const source = context.source;
  return keepsText(source.length, source.includes('e') || source.includes('E')) ? rawJson!(source) : value;
}

/** Whether keepNumberText writes a number back from its source text (`length` chars, `exponent` seen). */
function keepsText(length: number, exponent: boolean): boolean {
  return length > MAX_EXACT_DIGITS || exponent;
}

/**
 * One pass over the text outside strings (string bodies are skipped with indexOf, in native
 * code): rejects nesting deeper than MAX_JSON_DEPTH before JSON.parse spends time on it, and
 * notes numbers a double would not keep. It assumes well-formed JSON; whatever it misjudges in
 * malformed text, JSON.parse rejects afterwards.
 *
 * A long number alone does not call for the number-keeping parse: when the number prints back as
 * its own text (`String(Number(text)) === text`, as zap's `"ts":1795334400.1234567` does), the
 * plain parse writes the very same bytes. The slow parse is taken only when both hold: a long
 * number is present (what decides the path today), and some number it would keep as text prints
 * differently as a double (what would make the two outputs differ).
 */
function scanStructure(text: string, start: number, end: number): number {
  let depth = 0;
  let found = 0;
  let keys = 0;
  scannedKeys = -1;
  let i = start;
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let q = text.indexOf('"', i + 1);
      while (q !== -1 && isEscaped(text, q)) q = text.indexOf('"', q + 1);
      if (q === -1) return PLAIN;
      i = q + 1;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_JSON_DEPTH) return TOO_DEEP;
      i++;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
      i++;
    } else if (c === 0x3a) {
      keys++;
      i++;
    } else if ((c >= 0x30 && c <= 0x39) || c === 0x2d) {
      const from = i;
      let digits = 0;
      let exponent = false;
      for (; i < end; i++) {
        const d = text.charCodeAt(i);
        if (d >= 0x30 && d <= 0x39) digits++;
        else if (d === 0x65 || d === 0x45) exponent = true;
        else if (d !== 0x2e && d !== 0x2d && d !== 0x2b) break;
      }
      if (digits > MAX_EXACT_DIGITS || exponent) found |= LONG_NUMBER;
      if ((found & TEXT_DIFFERS) === 0 && keepsText(i - from, exponent)) {
        const source = text.slice(from, i);
        if (String(Number(source)) !== source) found |= TEXT_DIFFERS;
      }
    } else {
      i++;
    }
  }
  scannedKeys = keys;
  return found === (LONG_NUMBER | TEXT_DIFFERS) ? KEEP_NUMBER_TEXT : PLAIN;
}

/** Whether the quote at `q` is preceded by an odd run of backslashes. */
function isEscaped(text: string, q: number): boolean {
  let b = q - 1;
  while (text.charCodeAt(b) === 0x5c) b--;
  return (q - b) % 2 === 0;
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
