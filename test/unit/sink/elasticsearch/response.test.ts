import { describe, expect, it } from 'vitest';
import { redactCredentials } from '../../../../src/errors.ts';
import { backoffMs } from '../../../../src/sink/elasticsearch/backoff.ts';
import { bulkItems, classifyItem, classifyRequest } from '../../../../src/sink/elasticsearch/response.ts';

describe('classifyItem', () => {
  it.each([
    [200, 'ok'],
    [201, 'ok'],
    [409, 'duplicate'],
    [429, 'retry'],
    [500, 'retry'],
    [503, 'retry'],
    [400, 'dead-letter'],
    [404, 'dead-letter'],
  ])('%i -> %s', (status, outcome) => {
    expect(classifyItem(status)).toBe(outcome);
  });
});

describe('classifyRequest', () => {
  it.each([
    [undefined, 'retry'],
    [429, 'retry'],
    [502, 'retry'],
    [503, 'retry'],
    [413, 'split'],
    [400, 'split'],
    [401, 'auth'],
    [403, 'auth'],
    [404, 'retry'],
  ])('%s -> %s', (status, outcome) => {
    expect(classifyRequest(status)).toBe(outcome);
  });
});

describe('bulkItems', () => {
  it('reads statuses and errors of create items', () => {
    const body = {
      errors: true,
      items: [
        { create: { status: 201 } },
        { create: { status: 409, error: { type: 'version_conflict_engine_exception', reason: 'exists' } } },
      ],
    };
    expect(bulkItems(body, 2)).toEqual([
      { status: 201, error: undefined },
      { status: 409, error: { type: 'version_conflict_engine_exception', reason: 'exists' } },
    ]);
  });

  it.each([
    [null, 1],
    [{ items: [] }, 1],
    [{ items: [{ create: {} }] }, 1],
    ['oops', 1],
  ])('refuses a response that does not account for every item: %j', (body, n) => {
    expect(bulkItems(body, n)).toBeUndefined();
  });
});

describe('backoffMs (full jitter)', () => {
  it.each([
    [0, 0.999, 99],
    [3, 0.999, 799],
    [20, 0.999, 29_970],
    [5, 0, 0],
  ])('attempt %i, random %f -> %i', (attempt, r, expected) => {
    expect(backoffMs(attempt, 100, 30_000, () => r)).toBe(expected);
  });
});

describe('redactCredentials', () => {
  it.each([
    [
      'connect ECONNREFUSED http://elastic:pw@127.0.0.1:9200/_bulk',
      'connect ECONNREFUSED http://***@127.0.0.1:9200/_bulk',
    ],
    ['https://user@es.example.com and http://a:b@c', 'https://***@es.example.com and http://***@c'],
    ['no url here', 'no url here'],
  ])('%s', (text, expected) => {
    expect(redactCredentials(text)).toBe(expected);
  });
});
