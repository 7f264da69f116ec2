// Structured parsing of a record's message (docs/parsing.md): the parsers (json, logfmt, custom
// regex parsers) and the normalisation they share, which picks the application's level, message
// and timestamp out of its fields.
import { parseJsonFields, rawJsonText } from '../parse/json-message.ts';
import { parseLogfmt } from './logfmt.ts';
import type { Matcher, MessageParser, StructuredFields } from './types.ts';

/**
 * Parser names that are built in; a custom parser may not take one of them, nor `none` (no parser,
 * which the caller handles: parserFor does not know it).
 */
export const BUILTIN_PARSERS: readonly string[] = ['json', 'logfmt'];

/** What parserFor's parsers read besides the fields' text. */
export interface ParserOptions {
  /**
   * Read the application's timestamp into `time` (default true). Off when `@timestamp` stays the
   * runtime's (parse.appTimestamp false): telling a time from its text is most of what the
   * normalisation costs.
   */
  time?: boolean | undefined;
}

/**
 * A message that is a JSON object. The object is parsed once (parse/json-message.ts: depth limit,
 * long numbers kept exactly, duplicate keys dropped, `__proto__` kept as data) and serialized once;
 * the fields are read from the parsed object.
 */
function makeJsonParser(time: boolean): MessageParser {
  return (message) => {
    const parsed = parseJsonFields(message);
    return parsed === undefined ? undefined : structured(parsed.text, parsed.object, time);
  };
}

/** A logfmt message (transform/logfmt.ts); values are strings, a bare key is `true`. */
function makeLogfmtParser(time: boolean): MessageParser {
  return (message) => {
    const fields = parseLogfmt(message);
    return fields === undefined ? undefined : structured(mapJson(fields), fields, time);
  };
}

/** The `json` parser (see makeJsonParser), with `time`. */
export const jsonParser: MessageParser = makeJsonParser(true);
const jsonParserNoTime = makeJsonParser(false);

/** The `logfmt` parser (see makeLogfmtParser), with `time`. */
export const logfmtParser: MessageParser = makeLogfmtParser(true);
const logfmtParserNoTime = makeLogfmtParser(false);

/** A Map of strings and `true` as the JSON text of an object, in the Map's order. */
function mapJson(fields: ReadonlyMap<string, string | true>): string {
  let text = '';
  for (const [key, value] of fields) {
    text += `,${jsonString(key)}:${value === true ? 'true' : jsonString(value)}`;
  }
  return text === '' ? '{}' : `{${text.slice(1)}}`;
}

/** `JSON.stringify(s)`, quoting directly the usual key or value that needs no escape. */
function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}

const regexParsers = new WeakMap<Matcher, MessageParser>();
const regexParsersNoTime = new WeakMap<Matcher, MessageParser>();

/**
 * A custom parser: the named groups of the first match become fields (string values; a group that
 * took no part in the match is left out). No match, undefined: the message stays plain text. One
 * parser per matcher (and options).
 */
export function regexParser(matcher: Matcher, options: ParserOptions = {}): MessageParser {
  const time = options.time ?? true;
  const cache = time ? regexParsers : regexParsersNoTime;
  let parser = cache.get(matcher);
  if (parser === undefined) {
    parser = (message) => {
      try {
        const groups = matcher.groups(message);
        return groups === undefined ? undefined : structured(JSON.stringify(groups), groups, time);
      } catch {
        // A user's pattern on a linear engine should not fail, but a parser never throws.
        return undefined;
      }
    };
    cache.set(matcher, parser);
  }
  return parser;
}

/**
 * The parser a name designates (config `parsers:` or the `logferry.io/parser` annotation): the
 * built-in `json` and `logfmt`, else a custom parser by its exact name; undefined for an unknown name.
 */
export function parserFor(
  name: string,
  custom: ReadonlyMap<string, Matcher>,
  options: ParserOptions = {},
): MessageParser | undefined {
  const time = options.time ?? true;
  if (name === 'json') return time ? jsonParser : jsonParserNoTime;
  if (name === 'logfmt') return time ? logfmtParser : logfmtParserNoTime;
  const matcher = custom.get(name);
  return matcher === undefined ? undefined : regexParser(matcher, options);
}

/** Parsed fields: a parsed JSON object, regex groups, or logfmt's Map. */
export type Fields = Readonly<Record<string, unknown>> | ReadonlyMap<string, unknown>;

function field(fields: Fields, key: string): unknown {
  return fields instanceof Map ? fields.get(key) : (fields as Readonly<Record<string, unknown>>)[key];
}

/** The fields' text plus what normalisation finds in them. Every parser's result has this shape. */
export function structured(text: string, fields: Fields, time = true): StructuredFields {
  return {
    text,
    level: levelOf(fields),
    message: messageOf(fields),
    time: time ? timeOf(fields) : undefined,
  };
}

// Normalisation. Each picks the first key, in the order listed, whose value is usable; keys are
// matched exactly (lower case, as loggers write them).

/** `level`, `lvl`, `severity`, `log.level` (dotted key or nested, as ECS loggers write it), `loglevel`. */
export function levelOf(fields: Fields): string | undefined {
  const log = field(fields, 'log');
  return (
    level(field(fields, 'level')) ??
    level(field(fields, 'lvl')) ??
    level(field(fields, 'severity')) ??
    level(field(fields, 'log.level')) ??
    level(
      typeof log === 'object' && log !== null ? (log as Readonly<Record<string, unknown>>).level : undefined,
    ) ??
    level(field(fields, 'loglevel'))
  );
}

/** bunyan's and pino's numeric levels */
const NUMERIC_LEVELS: ReadonlyMap<number, string> = new Map([
  [10, 'trace'],
  [20, 'debug'],
  [30, 'info'],
  [40, 'warn'],
  [50, 'error'],
  [60, 'fatal'],
]);

/** Longer strings are not levels (and would not make a good keyword). */
const MAX_LEVEL_LENGTH = 32;

/** A string of 1..32 characters, lower-cased; one of bunyan/pino's numbers; nothing else. */
function level(value: unknown): string | undefined {
  if (typeof value === 'string') {
    return value === '' || value.length > MAX_LEVEL_LENGTH ? undefined : value.toLowerCase();
  }
  if (typeof value === 'number') return NUMERIC_LEVELS.get(value);
  return undefined;
}

/** `message`, `msg`: a non-empty string. */
export function messageOf(fields: Fields): string | undefined {
  const message = field(fields, 'message');
  if (typeof message === 'string' && message !== '') return message;
  const msg = field(fields, 'msg');
  return typeof msg === 'string' && msg !== '' ? msg : undefined;
}

/** `time`, `timestamp`, `ts`, `@timestamp`: see parseTime. */
export function timeOf(fields: Fields): string | undefined {
  return (
    parseTime(field(fields, 'time')) ??
    parseTime(field(fields, 'timestamp')) ??
    parseTime(field(fields, 'ts')) ??
    parseTime(field(fields, '@timestamp'))
  );
}

/**
 * An application's timestamp as RFC 3339 text for `@timestamp` (mapped `date_nanos`), or undefined:
 * - an RFC 3339 string with an offset (`2026-11-23T12:00:00.123Z`, `...+02:00`), validated and kept;
 *   a `t` or space separator, `z`, and a `+0200` offset are normalised to `T`, `Z`, `+02:00`; at most
 *   9 fraction digits; no leap second. Without an offset (local time of who knows where) it is not a
 *   timestamp;
 * - the common log format's `10/Oct/2000:13:55:36 -0700` (nginx, Apache: what regex parsers meet);
 * - a Unix epoch number, or a string of one (logfmt and regex fields are strings), whose unit is
 *   told by its integer digits: 9-10 seconds, 12-13 milliseconds, 15-16 microseconds, 18-19
 *   nanoseconds (each from 1973 on in its unit; other lengths are not times), written with the
 *   precision it carries (ms: 3 fraction digits, `1795334400.5`: 1, ns: 9);
 * and in every case from 1970 to 2261, within what `date_nanos` holds: a time it would reject must
 * not cost the whole document.
 */
export function parseTime(value: unknown): string | undefined {
  if (typeof value === 'string') return rfc3339(value) ?? commonLogTime(value) ?? epoch(value);
  if (typeof value === 'number') return epochNumber(value);
  const raw = rawJsonText(value);
  return raw === undefined ? undefined : epoch(raw);
}

/** 2262-01-01T00:00:00Z in seconds: date_nanos ends at 2262-04-11. */
const MAX_SECONDS = 9_214_646_400;

/**
 * The unit of an epoch number by the count of its integer digits, as a power of ten of seconds
 * (-1: not a time): each unit covers 1973-2286, so no count is ambiguous.
 */
function epochScale(integerDigits: number): number {
  switch (integerDigits) {
    case 9:
    case 10:
      return 0;
    case 12:
    case 13:
      return 3;
    case 15:
    case 16:
      return 6;
    case 18:
    case 19:
      return 9;
    default:
      return -1;
  }
}

/** powers of ten by the epoch units' scales */
const SCALE_FACTOR: ReadonlyArray<number> = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/** epoch for a number, without writing integers (pino's milliseconds) out as text first */
function epochNumber(value: number): string | undefined {
  if (!Number.isSafeInteger(value)) return epoch(String(value));
  const scale = epochScale(integerDigits(value));
  if (scale < 0) return undefined;
  const factor = SCALE_FACTOR[scale]!;
  const seconds = Math.floor(value / factor);
  if (seconds >= MAX_SECONDS) return undefined;
  const iso = isoSeconds(seconds);
  return scale === 0 ? `${iso}Z` : `${iso}.${String(value - seconds * factor).padStart(scale, '0')}Z`;
}

/** the count of digits of a safe integer from 1e8 up (0 below) */
function integerDigits(value: number): number {
  if (value < 1e8) return 0;
  let digits = 9;
  for (let bound = 1e9; value >= bound; bound *= 10) digits++;
  return digits;
}

function epoch(text: string): string | undefined {
  const n = text.length;
  let dot = n;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e && dot === n && i > 0 && i < n - 1) dot = i;
    else if (c < 0x30 || c > 0x39) return undefined;
  }
  const scale = epochScale(dot);
  if (scale < 0 || text.charCodeAt(0) === 0x30) return undefined;
  const seconds = Number(text.slice(0, dot - scale));
  if (seconds >= MAX_SECONDS) return undefined;
  let fraction = text.slice(dot - scale, dot);
  if (dot < n) fraction += text.slice(dot + 1);
  if (fraction.length > 9) fraction = fraction.slice(0, 9);
  const iso = isoSeconds(seconds);
  return fraction === '' ? `${iso}Z` : `${iso}.${fraction}Z`;
}

// Consecutive lines mostly fall in the same second: formatting it once saves a Date per line.
let cachedSeconds = -1;
let cachedIso = '';

/** `YYYY-MM-DDTHH:MM:SS` of an epoch second */
function isoSeconds(seconds: number): string {
  if (seconds !== cachedSeconds) {
    cachedIso = new Date(seconds * 1000).toISOString().slice(0, 19);
    cachedSeconds = seconds;
  }
  return cachedIso;
}

/** what digits returns for a non-digit: above every bound checked */
const NOT_DIGITS = 100_000;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** RFC 3339 (see parseTime): the text as is, or with its separator, `z` or `+hhmm` offset normalised. */
function rfc3339(s: string): string | undefined {
  const n = s.length;
  if (n < 20 || n > 35) return undefined;
  const sep = s.charCodeAt(10);
  if (
    s.charCodeAt(4) !== 0x2d ||
    s.charCodeAt(7) !== 0x2d ||
    (sep !== 0x54 && sep !== 0x74 && sep !== 0x20) ||
    s.charCodeAt(13) !== 0x3a ||
    s.charCodeAt(16) !== 0x3a
  ) {
    return undefined;
  }
  let i = 19;
  if (s.charCodeAt(i) === 0x2e) {
    const from = ++i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    if (i === from || i - from > 9) return undefined;
  }
  const zone = offset(s, i);
  if (
    zone === undefined ||
    !validTime(
      digits(s, 0, 4),
      digits(s, 5, 2),
      digits(s, 8, 2),
      digits(s, 11, 2),
      digits(s, 14, 2),
      digits(s, 17, 2),
      zone.minutes,
    )
  ) {
    return undefined;
  }
  if (sep === 0x54 && zone.text === undefined) return s;
  return `${s.slice(0, 10)}T${s.slice(11, i)}${zone.text ?? s.slice(i)}`;
}

const MONTHS: ReadonlyMap<string, number> = new Map(
  ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].map((m, i) => [
    m,
    i + 1,
  ]),
);

/**
 * The common log format's time (nginx `$time_local`, Apache `%t`): `10/Oct/2000:13:55:36 -0700`,
 * as RFC 3339 (`2000-10-10T13:55:36-07:00`).
 */
function commonLogTime(s: string): string | undefined {
  if (
    s.length !== 26 ||
    s.charCodeAt(2) !== 0x2f ||
    s.charCodeAt(6) !== 0x2f ||
    s.charCodeAt(11) !== 0x3a ||
    s.charCodeAt(14) !== 0x3a ||
    s.charCodeAt(17) !== 0x3a ||
    s.charCodeAt(20) !== 0x20
  ) {
    return undefined;
  }
  const month = MONTHS.get(s.slice(3, 6));
  const zone = offset(s, 21);
  if (
    month === undefined ||
    zone === undefined ||
    !validTime(
      digits(s, 7, 4),
      month,
      digits(s, 0, 2),
      digits(s, 12, 2),
      digits(s, 15, 2),
      digits(s, 18, 2),
      zone.minutes,
    )
  ) {
    return undefined;
  }
  const m = month < 10 ? `0${month}` : String(month);
  return `${s.slice(7, 11)}-${m}-${s.slice(0, 2)}T${s.slice(12, 20)}${zone.text ?? s.slice(21)}`;
}

interface Offset {
  /** east of UTC */
  minutes: number;
  /** the offset as RFC 3339 writes it, when the source wrote it otherwise */
  text: string | undefined;
}

const UTC: Offset = { minutes: 0, text: undefined };
const UTC_LOWER: Offset = { minutes: 0, text: 'Z' };

/** The offset that ends `s` at `at`: `Z`, `z`, `+hh:mm` or `+hhmm`; undefined for anything else. */
function offset(s: string, at: number): Offset | undefined {
  const c = s.charCodeAt(at);
  const rest = s.length - at;
  if (c === 0x5a || c === 0x7a) return rest === 1 ? (c === 0x5a ? UTC : UTC_LOWER) : undefined;
  if (c !== 0x2b && c !== 0x2d) return undefined;
  const colon = rest === 6 && s.charCodeAt(at + 3) === 0x3a;
  if (!colon && rest !== 5) return undefined;
  const hours = digits(s, at + 1, 2);
  const minutes = digits(s, colon ? at + 4 : at + 3, 2);
  if (hours > 23 || minutes > 59) return undefined;
  return {
    minutes: (c === 0x2b ? 1 : -1) * (hours * 60 + minutes),
    text: colon ? undefined : `${s.slice(at, at + 3)}:${s.slice(at + 3)}`,
  };
}

/** Whether the fields make a real time within date_nanos' range (1970..2262). */
function validTime(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  offsetMinutes: number,
): boolean {
  if (
    year < 1970 ||
    year > 2261 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysIn(year, month) ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    return false;
  }
  // An offset moves a time by less than a day: only the first and the last year need the sum.
  if (year === 1970 || year === 2261) {
    const ms = Date.UTC(year, month - 1, day, hour, minute, second) - offsetMinutes * 60_000;
    return ms >= 0 && ms < MAX_SECONDS * 1000;
  }
  return true;
}

/** The `count` digits at `at` as a number, or NOT_DIGITS. */
function digits(s: string, at: number, count: number): number {
  let v = 0;
  for (let i = at; i < at + count; i++) {
    const c = s.charCodeAt(i);
    if (!isDigit(c)) return NOT_DIGITS;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function daysIn(year: number, month: number): number {
  if (month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) return 29;
  return DAYS_IN_MONTH[month - 1]!;
}
