import type { Format } from '../pipeline/types.ts';
import { parseCri } from './cri.ts';
import { isJsonSpace, parseDocker } from './docker-json.ts';
import { parseJsonLine, parseText } from './plain.ts';
import type { LineParser } from './types.ts';

/** The format of a file, judged from its first line (`end` excludes the '\n'). */
export function detectFormat(buf: Buffer, start: number, end: number): Format {
  if (parseCri(buf, start, end).error === undefined) return 'cri';
  let i = start;
  while (i < end && isJsonSpace(buf[i]!)) i++;
  if (i === end || buf[i] !== 0x7b) return 'text';
  if (parseDocker(buf, start, end).error === undefined) return 'docker';
  try {
    const value: unknown = JSON.parse(buf.toString('utf8', start, end));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return 'json';
  } catch {
    // not JSON: read as text
  }
  return 'text';
}

export function parserFor(format: Format): LineParser {
  switch (format) {
    case 'cri':
      return parseCri;
    case 'docker':
      return parseDocker;
    case 'json':
      return parseJsonLine;
    case 'text':
      return parseText;
  }
}
