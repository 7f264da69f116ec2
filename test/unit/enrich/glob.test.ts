import { describe, expect, it } from 'vitest';
import { compileGlobs } from '../../../src/enrich/glob.ts';

describe('compileGlobs', () => {
  it.each<[string[], string, boolean]>([
    [[], 'anything', false],
    [['kube-system'], 'kube-system', true],
    [['kube-system'], 'kube-system2', false],
    [['kube-*'], 'kube-public', true],
    [['kube-*'], 'kube-', true],
    [['kube-*'], 'xkube-public', false],
    [['*'], 'example.com/team', true],
    [['prometheus.io/*'], 'prometheus.io/scrape', true],
    [['prometheus.io/*'], 'prometheusXio/scrape', false],
    [['*.example.com/*'], 'team.example.com/owner', true],
    [['web-?'], 'web-1', true],
    [['web-?'], 'web-12', false],
    [['a', 'b*'], 'bee', true],
    [['(a|b)'], 'a', false],
    [['(a|b)'], '(a|b)', true],
    [['a+'], 'aa', false],
    [['x[1]'], 'x[1]', true],
  ])('%j matches %s: %s', (patterns, name, expected) => {
    expect(compileGlobs(patterns)(name)).toBe(expected);
  });
});
