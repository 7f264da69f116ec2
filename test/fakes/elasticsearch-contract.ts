// One contract suite, run against both the fake and a real Elasticsearch (test/integration/es-infra-*.test.ts):
// if it passes on both, code tested against the fake sees what production sends. Only checks that need no server
// configuration live here; fault injection is the fake's own suite.

import { randomBytes } from 'node:crypto';
import { Client, errors } from '@elastic/elasticsearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

export interface ContractTarget {
  url: string;
  /** the server's major version (default 8): 9 takes the compatible-with=9 headers that 8 refuses */
  major?: number | undefined;
}

// Index names unique per run: a real node outlives test runs, and its state must not leak between them.
function uniquePrefix(): string {
  return `logferry-contract-${randomBytes(4).toString('hex')}`;
}

export function describeElasticsearchContract(label: string, target: () => ContractTarget): void {
  describe(`Elasticsearch contract: ${label}`, () => {
    let client: Client;
    let gzipClient: Client;
    let url: string;
    const prefix = uniquePrefix();

    beforeAll(() => {
      url = target().url;
      // No retries: every assertion below is about one exchange.
      client = new Client({ node: url, maxRetries: 0 });
      gzipClient = new Client({ node: url, maxRetries: 0, compression: true });
    });

    afterAll(async () => {
      if (client === undefined) return;
      await client.indices.delete({ index: `${prefix}-*`, ignore_unavailable: true }).catch(() => undefined);
      await client.close();
      await gzipClient.close();
    });

    it('marks every response with the product header the client checks', async () => {
      const res = await fetch(`${url}/_cluster/health`);
      expect(res.headers.get('x-elastic-product')).toBe('Elasticsearch');
      expect(res.status).toBe(200);
      const health = (await res.json()) as { status: string };
      expect(['green', 'yellow']).toContain(health.status);
    });

    it('creates documents with _bulk and answers per item like ES 8', async () => {
      const index = `${prefix}-bulk`;
      const res = await client.bulk({
        operations: [
          { create: { _index: index, _id: 'a' } },
          { message: 'first', n: 1 },
          { create: { _index: index } },
          { message: 'second', n: 2 },
          { index: { _index: index, _id: 'c' } },
          { message: 'third', n: 3 },
        ],
      });
      expect(res.errors).toBe(false);
      expect(res.items).toHaveLength(3);
      const first = res.items[0]?.create;
      expect(first).toMatchObject({
        _index: index,
        _id: 'a',
        _version: 1,
        result: 'created',
        _primary_term: 1,
        status: 201,
      });
      expect(first?._shards).toEqual({ total: 2, successful: 1, failed: 0 });
      expect(res.items[1]?.create?._id).toMatch(/^[A-Za-z0-9_-]{20}$/);
      expect(res.items[2]?.index).toMatchObject({ _id: 'c', result: 'created', status: 201 });

      await client.indices.refresh({ index });
      const found = await client.search<{ message: string; n: number }>({
        index,
        query: { match_all: {} },
        size: 10,
      });
      expect(found.hits.hits.map((h) => h._source?.message).sort()).toEqual(['first', 'second', 'third']);
      expect((await client.count({ index })).count).toBe(3);
    });

    it('rejects a duplicate create with 409 version_conflict_engine_exception', async () => {
      const index = `${prefix}-dup`;
      await client.bulk({ operations: [{ create: { _index: index, _id: 'x' } }, { v: 1 }] });
      const res = await client.bulk({
        operations: [
          { create: { _index: index, _id: 'x' } },
          { v: 2 },
          { create: { _index: index, _id: 'y' } },
          { v: 3 },
        ],
      });
      expect(res.errors).toBe(true);
      const conflict = res.items[0]?.create;
      expect(conflict?.status).toBe(409);
      expect(conflict?.error).toMatchObject({
        type: 'version_conflict_engine_exception',
        reason: '[x]: version conflict, document already exists (current version [1])',
        shard: '0',
        index,
      });
      expect(conflict?.error?.index_uuid).toMatch(/^[A-Za-z0-9_-]{22}$/);
      // Only the failed item fails: the next one in the same request is created.
      expect(res.items[1]?.create?.status).toBe(201);
    });

    it('accepts gzip request bodies and answers gzip when asked', async () => {
      const index = `${prefix}-gzip`;
      const res = await gzipClient.bulk({
        operations: [{ create: { _index: index } }, { message: 'compressed '.repeat(50) }],
      });
      expect(res.errors).toBe(false);
      const raw = await fetch(`${url}/_cluster/health`, { headers: { 'accept-encoding': 'gzip' } });
      expect(raw.headers.get('content-encoding')).toBe('gzip');
    });

    it('fails a document whose field type conflicts with the mapping, per item, with 400', async () => {
      const index = `${prefix}-mapping`;
      const res = await client.bulk({
        operations: [
          { index: { _index: index } },
          { n: 1, labels: { app: 'web' } },
          { index: { _index: index } },
          { n: 'not a number' },
          { index: { _index: index } },
          { labels: { 'app.kubernetes.io/name': 'web' } },
          { index: { _index: index } },
          { n: '42' },
        ],
      });
      expect(res.errors).toBe(true);
      expect(res.items.map((item) => item.index?.status)).toEqual([201, 400, 400, 201]);
      const numberError = res.items[1]?.index?.error;
      expect(numberError?.type).toBe('document_parsing_exception');
      expect(numberError?.reason).toContain('failed to parse field [n] of type [long]');
      expect(numberError?.caused_by).toMatchObject({
        type: 'illegal_argument_exception',
        reason: 'For input string: "not a number"',
      });
      const labelError = res.items[2]?.index?.error;
      expect(labelError?.type).toBe('document_parsing_exception');
      expect(labelError?.reason).toContain('failed to parse field [labels.app] of type [text]');
    });

    it('rejects a malformed action line for the whole request', async () => {
      const res = await fetch(`${url}/_bulk`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body: '{"frob":{"_index":"x"}}\n{"a":1}\n',
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        error: {
          root_cause: [
            {
              type: 'illegal_argument_exception',
              reason:
                'Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [frob]',
            },
          ],
          type: 'illegal_argument_exception',
          reason:
            'Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [frob]',
        },
        status: 400,
      });
      const unterminated = await fetch(`${url}/_bulk`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body: '{"create":{"_index":"x"}}\n{"a":1}',
      });
      expect(unterminated.status).toBe(400);
      expect(((await unterminated.json()) as { error: { reason: string } }).error.reason).toBe(
        'The bulk request must be terminated by a newline [\\n]',
      );
    });

    it('drops filtered-out fields like filter_path does', async () => {
      const index = `${prefix}-filter`;
      const res = await client.bulk({
        operations: [{ create: { _index: index } }, { a: 1 }],
        filter_path: 'errors,items.*.error',
      });
      expect(res).toEqual({ errors: false });
    });

    it('takes compatible-with=9 headers (what client 9.x sends) on 9 and rejects them with 400 on 8', async () => {
      const major = target().major ?? 8;
      const res = await fetch(`${url}/_bulk`, {
        method: 'POST',
        headers: {
          'content-type': 'application/vnd.elasticsearch+x-ndjson; compatible-with=9',
          accept: 'application/vnd.elasticsearch+json; compatible-with=9',
        },
        body: `{"create":{"_index":"${prefix}-compat"}}\n{"a":1}\n`,
      });
      if (major >= 9) {
        expect(res.status).toBe(200);
        expect(((await res.json()) as { errors: boolean }).errors).toBe(false);
        return;
      }
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { type: string; caused_by: { reason: string } } };
      expect(body.error.type).toBe('media_type_header_exception');
      expect(body.error.caused_by.reason).toContain(
        'Accept version must be either version 8 or 7, but found 9',
      );
    });

    it('surfaces whole-request errors as ResponseError with the ES body', async () => {
      const err = await client.count({ index: `${prefix}-missing` }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(errors.ResponseError);
      const response = err as InstanceType<typeof errors.ResponseError>;
      expect(response.statusCode).toBe(404);
      expect(response.body).toMatchObject({ error: { type: 'index_not_found_exception' }, status: 404 });
    });
  });
}
