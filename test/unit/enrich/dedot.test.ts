import { describe, expect, it } from 'vitest';
import { dedotKey, dedotRecord } from '../../../src/enrich/dedot.ts';

describe('dedotKey', () => {
  it.each([
    ['app', 'app'],
    ['app.kubernetes.io/name', 'app_kubernetes_io/name'],
    ['a.b.c', 'a_b_c'],
    ['pod-template-hash', 'pod-template-hash'],
    ['', ''],
  ])('%s -> %s', (key, expected) => {
    expect(dedotKey(key)).toBe(expected);
  });
});

describe('dedotRecord', () => {
  it.each<[string, Record<string, string>, boolean, Record<string, string>]>([
    [
      'app and app.kubernetes.io/name stay apart',
      { 'app.kubernetes.io/name': 'web', app: 'web-1' },
      true,
      { app: 'web-1', 'app_kubernetes_io/name': 'web' },
    ],
    [
      'a key already free of dots wins a collision',
      { 'a.b': 'dotted', a_b: 'plain' },
      true,
      { a_b: 'plain' },
    ],
    ['else the first in sort order', { 'a.b_c': 'first', 'a_b.c': 'second' }, true, { a_b_c: 'first' }],
    [
      'off: keys as they are',
      { 'app.kubernetes.io/name': 'web', app: 'x' },
      false,
      { app: 'x', 'app.kubernetes.io/name': 'web' },
    ],
    ['empty', {}, true, {}],
  ])('%s', (_name, input, dedot, expected) => {
    const out = dedotRecord(input, dedot);
    expect({ ...out }).toEqual(expected);
    expect(Object.keys(out)).toEqual(Object.keys(expected).sort());
  });

  it('cannot be steered into Object.prototype', () => {
    const input = JSON.parse('{"__proto__":"x","constructor":"y"}') as Record<string, string>;
    const out = dedotRecord(input);
    expect(Object.getPrototypeOf(out)).toBeNull();
    expect(JSON.stringify(out)).toBe('{"__proto__":"x","constructor":"y"}');
  });
});
