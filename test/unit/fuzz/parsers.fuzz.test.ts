import { Buffer, isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCri } from '../../../src/parse/cri.ts';
import { detectFormat } from '../../../src/parse/detect.ts';
import { parseDocker } from '../../../src/parse/docker-json.ts';
import { jsonObjectText, MAX_JSON_DEPTH } from '../../../src/parse/json-message.ts';
import { parseJsonLine, parseText } from '../../../src/parse/plain.ts';
import type { LineParser } from '../../../src/parse/types.ts';
import { criBytes, criLine, dockerLine, jsonLine, nastyBytes } from './arbitraries.ts';

const RUNS = { numRuns: 200 };
const TIME_CHARS = /^[0-9\-:.+TtZz]+$/;

/** A line between neighbours, as in a read buffer: a parser that reads outside [start, end) shows. */
const framedLine = fc
  .tuple(nastyBytes(8), fc.oneof(nastyBytes(80), criLine.map(criBytes), dockerLine, jsonLine), nastyBytes(8))
  .map(([before, line, after]) => {
    const body = line.at(-1) === 10 ? line.subarray(0, -1) : line;
    return {
      buf: Buffer.concat([before, body, after]),
      start: before.length,
      end: before.length + body.length,
    };
  });

describe.each<[string, LineParser]>([
  ['parseCri', parseCri],
  ['parseDocker', parseDocker],
  ['parseText', parseText],
  ['parseJsonLine', parseJsonLine],
])('%s on any bytes', (_, parse) => {
  it('never throws, and returns a line that is either parsed or an error, within its range', () => {
    fc.assert(
      fc.property(framedLine, ({ buf, start, end }) => {
        const line = parse(buf, start, end);
        expect(typeof line.message).toBe('string');
        expect(typeof line.invalidUtf8).toBe('boolean');
        if (line.error !== undefined) {
          // malformed: the whole raw line is the message, with no stream, time or range
          expect(line.message).toBe(buf.toString('utf8', start, end));
          expect([line.time, line.stream, line.partial, line.messageStart]).toEqual([
            undefined,
            undefined,
            false,
            -1,
          ]);
          return;
        }
        expect([undefined, 'stdout', 'stderr']).toContain(line.stream);
        if (line.messageStart >= 0) {
          expect(line.messageStart).toBeGreaterThanOrEqual(start);
          expect(line.messageEnd).toBeLessThanOrEqual(end);
          expect(line.messageStart).toBeLessThanOrEqual(line.messageEnd);
          expect(line.message).toBe(buf.toString('utf8', line.messageStart, line.messageEnd));
          expect(line.invalidUtf8).toBe(!isUtf8(buf.subarray(line.messageStart, line.messageEnd)));
        }
      }),
      RUNS,
    );
  });
});

describe('parseCri', () => {
  it('keeps only RFC 3339 characters in time, so it embeds in JSON without escaping', () => {
    fc.assert(
      fc.property(framedLine, ({ buf, start, end }) => {
        const line = parseCri(buf, start, end);
        if (line.error === undefined) {
          expect(line.time).toMatch(TIME_CHARS);
          expect(JSON.stringify(line.time)).toBe(`"${line.time}"`);
        }
      }),
      RUNS,
    );
  });

  it('parses every well-formed line back to its parts', () => {
    fc.assert(
      fc.property(criLine, (l) => {
        const bytes = criBytes(l);
        const line = parseCri(bytes, 0, bytes.length - 1);
        expect(line.error).toBeUndefined();
        expect([line.time, line.stream, line.partial]).toEqual([l.time, l.stream, l.partial]);
        expect(bytes.subarray(line.messageStart, line.messageEnd).equals(l.message)).toBe(true);
      }),
      RUNS,
    );
  });
});

describe('detectFormat', () => {
  it('never throws and names a known format', () => {
    fc.assert(
      fc.property(framedLine, ({ buf, start, end }) => {
        expect(['cri', 'docker', 'json', 'text']).toContain(detectFormat(buf, start, end));
      }),
      RUNS,
    );
  });
});

describe('jsonObjectText', () => {
  it('never throws; what it returns is the JSON text of an object', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          fc.json(),
          nastyBytes(60).map((b) => b.toString('utf8')),
        ),
        (message) => {
          const text = jsonObjectText(message);
          if (text === undefined) return;
          const value: unknown = JSON.parse(text);
          expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it('gives back every object of depth up to MAX_JSON_DEPTH, equal after parsing', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })), (obj) => {
        const text = jsonObjectText(JSON.stringify(obj));
        expect(text).toBeDefined();
        expect(JSON.parse(text!)).toEqual(JSON.parse(JSON.stringify(obj)));
      }),
      RUNS,
    );
  });

  it('keeps objects nested deeper than MAX_JSON_DEPTH as text, and accepts exactly MAX_JSON_DEPTH', () => {
    const nested = (n: number) => `${'{"a":'.repeat(n - 1)}{}${'}'.repeat(n - 1)}`;
    expect(jsonObjectText(nested(MAX_JSON_DEPTH))).toBe(nested(MAX_JSON_DEPTH));
    expect(jsonObjectText(nested(MAX_JSON_DEPTH + 1))).toBeUndefined();
  });
});
