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

type RawJson = (text: string) => unknown;
// Typed here because lib es2023 does not declare it; present since Node 21 (V8 11.4).
const rawJson = (JSON as unknown as { rawJSON?: RawJson }).rawJSON;

/**
 * The message as the JSON text of an object, ready to embed as a field value, or undefined when
 * the message is not a JSON object. Parsing and serializing again (rather than validating and
 * copying) is what drops duplicate keys, which Elasticsearch rejects. `__proto__` keys are safe:
 * JSON.parse defines them as own properties and never sets a prototype. Never throws.
 */
export function jsonObjectText(message: string): string | undefined {
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
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

function keepNumberText(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== 'number' || context?.source === undefined) return value;
  const source = context.source;
  return source.length > MAX_EXACT_DIGITS || source.includes('e') || source.includes('E')
    ? rawJson!(source)
    : value;
}

/**
 * One pass over the text outside strings (string bodies are skipped with indexOf, in native
 * code): rejects nesting deeper than MAX_JSON_DEPTH before JSON.parse spends time on it, and
 * notes numbers a double would not keep. It assumes well-formed JSON; whatever it misjudges in
 * malformed text, JSON.parse rejects afterwards.
 */
function scanStructure(text: string, start: number, end: number): number {
  let depth = 0;
  let result = PLAIN;
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
    } else if ((c >= 0x30 && c <= 0x39) || c === 0x2d) {
      let digits = 0;
      for (; i < end; i++) {
        const d = text.charCodeAt(i);
        if (d >= 0x30 && d <= 0x39) digits++;
        else if (d === 0x65 || d === 0x45) result = KEEP_NUMBER_TEXT;
        else if (d !== 0x2e && d !== 0x2d && d !== 0x2b) break;
      }
      if (digits > MAX_EXACT_DIGITS) result = KEEP_NUMBER_TEXT;
    } else {
      i++;
    }
  }
  return result;
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
