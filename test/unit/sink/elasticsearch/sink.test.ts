import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RecordBatch } from '../../../../src/pipeline/types.ts';
import { actionLine, documentId, IndexTemplate } from '../../../../src/sink/elasticsearch/encode.ts';
import { type BulkTransport, ElasticsearchSink } from '../../../../src/sink/elasticsearch/sink.ts';
import type { Logger } from '../../../../src/telemetry/logger.ts';

interface Sent {
  action: { create: { _index: string; _id?: string } };
  doc: Record<string, unknown>;
}

function parseBody(body: Buffer): Sent[] {
  const lines = body.toString('utf8').trimEnd().split('\n');
  const out: Sent[] = [];
  for (let i = 0; i < lines.length; i += 2)
    out.push({ action: JSON.parse(lines[i]!), doc: JSON.parse(lines[i + 1]!) });
  return out;
}

type Reply = { status: number; body?: unknown } | 'connection-error';

/** An in-process transport: `respond` decides each request's answer; every request is recorded. */
function scripted(respond: (items: Sent[], n: number) => Reply | ((items: Sent[]) => Reply)) {
  const requests: Sent[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const transport: BulkTransport = {
    async bulk(body) {
      const items = parseBody(body);
      requests.push(items);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      let reply = respond(items, requests.length);
      if (typeof reply === 'function') reply = reply(items);
      if (reply === 'connection-error') throw new Error('connect ECONNREFUSED 127.0.0.1:9200');
      return { status: reply.status, body: reply.body };
    },
    async close() {},
  };
  return { transport, requests, maxInFlight: () => maxInFlight };
}

const allCreated = (items: Sent[]): Reply => ({
  status: 200,
  body: { errors: false, items: items.map(() => ({ create: { status: 201 } })) },
});

function perItem(statuses: (item: Sent, i: number) => number): (items: Sent[]) => Reply {
  return (items) => ({
    status: 200,
    body: {
      errors: true,
      items: items.map((it, i) => {
        const status = statuses(it, i);
        return {
          create: {
            status,
            ...(status >= 300
              ? { error: { type: status === 400 ? 'document_parsing_exception' : 'x', reason: 'r' } }
              : {}),
          },
        };
      }),
    },
  });
}

const logs: string[] = [];
const log: Logger = {
  info: (m) => logs.push(`info ${m}`),
  warn: (m) => logs.push(`warn ${m}`),
  error: (m) => logs.push(`error ${m}`),
};

/**
 * Every test runs twice: batches of documents only, and framed batches whose documents follow the
 * action lines the sink asked for (Sink.frame), as the records workers write them for the agent.
 */
let framer: ElasticsearchSink | undefined;
let framing = false;

function sinkWith(
  transport: BulkTransport,
  over: Partial<ConstructorParameters<typeof ElasticsearchSink>[0]> = {},
) {
  const sink = new ElasticsearchSink(
    {
      index: new IndexTemplate('logs-test'),
      dlqIndex: 'logs-dlq',
      idMode: 'deterministic',
      batchDocs: 100,
      batchBytes: 1 << 20,
      flushMs: 5,
      concurrency: 2,
      retryInitialMs: 1,
      retryMaxMs: 4,
      ...over,
    },
    transport,
    log,
    () => 0.5,
  );
  framer = framing ? sink : undefined;
  return sink;
}

function batch(n: number, start = 0, acks: number[] = []): RecordBatch {
  const file = { key: '1:2', path: '/p', identity: { dev: 1, ino: 2, id: 'f' } };
  const offsets = Array.from({ length: n }, (_, i) => (start + i) * 100);
  const action = framer?.frame(file);
  const items = offsets.map((offset, i) => {
    const doc = `${JSON.stringify({ '@timestamp': '2026-11-22T01:02:03Z', seq: start + i })}\n`;
    if (action === undefined) return doc;
    return `${action.head}${action.withOffset ? `${offset}"}}\n` : ''}${doc}`;
  });
  let end = 0;
  return {
    file,
    body: Buffer.from(items.join('')),
    ends: items.map((d) => {
      end += Buffer.byteLength(d);
      return end;
    }),
    offsets,
    framed: action !== undefined,
    ack: () => acks.push(start),
  };
}

describe('Sink.frame', () => {
  const file = { key: '1:2', path: '/p', identity: { dev: 1, ino: 2, id: 'dev1-ino2-c0ffee' } };
  const t = scripted(() => allCreated);
  it.each([
    ['deterministic', 'logs-test', 0],
    ['deterministic', 'logs-test', 1_234_567_890_123],
    ['auto', 'logs-test', 42],
    ['deterministic', 'logs-{log.file.path}', 7],
  ] as const)(
    '%s ids, index %s, offset %d: the action line of the unframed path',
    (idMode, index, offset) => {
      const sink = sinkWith(t.transport, { idMode, index: new IndexTemplate(index) });
      const a = sink.frame(file)!;
      const line = `${a.head}${a.withOffset ? `${offset}"}}\n` : ''}`;
      const name = index === 'logs-test' ? 'logs-test' : 'logs-_p';
      expect(line).toBe(actionLine(name, idMode === 'auto' ? undefined : documentId(file, offset)));
    },
  );

  it('no frame when the index depends on each record (a date)', () => {
    const sink = sinkWith(t.transport, { index: new IndexTemplate('logs-{yyyy.MM.dd}') });
    expect(sink.frame(file)).toBeUndefined();
  });
});

describe.each([false, true])('ElasticsearchSink (framed batches: %s)', (framed) => {
  beforeEach(() => {
    framing = framed;
  });
  afterEach(() => {
    framing = false;
  });

  it('sends create with deterministic ids and acknowledges each batch once', async () => {
    const t = scripted(() => allCreated);
    const sink = sinkWith(t.transport);
    const acks: number[] = [];
    sink.write(batch(3, 0, acks));
    sink.write(batch(2, 3, acks));
    await sink.flush();
    expect(acks.sort()).toEqual([0, 3]);
    const sent = t.requests.flat();
    expect(sent.map((s) => s.action.create)).toEqual(
      [0, 1, 2, 3, 4].map((i) => ({ _index: 'logs-test', _id: `f-${i * 100}` })),
    );
    expect(sink.counters).toMatchObject({
      sent: 5,
      duplicates: 0,
      retried: 0,
      deadLettered: 0,
      dropped: 0,
      queued: 0,
    });
  });

  it('auto id mode sends no _id', async () => {
    const t = scripted(() => allCreated);
    const sink = sinkWith(t.transport, { idMode: 'auto' });
    sink.write(batch(1));
    await sink.flush();
    expect(t.requests[0]?.[0]?.action).toEqual({ create: { _index: 'logs-test' } });
  });

  it('counts 409 on create as already stored', async () => {
    const t = scripted(() => perItem((_it, i) => (i === 0 ? 409 : 201)));
    const sink = sinkWith(t.transport);
    const acks: number[] = [];
    sink.write(batch(2, 0, acks));
    await sink.flush();
    expect(acks).toEqual([0]);
    expect(sink.counters).toMatchObject({ sent: 1, duplicates: 1 });
    expect(t.requests).toHaveLength(1);
  });

  it('retries only the items that got 429, never re-sending what succeeded', async () => {
    const t = scripted((_items, n) =>
      n === 1 ? perItem((it) => ((it.doc.seq as number) % 2 === 0 ? 429 : 201)) : allCreated,
    );
    const sink = sinkWith(t.transport);
    const acks: number[] = [];
    sink.write(batch(6, 0, acks));
    await sink.flush();
    expect(acks).toEqual([0]);
    expect(t.requests.map((r) => r.map((s) => s.doc.seq))).toEqual([
      [0, 1, 2, 3, 4, 5],
      [0, 2, 4],
    ]);
    expect(t.requests[1]?.map((s) => s.action.create._id)).toEqual(['f-0', 'f-200', 'f-400']);
    expect(sink.counters).toMatchObject({ sent: 6, retried: 3 });
  });

  it('retries whole-request failures (connection errors, 503, 429) with the same documents until they pass', async () => {
    const t = scripted((_items, n) =>
      n === 1
        ? 'connection-error'
        : n === 2
          ? { status: 503, body: { error: 'unavailable' } }
          : n === 3
            ? { status: 429 }
            : allCreated,
    );
    const sink = sinkWith(t.transport);
    const acks: number[] = [];
    sink.write(batch(2, 0, acks));
    await sink.flush();
    expect(acks).toEqual([0]);
    expect(t.requests).toHaveLength(4);
    expect(new Set(t.requests.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(sink.counters).toMatchObject({ sent: 2, requestFailures: 3 });
    expect(sink.state).toBe('ok');
  });

  it('writes a document refused with 400 to the dead-letter index, as a string, with the reason', async () => {
    const t = scripted((items) =>
      items[0]?.action.create._index === 'logs-dlq'
        ? allCreated
        : perItem((it) => (it.doc.seq === 1 ? 400 : 201)),
    );
    const sink = sinkWith(t.transport);
    const acks: number[] = [];
    sink.write(batch(3, 0, acks));
    await sink.flush();
    expect(acks).toEqual([0]);
    const dlq = t.requests[1]!;
    expect(dlq).toHaveLength(1);
    expect(dlq[0]?.action.create).toEqual({ _index: 'logs-dlq', _id: 'f-100' });
    expect(JSON.parse(dlq[0]?.doc.message as string)).toMatchObject({ seq: 1 });
    expect(dlq[0]?.doc.error).toMatchObject({ type: 'document_parsing_exception', status: 400 });
    expect(sink.counters).toMatchObject({ sent: 2, deadLettered: 1, dropped: 0 });
  });

  it('splits a batch on 413 until it fits', async () => {
    const t = scripted((items) => (items.length > 2 ? { status: 413 } : allCreated));
    const sink = sinkWith(t.transport);
    const acks: number[] = [];
    sink.write(batch(8, 0, acks));
    await sink.flush();
    expect(acks).toEqual([0]);
    expect(
      t.requests
        .filter((r) => r.length <= 2)
        .flat()
        .map((s) => s.doc.seq),
    ).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(sink.counters.sent).toBe(8);
    expect(sink.counters.splits).toBeGreaterThan(0);
  });

  it('401 is loud, makes the state unauthorized, and is retried', async () => {
    logs.length = 0;
    let allowed = false;
    const t = scripted(() =>
      allowed
        ? allCreated
        : { status: 401, body: { error: { type: 'security_exception', reason: 'missing authentication' } } },
    );
    const sink = sinkWith(t.transport);
    const acks: number[] = [];
    sink.write(batch(1, 0, acks));
    await new Promise((r) => setTimeout(r, 50));
    expect(sink.state).toBe('unauthorized');
    expect(acks).toEqual([]);
    expect(logs.filter((l) => l.startsWith('error'))).toHaveLength(1);
    allowed = true;
    await sink.flush();
    expect(acks).toEqual([0]);
    expect(sink.state).toBe('ok');
  });

  it('batches by document count and keeps at most `concurrency` requests in flight', async () => {
    const t = scripted(() => allCreated);
    const sink = sinkWith(t.transport, { batchDocs: 10, concurrency: 2 });
    for (let i = 0; i < 10; i++) sink.write(batch(10, i * 10));
    await sink.flush();
    expect(t.requests.every((r) => r.length <= 10)).toBe(true);
    expect(t.maxInFlight()).toBeLessThanOrEqual(2);
    expect(sink.counters.sent).toBe(100);
  });

  it('any batch sizes, limits and per-item 429s: each document stored once, each batch acknowledged once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 25 }),
        fc.integer({ min: 40, max: 3000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        async (sizes, batchDocs, batchBytes, seed) => {
          let r = seed;
          const coin = () => {
            r = (Math.imul(r, 1103515245) + 12345) >>> 0;
            return r >>> 30 === 0;
          };
          const stored = new Set<number>();
          const t = scripted(() => (items) => ({
            status: 200,
            body: {
              errors: true,
              items: items.map((it) => {
                const seq = it.doc.seq as number;
                if (coin()) return { create: { status: 429 } };
                const status = stored.has(seq) ? 409 : 201;
                stored.add(seq);
                return { create: { status } };
              }),
            },
          }));
          const sink = sinkWith(t.transport, { batchDocs, batchBytes, flushMs: 1 });
          const acks: number[] = [];
          let start = 0;
          for (const n of sizes) {
            sink.write(batch(n, start, acks));
            start += n;
          }
          await sink.flush();
          expect(acks.sort((a, b) => a - b)).toEqual(
            sizes.map((_, k) => sizes.slice(0, k).reduce((x, y) => x + y, 0)),
          );
          expect(stored.size).toBe(start);
          expect(sink.counters.sent).toBe(start);
          expect(sink.counters.duplicates).toBe(0);
          expect(t.requests.every((req) => req.length <= batchDocs)).toBe(true);
          // documents go out in the order they were written (first attempts)
          const firsts: number[] = [];
          const seen = new Set<number>();
          for (const req of t.requests)
            for (const it of req) {
              const seq = it.doc.seq as number;
              if (!seen.has(seq)) firsts.push(seq);
              seen.add(seq);
              expect(it.action.create._id ?? `f-${seq * 100}`).toBe(`f-${seq * 100}`);
            }
          expect(firsts).toEqual(Array.from({ length: start }, (_, i) => i));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('close() at the deadline stops retrying and leaves the batch unacknowledged', async () => {
    const t = scripted(() => 'connection-error');
    const sink = sinkWith(t.transport);
    const acks: number[] = [];
    sink.write(batch(1, 0, acks));
    await sink.close(Date.now() + 30);
    expect(acks).toEqual([]);
    expect(sink.counters.sent).toBe(0);
  });
});

describe('the server check (GET /) before bulk requests', () => {
  beforeEach(() => {
    framing = false;
    logs.length = 0;
  });

  const osRoot = { version: { distribution: 'opensearch', number: '2.19.6' } };
  const esHeaders = { 'x-elastic-product': 'Elasticsearch' };

  /** `root` decides each GET / answer; bulk requests are recorded and all stored. */
  function checked(
    root: (n: number) => { status?: number; body?: unknown; headers?: Record<string, string> },
  ) {
    const t = scripted(() => allCreated);
    let checks = 0;
    t.transport.identify = async () => {
      const r = root(++checks);
      return {
        url: 'http://127.0.0.1:9200',
        response: { status: r.status, body: r.body, headers: r.headers ?? {}, error: 'ECONNREFUSED' },
      };
    };
    return { ...t, checks: () => checks };
  }

  it('Elasticsearch output at an OpenSearch: one error line, wrong-server, no bulk; then delivers when the right server answers', async () => {
    let right = false;
    const t = checked(() =>
      right ? { status: 200, body: {}, headers: esHeaders } : { status: 200, body: osRoot },
    );
    const sink = sinkWith(t.transport, { retryMaxMs: 5 });
    const acks: number[] = [];
    sink.write(batch(3, 0, acks));
    const verdict = await sink.checkServer();
    expect(verdict).toMatchObject({ ok: false, permanent: true });
    await new Promise((r) => setTimeout(r, 40));
    expect(sink.state).toBe('wrong-server');
    expect(t.requests).toHaveLength(0);
    expect(sink.counters.wrongServer).toBeGreaterThan(1);
    expect(logs.filter((l) => l.startsWith('error'))).toEqual([
      'error output: http://127.0.0.1:9200 is OpenSearch 2.19.6, not Elasticsearch: to ship to it, use --output opensearch --os URL (config: output.type: opensearch, output.os); nothing is sent there until GET / finds Elasticsearch',
    ]);
    right = true;
    await sink.flush();
    expect(acks).toEqual([0]);
    expect(sink.state).toBe('ok');
    expect(logs.at(-1)).toBe('info output: Elasticsearch accepts requests again');
    await sink.close();
  });

  it('OpenSearch output at an Elasticsearch: names it and the flag to use', async () => {
    const t = checked(() => ({ status: 405, body: {}, headers: esHeaders }));
    const sink = sinkWith(t.transport, { kind: 'opensearch' });
    const v = await sink.checkServer();
    expect(v).toEqual({
      ok: false,
      permanent: true,
      message:
        'http://127.0.0.1:9200 is Elasticsearch, not OpenSearch: to ship to it, use --es URL (config: output.es)',
    });
    expect(sink.state).toBe('wrong-server');
    await sink.close(Date.now());
  });

  it('an unreachable server is retried as a transient fault, then checked once and shipped to', async () => {
    const t = checked((n) => (n < 3 ? {} : { status: 200, body: osRoot }));
    const sink = sinkWith(t.transport, { kind: 'opensearch' });
    const acks: number[] = [];
    sink.write(batch(2, 0, acks));
    await sink.flush();
    expect(acks).toEqual([0]);
    expect(t.checks()).toBe(3);
    expect(sink.counters.wrongServer).toBe(0);
    expect(logs).toContain('warn output: cannot reach OpenSearch: ECONNREFUSED; retrying with backoff');
    // verified: later batches go straight to _bulk
    sink.write(batch(2, 2, acks));
    await sink.flush();
    expect(t.checks()).toBe(3);
    await sink.close();
  });

  it('a connection failure makes the next attempt check the server again', async () => {
    const t = checked(() => ({ status: 200, body: osRoot }));
    let failed = false;
    const bulk = t.transport.bulk;
    t.transport.bulk = async (body) => {
      if (!failed) {
        failed = true;
        throw new Error('socket hang up');
      }
      return bulk(body);
    };
    const sink = sinkWith(t.transport, { kind: 'opensearch' });
    const acks: number[] = [];
    sink.write(batch(1, 0, acks));
    await sink.flush();
    expect(acks).toEqual([0]);
    expect(t.checks()).toBe(2);
    await sink.close();
  });

  it('GET / refused (403, a writer role without cluster:monitor/main) lets bulk requests go', async () => {
    const t = checked(() => ({ status: 403, body: { error: 'forbidden' } }));
    const sink = sinkWith(t.transport, { kind: 'opensearch' });
    const acks: number[] = [];
    sink.write(batch(1, 0, acks));
    await sink.flush();
    expect(acks).toEqual([0]);
    expect(sink.state).toBe('ok');
    await sink.close();
  });
});
