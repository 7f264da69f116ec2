import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { describeError, errorStatus } from '../../../src/enrich/list-watch.ts';

const unauthorized = new ApiException(
  401,
  'Unknown API Status Code!',
  '{"kind":"Status","message":"Unauthorized","code":401}',
  {},
);
const watchError = Object.assign(new Error('Gone'), { statusCode: 410 });
const refused = new TypeError('fetch failed', {
  cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
});

describe('errorStatus', () => {
  it.each<[string, unknown, number | undefined]>([
    ['ApiException', unauthorized, 401],
    ['watch error', watchError, 410],
    ['Status object', { kind: 'Status', code: 410 }, 410],
    ['network error', refused, undefined],
    ['not an object', 'boom', undefined],
  ])('%s', (_name, err, expected) => {
    expect(errorStatus(err)).toBe(expected);
  });
});

describe('describeError', () => {
  it.each<[string, unknown, string]>([
    ['ApiException: the Status message, not the header dump', unauthorized, 'HTTP 401: Unauthorized'],
    ['watch error', watchError, 'HTTP 410: Gone'],
    ['network error with its cause', refused, 'fetch failed (connect ECONNREFUSED 127.0.0.1:1)'],
    ['a string', 'boom', 'boom'],
  ])('%s', (_name, err, expected) => {
    expect(describeError(err)).toBe(expected);
  });
});
