import { afterEach, describe, expect, it } from 'vitest';
import { outputConfig, outputKind } from '../../../src/cli/output-flags.ts';

type Values = Parameters<typeof outputKind>[0];

describe('outputKind: --output with --es / --os', () => {
  it.each<[Values, string | undefined]>([
    [{}, undefined],
    [{ output: 'stdout' }, undefined],
    [{ es: 'http://a:9200' }, 'elasticsearch'],
    [{ 'es-cloud-id': 'x:y' }, 'elasticsearch'],
    [{ os: 'http://a:9200' }, 'opensearch'],
    [{ output: 'auto', os: 'http://a:9200' }, 'opensearch'],
    [{ output: 'elasticsearch', es: 'http://a:9200' }, 'elasticsearch'],
    [{ output: 'opensearch', os: 'http://a:9200' }, 'opensearch'],
  ])('%o -> %s', (v, kind) => {
    expect(outputKind(v)).toBe(kind);
  });

  it.each<[Values, string]>([
    [{ es: 'http://a', os: 'http://b' }, '--es and --os are both set'],
    [{ output: 'opensearch', es: 'http://a' }, '--output opensearch takes its URLs from --os, not --es'],
    [{ output: 'opensearch' }, '--output opensearch needs --os URL'],
    [
      { output: 'elasticsearch', os: 'http://a' },
      '--output elasticsearch takes its URLs from --es, not --os',
    ],
    [{ output: 'elasticsearch' }, '--output elasticsearch needs --es URL'],
    [{ output: 'stdout', os: 'http://a' }, '--output stdout: drop --os, or use --output opensearch'],
    [{ output: 'kafka' }, "--output: 'kafka' is not one of auto, stdout, elasticsearch, opensearch"],
  ])('%o is a usage error: %s', (v, message) => {
    expect(() => outputKind(v)).toThrow(message);
  });
});

describe('outputConfig for OpenSearch', () => {
  afterEach(() => {
    delete process.env.LOGFERRY_ES_API_KEY;
  });
  const config = (v: Values) => outputConfig(v, 'logs-x', 'n1');

  it('carries the kind to the sink and the SigV4 settings to the connection', () => {
    const c = config({ os: 'https://search-x.eu-west-1.es.amazonaws.com', 'os-aws-region': 'eu-west-1' })!;
    expect(c.kind).toBe('opensearch');
    expect(c.sink.kind).toBe('opensearch');
    expect(c.connection.nodes).toEqual(['https://search-x.eu-west-1.es.amazonaws.com']);
    expect(c.connection.aws).toEqual({ region: 'eu-west-1', service: 'es' });
    expect(
      config({ os: 'https://x', 'os-aws-region': 'us-east-1', 'os-aws-service': 'aoss' })!.connection.aws,
    ).toEqual({ region: 'us-east-1', service: 'aoss' });
    expect(config({ os: 'http://a' })!.connection.aws).toBeUndefined();
  });

  it.each<[Values, string]>([
    [{ os: 'ftp://a' }, "--os: 'ftp:' URLs are not supported"],
    [{ os: 'not a url' }, "--os: 'not a url' is not a URL"],
    [{ os: ',' }, '--os: no URL given'],
    [{ os: 'http://a', 'os-aws-region': 'Ireland' }, "--os-aws-region: 'Ireland' is not an AWS region"],
    [{ os: 'http://a', 'os-aws-service': 'aoss' }, '--os-aws-service needs --os-aws-region'],
    [
      { os: 'http://a', 'os-aws-region': 'eu-west-1', 'os-aws-service': 's3' },
      "--os-aws-service: 's3' is not one of es, aoss",
    ],
    [{ es: 'http://a', 'os-aws-region': 'eu-west-1' }, '--os-aws-region signs OpenSearch requests'],
    [{ os: 'http://a', 'os-aws-region': 'eu-west-1', 'es-user': 'u' }, 'drop --es-user'],
    [{ os: 'http://a', 'es-api-key-file': '/k' }, 'OpenSearch has no API keys'],
  ])('%o: %s', (v, message) => {
    process.env.LOGFERRY_ES_PASSWORD = 'p';
    try {
      expect(() => config(v)).toThrow(message);
    } finally {
      delete process.env.LOGFERRY_ES_PASSWORD;
    }
  });
});
