// The fake Elasticsearch, driven by the official client: the shared contract (also run against a real node in
// es-infra-real.test.ts), then what only the fake can do: size limits, mapping options and injected faults.

import { gzipSync } from 'node:zlib';
import { Client, errors } from '@elastic/elasticsearch';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { describeElasticsearchContract } from '../fakes/elasticsearch-contract.ts';
import { type FakeElasticsearch, startFakeElasticsearch } from '../fakes/fake-elasticsearch.ts';

describe('fake Elasticsearch', () => {
  let es: FakeElasticsearch;
  let client: Client;

  beforeAll(async () => {
    es = await startFakeElasticsearch({ maxContentLength: 64 * 1024 });
    client = new Client({ node: es.url, maxRetries: 0 });
  });

  afterEach(() => {
    es.reset();
  });

  afterAll(async () => {
    await client.close();
    await es.close();
  });

  describeElasticsearchContract('fake', () => ({ url: es.url }));

  function docs(index: string, n: number, from = 0): object[] {
    return Array.from({ length: n }, (_, i) => [{ create: { _index: index } }, { seq: from + i }]).flat();
  }

  describe('what the client sees', () => {
    it('answers info like an 8.19 node', async () => {
      const info = await client.info();
      expect(info.version.number).toBe('8.19.21');
      expect(info.version.lucene_version).toBe('9.12.2');
      expect(info.tagline).toBe('You Know, for Search');
      expect(await client.ping()).toBe(true);
    });

    it('stores what it acknowledged and logs each request', async () => {
      await client.bulk({ operations: docs('logs-a', 3) });
      expect(es.count('logs-a')).toBe(3);
      expect(es.docs('logs-*').map((d) => d.source)).toEqual([{ seq: 0 }, { seq: 1 }, { seq: 2 }]);
      const bulk = es.requests.find((r) => r.path === '/_bulk');
      expect(bulk).toMatchObject({ method: 'POST', status: 200, items: 3, itemStatuses: { 201: 3 } });
      expect(bulk?.bodyBytes).toBeGreaterThan(0);
    });

    it('decodes gzip bodies and records their size before and after', async () => {
      const gzipClient = new Client({ node: es.url, maxRetries: 0, compression: true });
      try {
        await gzipClient.bulk({ operations: docs('logs-gz', 50) });
      } finally {
        await gzipClient.close();
      }
      expect(es.count('logs-gz')).toBe(50);
      const bulk = es.requests.find((r) => r.path === '/_bulk');
      expect(bulk?.contentEncoding).toBe('gzip');
      expect(bulk?.decodedBytes).toBeGreaterThan(bulk?.bodyBytes ?? Number.POSITIVE_INFINITY);
    });

    it('answers 413 with an empty body past maxContentLength, measured after gunzip', async () => {
      const big = [{ create: { _index: 'logs-big' } }, { message: 'x'.repeat(70 * 1024) }];
      const err = await client.bulk({ operations: big }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(errors.ResponseError);
      expect((err as InstanceType<typeof errors.ResponseError>).statusCode).toBe(413);
      const gzipped = await fetch(`${es.url}/_bulk`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' },
        body: gzipSync(`${big.map((line) => JSON.stringify(line)).join('\n')}\n`),
      });
      expect(gzipped.status).toBe(413);
      expect(gzipped.headers.get('x-elastic-product')).toBeNull();
      expect(await gzipped.text()).toBe('');
      expect(es.count()).toBe(0);
    });

    it('honours declared field types and strict dynamic mapping', async () => {
      const strict = await startFakeElasticsearch({
        mappings: { 'kubernetes.labels.app': 'keyword', 'kubernetes.pod': 'object' },
        dynamic: 'strict',
      });
      const strictClient = new Client({ node: strict.url, maxRetries: 0 });
      try {
        const res = await strictClient.bulk({
          operations: [
            { create: { _index: 'k' } },
            { kubernetes: { labels: { app: 'web' } } },
            { create: { _index: 'k' } },
            { 'kubernetes.pod': 'web-1' },
            { create: { _index: 'k' } },
            { unknown: 1 },
          ],
        });
        expect(res.items.map((i) => i.create?.status)).toEqual([201, 400, 400]);
        expect(res.items[1]?.create?.error?.reason).toContain(
          'object mapping for [kubernetes.pod] tried to parse field [pod] as object, but found a concrete value',
        );
        expect(res.items[2]?.create?.error).toMatchObject({
          type: 'strict_dynamic_mapping_exception',
          reason: expect.stringContaining('dynamic introduction of [unknown] within [_doc] is not allowed'),
        });
      } finally {
        await strictClient.close();
        await strict.close();
      }
    });

    it('applies index templates to indices it creates on first write', async () => {
      await client.indices.putIndexTemplate({
        name: 'logferry',
        index_patterns: ['lf-*'],
        priority: 100,
        template: {
          settings: { number_of_replicas: 0 },
          mappings: { properties: { '@timestamp': { type: 'date' }, level: { type: 'keyword' } } },
        },
      });
      const res = await client.bulk({
        operations: [
          { create: { _index: 'lf-1' } },
          { '@timestamp': '2026-01-02T03:04:05.678Z', level: 'info' },
          { create: { _index: 'lf-1' } },
          { '@timestamp': 'yesterday' },
        ],
      });
      expect(res.items[0]?.create?._shards).toEqual({ total: 1, successful: 1, failed: 0 });
      expect(res.items[1]?.create?.error?.reason).toContain(
        'failed to parse field [@timestamp] of type [date]',
      );
      const mapping = await client.indices.getMapping({ index: 'lf-1' });
      expect(mapping['lf-1']?.mappings.properties?.level).toEqual({ type: 'keyword' });
    });
  });

  describe('faults', () => {
    it('rejects every item with 429 while an item fault is active, storing nothing', async () => {
      es.fault({ kind: 'item-status', status: 429 });
      const res = await client.bulk({ operations: docs('logs-q', 4) });
      expect(res.errors).toBe(true);
      expect(res.items.map((i) => i.create?.status)).toEqual([429, 429, 429, 429]);
      expect(res.items[0]?.create?.error?.type).toBe('es_rejected_execution_exception');
      expect(res.items[0]?.create?.error?.reason).toContain('rejected execution of');
      expect(es.count()).toBe(0);
    });

    it('rejects every other item with `every: 2` and stores the rest', async () => {
      es.fault({ kind: 'item-status', status: 429, every: 2 });
      const res = await client.bulk({ operations: docs('logs-q', 4) });
      expect(res.items.map((i) => i.create?.status)).toEqual([429, 201, 429, 201]);
      expect(es.docs().map((d) => d.source)).toEqual([{ seq: 1 }, { seq: 3 }]);
    });

    it('rejects a seeded pseudo-random share with `ratio`, the same on every run', async () => {
      const rejected = () => es.requests.at(-1)?.itemStatuses[503] ?? 0;
      es.fault({ kind: 'item-status', status: 503, ratio: 0.5, seed: 7 });
      const res = await client.bulk({ operations: docs('logs-r', 100) });
      const first = rejected();
      expect(first).toBeGreaterThan(30);
      expect(first).toBeLessThan(70);
      expect(res.items.find((i) => i.create?.status === 503)?.create?.error?.type).toBe(
        'unavailable_shards_exception',
      );
      es.reset();
      es.fault({ kind: 'item-status', status: 503, ratio: 0.5, seed: 7 });
      await client.bulk({ operations: docs('logs-r', 100) });
      expect(rejected()).toBe(first);
    });

    it('lets the bulk helper retry items rejected with 429 until they are stored', async () => {
      const fault = es.fault({ kind: 'item-status', status: 429, count: 5 });
      const helperClient = new Client({ node: es.url });
      try {
        const stats = await helperClient.helpers.bulk({
          datasource: Array.from({ length: 10 }, (_, i) => ({ seq: i })),
          onDocument: () => ({ create: { _index: 'logs-h' } }),
          retries: 3,
          wait: 10,
        });
        expect(stats.failed).toBe(0);
      } finally {
        await helperClient.close();
      }
      expect(fault.hits).toBe(5);
      expect(es.count('logs-h')).toBe(10);
    });

    it('answers whole requests with 429 and the ES body, `count` times', async () => {
      const fault = es.fault({ kind: 'status', status: 429, count: 2 });
      for (const _ of [1, 2]) {
        const err = await client.bulk({ operations: docs('logs-w', 1) }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(errors.ResponseError);
        const response = err as InstanceType<typeof errors.ResponseError>;
        expect(response.statusCode).toBe(429);
        expect(response.body).toMatchObject({
          status: 429,
          error: { type: 'es_rejected_execution_exception' },
        });
      }
      expect(fault.active).toBe(false);
      const ok = await client.bulk({ operations: docs('logs-w', 1) });
      expect(ok.errors).toBe(false);
      // Bulk-only by default: reads keep working while indexing is refused.
      es.fault({ kind: 'status', status: 429 });
      expect((await client.count({ index: 'logs-w' })).count).toBe(1);
    });

    it('answers 429 for a wall-clock window with `forMs`', async () => {
      const fault = es.fault({ kind: 'status', status: 429, forMs: 150 });
      await expect(client.bulk({ operations: docs('logs-t', 1) })).rejects.toThrow(errors.ResponseError);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(fault.active).toBe(false);
      expect((await client.bulk({ operations: docs('logs-t', 1) })).errors).toBe(false);
    });

    it('is retried by the client on 503 (its default), so `count` shows as extra requests', async () => {
      es.fault({ kind: 'status', status: 503, count: 2 });
      const retrying = new Client({ node: es.url, maxRetries: 3 });
      try {
        const res = await retrying.bulk({ operations: docs('logs-503', 1) });
        expect(res.errors).toBe(false);
      } finally {
        await retrying.close();
      }
      expect(es.requests.map((r) => r.status)).toEqual([503, 503, 200]);
      expect(es.count()).toBe(1);
    });

    it('sends 401 with the security_exception body and challenge', async () => {
      es.fault({ kind: 'status', status: 401, count: 1 });
      const err = (await client
        .bulk({ operations: docs('logs-auth', 1) })
        .catch((e: unknown) => e)) as InstanceType<typeof errors.ResponseError>;
      expect(err.statusCode).toBe(401);
      expect(err.body).toMatchObject({ error: { type: 'security_exception' } });
      expect(String(err.headers?.['www-authenticate'])).toContain('Basic realm="security"');
    });

    it('delays answers with a latency fault', async () => {
      es.fault({ kind: 'latency', ms: 120, count: 1 });
      const started = performance.now();
      await client.bulk({ operations: docs('logs-l', 1) });
      expect(performance.now() - started).toBeGreaterThanOrEqual(100);
    });

    it('holds requests with a hang fault until the client times out, then processes them when cleared', async () => {
      const fault = es.fault({ kind: 'hang' });
      const impatient = new Client({ node: es.url, maxRetries: 0, requestTimeout: 200 });
      try {
        const err = await impatient.bulk({ operations: docs('logs-hang', 2) }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(errors.TimeoutError);
      } finally {
        await impatient.close();
      }
      expect(es.count()).toBe(0);
      fault.clear();
      // The stalled node finishes the bulk the client gave up on: a resend would duplicate these.
      await es.waitForCount(2, { index: 'logs-hang', timeoutMs: 2000 });
    });

    it('resets the connection before processing, storing nothing', async () => {
      es.fault({ kind: 'reset', count: 1 });
      const err = await client.bulk({ operations: docs('logs-reset', 2) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(errors.ConnectionError);
      expect(es.count()).toBe(0);
      expect(es.requests[0]).toMatchObject({ status: null, fault: 'reset' });
    });

    it('resets the connection after processing: stored, but the client never hears so', async () => {
      es.fault({ kind: 'reset', after: 'process', count: 1 });
      const err = await client.bulk({ operations: docs('logs-reset', 2) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(errors.ConnectionError);
      expect(es.count('logs-reset')).toBe(2);
    });

    it('refuses connections while stopped and comes back on the same port', async () => {
      const port = es.port;
      await client.bulk({ operations: docs('logs-down', 1) });
      await es.stop();
      // The first request may still pick the pooled keep-alive socket the stop destroyed ("other side closed"),
      // as with a real node going down; the next one finds nobody listening.
      for (const _ of [1, 2]) {
        const err = await client.bulk({ operations: docs('logs-down', 1) }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(errors.ConnectionError);
      }
      const refused = await client.bulk({ operations: docs('logs-down', 1) }).catch((e: unknown) => e);
      expect(String((refused as Error).message)).toMatch(/ECONNREFUSED/);
      await es.restart();
      expect(es.port).toBe(port);
      const res = await client.bulk({ operations: docs('logs-down', 1) });
      expect(res.errors).toBe(false);
      expect(es.count('logs-down')).toBe(2);
    });

    it('keeps fault windows on the wall clock when a test fakes timers', () => {
      vi.useFakeTimers();
      try {
        const fault = es.fault({ kind: 'status', status: 429, forMs: 60_000 });
        vi.advanceTimersByTime(120_000);
        // The fake answers real sockets, so only real time ends its faults.
        expect(fault.active).toBe(true);
        fault.clear();
      } finally {
        vi.useRealTimers();
      }
    });

    it('runs an outage of a given length', async () => {
      const back = es.outage(150);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await expect(client.bulk({ operations: docs('logs-o', 1) })).rejects.toThrow(errors.ConnectionError);
      await back;
      expect((await client.bulk({ operations: docs('logs-o', 1) })).errors).toBe(false);
    });
  });
});
