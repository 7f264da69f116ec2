import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderConfigReference } from '../../../src/config/docs.ts';
import { ConfigError, loadAgentConfig, validateFile } from '../../../src/config/load.ts';
import { AGENT_OPTIONS } from '../../../src/config/options.ts';
import { UsageError } from '../../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'logferry-config-'));
function file(text: string): string {
  const p = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, text);
  return p;
}

function load(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const res = loadAgentConfig(argv, env);
  if (res === 'help') throw new Error('help');
  return res.values;
}

describe('loadAgentConfig', () => {
  it('has a default for every option', () => {
    const v = load([]);
    for (const spec of AGENT_OPTIONS) expect(v.get(spec.key)).toEqual(spec.default);
  });

  it('layers defaults < file < environment < flags', () => {
    const cfg = file(
      'podsDir: /from/file\noutput:\n  batchDocs: 100\n  index: logs-file\nmaxBufferBytes: 32MiB\n',
    );
    const v = load(['--config', cfg, '--batch-docs', '300'], {
      LOGFERRY_BATCH_DOCS: '200',
      LOGFERRY_INDEX: 'logs-env',
      NODE_NAME: 'node-a',
    });
    expect(v.get('podsDir')).toBe('/from/file');
    expect(v.get('output.batchDocs')).toBe(300);
    expect(v.get('output.index')).toBe('logs-env');
    expect(v.get('maxBufferBytes')).toBe(32 * 1024 * 1024);
    expect(v.get('nodeName')).toBe('node-a');
  });

  it.each([
    [['--no-kube'], 'kube.enabled', false],
    [['--kube'], 'kube.enabled', true],
    [['--es', 'http://a:9200,http://b:9200'], 'output.es', ['http://a:9200', 'http://b:9200']],
    [['--read-from', 'tail'], 'readFrom', 'tail'],
    [['--max-line-bytes', '1MiB'], 'maxLineBytes', 1024 * 1024],
  ])('flags %j set %s', (argv, key, value) => {
    expect(load(argv).get(key)).toEqual(value);
  });

  it.each([
    [['--read-from', 'middle'], /--read-from: 'middle' is not valid: expected one of head, tail/],
    [['--batch-docs=0'], /--batch-docs: '0' must be a positive whole number/],
    [['--bogus'], /unknown option '--bogus'/],
  ])('bad flags %j are a usage error', (argv, message) => {
    expect(() => load(argv)).toThrow(UsageError);
    expect(() => load(argv)).toThrow(message);
  });

  it('bad environment values name the variable', () => {
    expect(() => load([], { LOGFERRY_CONCURRENCY: 'many' })).toThrow(
      /LOGFERRY_CONCURRENCY: 'many' must be a positive/,
    );
  });
});

describe('config file validation', () => {
  it.each([
    [
      { output: { batchDocs: 'ten' } },
      ['f: output.batchDocs: "ten" is not valid: expected a positive whole number'],
    ],
    [{ readFrom: 'middle' }, ['f: readFrom: "middle" is not valid: expected one of head, tail']],
    [
      { maxBufferBytes: 'lots' },
      ['f: maxBufferBytes: "lots" is not valid: expected a size in bytes, e.g. 262144 or "256KiB"'],
    ],
    [{ podDir: '/x' }, ["f: unknown key 'podDir'; see docs/configuration.md for the keys"]],
    [
      { output: { bachDocs: 1 } },
      ["f: unknown key 'output.bachDocs'; see docs/configuration.md for the keys"],
    ],
    [
      { kube: { enabled: 'yes' }, include: { namespaces: 'shop' } },
      [
        'f: kube.enabled: "yes" is not valid: expected true or false',
        'f: include.namespaces: "shop" is not valid: expected a list of strings',
      ],
    ],
  ])('%j -> every problem, one line each', (doc, problems) => {
    let err: unknown;
    try {
      validateFile(doc, 'f');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual(problems);
  });

  it('accepts a full valid file', () => {
    const v = validateFile(
      { output: { es: ['http://127.0.0.1:9200'], concurrency: 4 }, kube: { enabled: false } },
      'f',
    );
    expect(v.get('output.concurrency')).toBe(4);
    expect(v.get('kube.enabled')).toBe(false);
  });

  it('refuses a file that is not YAML or not a mapping', () => {
    expect(() => load(['--config', file('a: [1, 2')])).toThrow(/not valid YAML/);
    expect(() => load(['--config', file('- a\n- b\n')])).toThrow(/expected a mapping/);
    expect(() => load(['--config', join(dir, 'missing.yaml')])).toThrow(/cannot read it \(ENOENT\)/);
  });
});

describe('docs/configuration.md', () => {
  it('is in sync with the option table (run `npm run docs` after changing options)', () => {
    const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    expect(doc).toBe(renderConfigReference());
  });

  it('documents every option with a description', () => {
    for (const spec of AGENT_OPTIONS) expect(spec.description.length).toBeGreaterThan(10);
  });
});
