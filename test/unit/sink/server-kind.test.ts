import { describe, expect, it } from 'vitest';
import {
  checkServer,
  identifyServer,
  type OutputKind,
  type RootResponse,
  type ServerIdentity,
} from '../../../src/sink/server-kind.ts';

const opensearchRoot = {
  name: 'n0',
  cluster_name: 'c',
  version: { distribution: 'opensearch', number: '2.19.6', build_type: 'zip' },
  tagline: 'The OpenSearch Project: https://opensearch.org/',
};
const elasticRoot = {
  name: 'n0',
  version: { number: '8.19.21', build_flavor: 'default' },
  tagline: 'You Know, for Search',
};

const res = (
  status: number | undefined,
  body: unknown,
  headers: RootResponse['headers'] = {},
): RootResponse => ({
  status,
  body,
  headers,
  ...(status === undefined ? { error: 'connect ECONNREFUSED 127.0.0.1:9200' } : {}),
});

describe('identifyServer', () => {
  it.each<[string, RootResponse, ServerIdentity]>([
    ['OpenSearch 2.x', res(200, opensearchRoot), { kind: 'opensearch', version: '2.19.6' }],
    [
      'OpenSearch, body as text',
      res(200, JSON.stringify(opensearchRoot)),
      { kind: 'opensearch', version: '2.19.6' },
    ],
    [
      'Elasticsearch 8 (product header)',
      res(200, elasticRoot, { 'x-elastic-product': 'Elasticsearch' }),
      { kind: 'elasticsearch', version: '8.19.21' },
    ],
    [
      "Elasticsearch's integ-test zip: 405, header only",
      res(405, { error: 'Incorrect HTTP method for uri [/]' }, { 'x-elastic-product': 'Elasticsearch' }),
      { kind: 'elasticsearch', version: undefined },
    ],
    [
      'Elasticsearch 7.10 OSS (no header, no distribution)',
      res(200, { version: { number: '7.10.2', build_flavor: 'oss' }, tagline: 'You Know, for Search' }),
      { kind: 'elasticsearch', version: '7.10.2' },
    ],
    [
      'no answer',
      res(undefined, undefined),
      { kind: 'unavailable', detail: 'connect ECONNREFUSED 127.0.0.1:9200' },
    ],
    ['503 while starting', res(503, { error: 'x' }), { kind: 'unavailable', detail: 'HTTP 503' }],
    ['429', res(429, ''), { kind: 'unavailable', detail: 'HTTP 429' }],
    ['401 without credentials', res(401, { error: 'unauthorized' }), { kind: 'forbidden', status: 401 }],
    [
      '403 for a writer role',
      res(403, { message: 'no permissions for [cluster:monitor/main]' }),
      { kind: 'forbidden', status: 403 },
    ],
    [
      'a web server',
      res(404, '<html>not found</html>', { server: 'nginx' }),
      { kind: 'other', detail: 'HTTP 404, Server: nginx' },
    ],
    ['JSON without a version', res(200, { ok: true }), { kind: 'other', detail: 'HTTP 200' }],
    [
      'a version with another distribution',
      res(200, { version: { distribution: 'x', number: '1' } }),
      { kind: 'other', detail: 'HTTP 200' },
    ],
    ['an array', res(200, [1, 2]), { kind: 'other', detail: 'HTTP 200' }],
  ])('%s', (_label, response, identity) => {
    expect(identifyServer(response)).toEqual(identity);
  });
});

describe('checkServer', () => {
  const url = 'http://127.0.0.1:9200';
  it.each<[ServerIdentity, OutputKind, { ok: boolean; permanent?: boolean; text: string }]>([
    [{ kind: 'opensearch', version: '2.19.6' }, 'opensearch', { ok: true, text: 'OpenSearch 2.19.6' }],
    [
      { kind: 'elasticsearch', version: '8.19.21' },
      'elasticsearch',
      { ok: true, text: 'Elasticsearch 8.19.21' },
    ],
    [
      { kind: 'opensearch', version: '2.19.6' },
      'elasticsearch',
      {
        ok: false,
        permanent: true,
        text: `${url} is OpenSearch 2.19.6, not Elasticsearch: to ship to it, use --output opensearch --os URL (config: output.type: opensearch, output.os)`,
      },
    ],
    [
      { kind: 'elasticsearch', version: undefined },
      'opensearch',
      {
        ok: false,
        permanent: true,
        text: `${url} is Elasticsearch, not OpenSearch: to ship to it, use --es URL (config: output.es)`,
      },
    ],
    [
      { kind: 'other', detail: 'HTTP 404, Server: nginx' },
      'opensearch',
      {
        ok: false,
        permanent: true,
        text: `${url} is neither Elasticsearch nor OpenSearch (GET / answered HTTP 404, Server: nginx): point --output opensearch --os URL (config: output.type: opensearch, output.os) at an OpenSearch node`,
      },
    ],
    [
      { kind: 'unavailable', detail: 'HTTP 503' },
      'elasticsearch',
      { ok: false, permanent: false, text: `cannot reach Elasticsearch: HTTP 503` },
    ],
    [
      { kind: 'forbidden', status: 403 },
      'opensearch',
      { ok: true, text: 'a server that refuses GET / (HTTP 403)' },
    ],
  ])('%o for the %s output', (identity, expected, want) => {
    const v = checkServer(identity, expected, url);
    expect(v.ok).toBe(want.ok);
    if (v.ok) expect(v.found).toBe(want.text);
    else {
      expect(v.permanent).toBe(want.permanent);
      expect(v.message).toBe(want.text);
    }
  });
});
