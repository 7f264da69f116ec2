import { describe, expect, it } from 'vitest';
import type { SourceFile } from '../../../../src/pipeline/types.ts';
import {
  actionLine,
  deadLetterDocument,
  documentId,
  IndexTemplate,
} from '../../../../src/sink/elasticsearch/encode.ts';
import { indexPattern, templateBody, templateName } from '../../../../src/sink/elasticsearch/templates.ts';

const file = (fields?: Record<string, string>): SourceFile => ({
  key: '1:2',
  path: '/var/log/pods/shop_cart-0_uid/cart/0.log',
  identity: { dev: 1, ino: 2, id: 'abc123' },
  fields,
});

describe('documentId', () => {
  it('is the file id and the offset: stable across re-sends, distinct per record', () => {
    expect(documentId(file(), 0)).toBe('abc123-0');
    expect(documentId(file(), 4096)).toBe('abc123-4096');
  });
});

describe('IndexTemplate', () => {
  it.each([
    ['logs-logferry-default', {}, '2026-11-22T01:02:03Z', 'logs-logferry-default'],
    [
      'logs-{kubernetes.namespace}-default',
      { 'kubernetes.namespace': 'Shop' },
      '2026-11-22T01:02:03Z',
      'logs-shop-default',
    ],
    ['logs-{kubernetes.namespace}-default', {}, '2026-11-22T01:02:03Z', 'logs-unknown-default'],
    ['logs-app-{yyyy.MM.dd}', {}, '2026-11-22T23:59:59.999999999Z', 'logs-app-2026.11.22'],
    ['logs-app-{yyyy.MM.dd}', {}, '2026-11-22T23:30:00+02:00', 'logs-app-2026.11.22'],
    ['logs-app-{yyyy-MM-dd-HH}', {}, '2026-01-02T03:04:05Z', 'logs-app-2026-01-02-03'],
    [
      'x-{kubernetes.labels.app}',
      { 'kubernetes.labels.app': 'a b/c#d' },
      '2026-11-22T01:02:03Z',
      'x-a_b_c_d',
    ],
  ])('%s with %j at %s -> %s', (template, fields, ts, expected) => {
    expect(new IndexTemplate(template).resolve(file(fields), ts)).toBe(expected);
  });

  it('knows when a name depends only on the file', () => {
    expect(new IndexTemplate('logs-{kubernetes.namespace}').perFile).toBe(true);
    expect(new IndexTemplate('logs-{yyyy.MM}').perFile).toBe(false);
  });

  it.each([['Logs'], ['logs-{'], ['logs-{}'], ['logs-{a b}'], ['-logs'], ['lo gs']])(
    'refuses %s',
    (template) => {
      expect(() => new IndexTemplate(template)).toThrow(/index/);
    },
  );
});

describe('actionLine', () => {
  it('writes create with and without an id', () => {
    expect(actionLine('logs-a', 'id-1')).toBe('{"create":{"_index":"logs-a","_id":"id-1"}}\n');
    expect(actionLine('logs-a', undefined)).toBe('{"create":{"_index":"logs-a"}}\n');
    expect(actionLine('logs-dlq', 'id-1', true)).toBe(
      '{"create":{"_index":"logs-dlq","_id":"id-1","pipeline":"_none"}}\n',
    );
  });
});

describe('deadLetterDocument', () => {
  it('keeps the original document as a string with the error', () => {
    const original = '{"@timestamp":"2026-11-22T01:02:03Z","json":{"a":{"b":1}}}';
    const dlq = JSON.parse(
      deadLetterDocument(
        original,
        'logs-a',
        400,
        { type: 'document_parsing_exception', reason: 'failed to parse field [json.a]' },
        new Date('2026-11-22T05:00:00Z'),
      ),
    );
    expect(dlq).toEqual({
      '@timestamp': '2026-11-22T05:00:00.000Z',
      message: original,
      error: { type: 'document_parsing_exception', message: 'failed to parse field [json.a]', status: 400 },
      logferry: { dlq: { index: 'logs-a', truncated: false } },
    });
  });
});

describe('index templates', () => {
  it.each([
    ['logs-logferry-default', 'logs-logferry-default'],
    ['logs-{kubernetes.namespace}-{yyyy.MM.dd}', 'logs-*-*'],
  ])('%s is installed for the pattern %s', (template, pattern) => {
    expect(indexPattern(template)).toBe(pattern);
    expect(templateBody(pattern, true)).toMatchObject({ index_patterns: [pattern], data_stream: {} });
    expect(templateBody(pattern, false)).not.toHaveProperty('data_stream');
    expect(templateName(pattern)).toMatch(/^logferry-[0-9a-f]{12}$/);
  });
});
