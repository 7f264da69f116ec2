// `--output opensearch`: the CLI and the agent against a real OpenSearch (when LOGFERRY_TEST_OS_URL names one;
// `npm run test:opensearch` after `scripts/os-test-server.sh start`, which .ci/run does with a tiny write queue
// so that 429s are real), and the server check against the fakes (always).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@opensearch-project/opensearch';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { templateName } from '../../src/sink/elasticsearch/templates.ts';
import { type FakeElasticsearch, startFakeElasticsearch } from '../fakes/fake-elasticsearch.ts';
import { type FakeOpenSearch, startFakeOpenSearch } from '../fakes/fake-opensearch.ts';
import { startAgent } from '../helpers/agent.ts';
import { BIN, criLine, runCli, sleep, tempDir } from '../helpers/cli.ts';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  await cleanup();
});

const realUrl = process.env.LOGFERRY_TEST_OS_URL;
const uniqueIndex = (name: string) => `logs-os${name}-${randomBytes(3).toString('hex')}`;
const seqOf = (doc: Record<string, unknown>) => Number(/seq=(\d+)/.exec(String(doc.message))?.[1]);

describe.skipIf(realUrl === undefined)('shipping to a real OpenSearch at LOGFERRY_TEST_OS_URL', () => {
  let client: Client;
  beforeAll(() => {
    client = new Client({ node: realUrl!, maxRetries: 0 });
  });
  afterAll(async () => {
    await client?.close();
  });

  async function docs(index: string): Promise<Map<string, Record<string, unknown>>> {
    await client.indices.refresh({ index, ignore_unavailable: true });
    const res = await client.search({
      index,
      size: 10_000,
      body: { query: { match_all: {} } },
      ignore_unavailable: true,
    });
    const out = new Map<string, Record<string, unknown>>();
    for (const hit of res.body.hits.hits) out.set(String(hit._id), hit._source as Record<string, unknown>);
    return out;
  }

  const ship = (log: string, index: string, extra: string[] = []) =>
    runCli(
      [
        'tail',
        '--once',
        '--from-beginning',
        '--host-name',
        'n1',
        '--output',
        'opensearch',
        '--os',
        realUrl!,
        '--index',
        index,
        ...extra,
        log,
      ],
      {
        timeoutMs: 120_000,
      },
    );

  it('runs OpenSearch 2.19.x', async () => {
    const info = await client.info();
    expect(info.body.version.distribution).toBe('opensearch');
    expect(info.body.version.number).toMatch(/^2\.19\./);
  });

  it('ships the same documents tail prints, with deterministic ids, once', async () => {
    const log = join(dir, '0.log');
    await writeFile(
      log,
      [
        criLine(1, 'hello'),
        criLine(2, '{"a":{"b":1}}'),
        criLine(3, 'p-', 'stderr', 'P'),
        criLine(4, 'f', 'stderr'),
      ].join(''),
    );
    const index = uniqueIndex('ship');
    const printed = await runCli(['tail', '--once', '--from-beginning', '--host-name', 'n1', log]);
    const shipped = await ship(log, index);
    expect(shipped.stderr).toMatch(
      /shipped: 3 stored, 0 already stored, 0 dead-lettered, 0 dropped, 0 undelivered/,
    );
    expect(shipped.code).toBe(0);
    expect(shipped.stdout).toBe('');
    const stored = await docs(index);
    const byTime = (a: Record<string, unknown>, b: Record<string, unknown>) =>
      String(a['@timestamp']).localeCompare(String(b['@timestamp']));
    expect([...stored.values()].sort(byTime)).toEqual([...printed.docs].sort(byTime));
    for (const [id, doc] of stored)
      expect(id).toMatch(new RegExp(`^[0-9a-f]{24}-${(doc.log as { offset: number }).offset}$`));
    const again = await ship(log, index);
    expect(again.stderr).toMatch(/0 stored, 3 already stored/);
    expect((await docs(index)).size).toBe(3);
  });

  it('--manage-templates: a data stream whose json is flat_object, so apps that disagree on a type are all stored', async () => {
    const log = join(dir, '0.log');
    await writeFile(
      log,
      [
        criLine(1, '{"user":"bob"}'),
        criLine(2, '{"user":{"id":7,"name":"ann"}}'),
        criLine(3, '{"user":[1,"x"]}'),
      ].join(''),
    );
    const index = uniqueIndex('tpl');
    const res = await ship(log, index, ['--manage-templates']);
    expect(res.stderr).toContain(
      `installed index template ${templateName(index)} for ${index} (data stream)`,
    );
    expect(res.stderr).toMatch(/3 stored, 0 already stored, 0 dead-lettered/);
    expect(res.code).toBe(0);
    const tpl = await client.indices.getIndexTemplate({ name: templateName(index) });
    expect(tpl.body.index_templates[0]?.index_template.index_patterns).toEqual([index]);
    const ds = await client.transport.request({ method: 'GET', path: `/_data_stream/${index}` });
    expect((ds.body as { data_streams: unknown[] }).data_streams).toHaveLength(1);
    const mapping = await client.indices.getMapping({ index });
    const props = Object.values(
      mapping.body as Record<string, { mappings: { properties: Record<string, { type?: string }> } }>,
    )[0]!.mappings.properties;
    expect(props.json?.type).toBe('flat_object');
    expect(props['@timestamp']?.type).toBe('date_nanos');
    expect((await docs(index)).size).toBe(3);
    // what flat_object gives queries: a leaf by its dotted path, as a keyword
    const hit = await client.search({ index, body: { query: { term: { 'json.user.name': 'ann' } } } });
    expect(hit.body.hits.hits).toHaveLength(1);
  });

  it('flat_object indexes leaves up to 32,766 bytes: a longer one sends its document to the dead-letter index whole', async () => {
    const log = join(dir, '0.log');
    const big = 'x'.repeat(40_000);
    await writeFile(
      log,
      [criLine(1, JSON.stringify({ user: 'a', blob: big })), criLine(2, '{"n":1}')].join(''),
    );
    const index = uniqueIndex('leaf');
    const dlq = uniqueIndex('leafdlq');
    const res = await ship(log, index, ['--manage-templates', '--dlq-index', dlq]);
    expect(res.stderr).toMatch(/1 stored, 0 already stored, 1 dead-lettered, 0 dropped/);
    expect(res.code).toBe(0);
    const dead = [...(await docs(dlq)).values()];
    expect(dead).toHaveLength(1);
    expect(JSON.parse(String(dead[0]!.message)).json.blob).toBe(big);
    expect(String((dead[0]!.error as { message: string }).message)).toContain('immense term');
  });

  it('without templates, a mapping conflict sends the document to the dead-letter index, with the reason', async () => {
    const log = join(dir, '0.log');
    await writeFile(
      log,
      [criLine(1, '{"field":"text"}'), criLine(2, '{"field":{"nested":true}}'), criLine(3, 'after')].join(''),
    );
    const index = uniqueIndex('conflict');
    const dlq = uniqueIndex('dlq');
    const res = await ship(log, index, ['--dlq-index', dlq, '--concurrency', '1', '--batch-docs', '1']);
    expect(res.stderr).toMatch(/2 stored, 0 already stored, 1 dead-lettered, 0 dropped/);
    expect(res.code).toBe(0);
    const dead = [...(await docs(dlq)).values()];
    expect(dead).toHaveLength(1);
    expect(JSON.parse(String(dead[0]!.message))).toMatchObject({ json: { field: { nested: true } } });
    expect(dead[0]!.error).toMatchObject({ status: 400 });
    expect(String((dead[0]!.error as { type: string }).type)).toMatch(/parsing_exception/);
  });

  it('after SIGKILLs mid-stream and restarts, OpenSearch holds every line exactly once', async () => {
    const log = join(dir, '0.log');
    const positions = join(dir, 'positions.json');
    const index = uniqueIndex('kill');
    await writeFile(log, '');
    let seq = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        let text = '';
        for (let i = 0; i < 10; i++) text += criLine(seq, `seq=${seq++} ${'z'.repeat(40)}`);
        await appendFile(log, text);
        await sleep(10);
      }
    })();
    const args = [
      'tail',
      '--from-beginning',
      '--poll-interval-ms',
      '50',
      '--positions',
      positions,
      '--os',
      realUrl!,
      '--index',
      index,
      '--flush-ms',
      '50',
      '--batch-docs',
      '200',
      log,
    ];
    for (let round = 0; round < 4; round++) {
      const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
      await sleep(400 + Math.floor(Math.random() * 600));
      child.kill('SIGKILL');
      await new Promise((r) => child.on('close', r));
    }
    writing = false;
    await writer;
    const last = await runCli(['tail', '--once', ...args.slice(1)], { timeoutMs: 120_000 });
    expect(last.code).toBe(0);
    const seqs = [...(await docs(index)).values()].map(seqOf).sort((a, b) => a - b);
    expect(seqs.length).toBe(seq);
    expect(new Set(seqs).size).toBe(seq);
    expect(seqs[seq - 1]).toBe(seq - 1);
  });

  it('the agent: after SIGKILLs mid-stream and restarts, OpenSearch holds every line exactly once', async () => {
    const podDir = join(dir, 'pods', 'shop_web-1_0f3c2a91', 'web');
    await mkdir(podDir, { recursive: true });
    const log = join(podDir, '0.log');
    await writeFile(log, '');
    const index = uniqueIndex('agent');
    let seq = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        let text = '';
        for (let i = 0; i < 10; i++) text += criLine(seq, `seq=${seq++} ${'a'.repeat(40)}`);
        await appendFile(log, text);
        await sleep(10);
      }
    })();
    const args = [
      'agent',
      '--pods-dir',
      join(dir, 'pods'),
      '--state-dir',
      join(dir, 'state'),
      '--node-name',
      'n1',
      '--no-kube',
      '--output',
      'opensearch',
      '--os',
      realUrl!,
      '--index',
      index,
      '--http-addr',
      '127.0.0.1:0',
      '--flush-ms',
      '50',
      '--poll-interval-ms',
      '50',
      '--batch-docs',
      '200',
    ];
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
      await sleep(1500 + Math.floor(Math.random() * 1000));
      child.kill('SIGKILL');
      await new Promise((r) => child.on('close', r));
    }
    writing = false;
    await writer;
    const last = await runCli([...args, '--once'], { timeoutMs: 120_000 });
    expect(last.code).toBe(0);
    const stored = [...(await docs(index)).values()];
    const seqs = stored.map(seqOf).sort((a, b) => a - b);
    expect(seqs.length).toBe(seq);
    expect(new Set(seqs).size).toBe(seq);
    expect(seqs[seq - 1]).toBe(seq - 1);
    // the agent's documents carry the pod reference from the path
    expect(stored[0]).toMatchObject({ kubernetes: { namespace: 'shop', pod: { name: 'web-1' } } });
  });

  async function writeRejections(): Promise<number> {
    const res = await client.transport.request({ method: 'GET', path: '/_nodes/stats/thread_pool' });
    let n = 0;
    for (const node of Object.values(
      res.body.nodes as Record<string, { thread_pool: Record<string, { rejected: number }> }>,
    )) {
      n += node.thread_pool.write?.rejected ?? 0;
    }
    return n;
  }

  it('a 429 storm (the write queue full): every document stored exactly once', async () => {
    const log = join(dir, '0.log');
    const total = 6000;
    const lines: string[] = [];
    for (let i = 0; i < total; i++) lines.push(criLine(i, `seq=${i} ${'s'.repeat(60)}`));
    await writeFile(log, lines.join(''));
    const index = uniqueIndex('storm');
    const before = await writeRejections();
    // many small concurrent requests against the node's tiny write queue (scripts/os-test-server.sh,
    // LOGFERRY_OS_WRITE_QUEUE_SIZE in .ci/run)
    const res = await ship(log, index, [
      '--concurrency',
      '16',
      '--batch-docs',
      '25',
      '--retry-max-ms',
      '500',
    ]);
    expect(res.stderr).toMatch(
      new RegExp(`shipped: ${total} stored, 0 already stored, 0 dead-lettered, 0 dropped, 0 undelivered`),
    );
    expect(res.code).toBe(0);
    const rejected = (await writeRejections()) - before;
    // the storm happened (a node with the default queue of 10,000 rejects nothing here)
    if (process.env.LOGFERRY_TEST_OS_STORM === '1') expect(rejected).toBeGreaterThan(0);
    const seqs = new Set([...(await docs(index)).values()].map(seqOf));
    expect(seqs.size).toBe(total);
  });

  it('--es at an OpenSearch: one line naming it and the flag to use, exit 2, nothing sent', async () => {
    const log = join(dir, '0.log');
    await writeFile(log, criLine(1, 'x'));
    const index = uniqueIndex('wrong');
    const res = await runCli(['tail', '--once', '--from-beginning', '--es', realUrl!, '--index', index, log]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /^logferry: http:\/\/127\.0\.0\.1:\d+ is OpenSearch 2\.19\.\d+, not Elasticsearch: to ship to it, use --output opensearch --os URL \(config: output\.type: opensearch, output\.os\)\n$/,
    );
    expect((await docs(index)).size).toBe(0);
  });
});

const realEsUrl = process.env.LOGFERRY_TEST_ES_URL;

describe.skipIf(realEsUrl === undefined)(
  'the OpenSearch output at a real Elasticsearch (LOGFERRY_TEST_ES_URL)',
  () => {
    it('names it (its integ-test zip answers GET / with 405 and the product header) and exits 2', async () => {
      const log = join(dir, '0.log');
      await writeFile(log, criLine(1, 'x'));
      const res = await runCli([
        'tail',
        '--once',
        '--from-beginning',
        '--output',
        'opensearch',
        '--os',
        realEsUrl!,
        log,
      ]);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(
        /^logferry: http:\/\/127\.0\.0\.1:\d+ is Elasticsearch, not OpenSearch: to ship to it, use --es URL \(config: output\.es\)\n$/,
      );
    });
  },
);

describe('the server check (fakes)', () => {
  let es: FakeElasticsearch;
  let os: FakeOpenSearch;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    es = await startFakeElasticsearch();
    os = await startFakeOpenSearch();
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await es.close();
    await os.close();
  });

  it('--output opensearch at an Elasticsearch: one line naming it and the flag to use, exit 2', async () => {
    const log = join(dir, '0.log');
    await writeFile(log, criLine(1, 'x'));
    const res = await runCli([
      'tail',
      '--once',
      '--from-beginning',
      '--output',
      'opensearch',
      '--os',
      es.url,
      log,
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /^logferry: http:\/\/127\.0\.0\.1:\d+ is Elasticsearch 8\.\d+\.\d+, not OpenSearch: to ship to it, use --es URL \(config: output\.es\)\n$/,
    );
  });

  it('--os at something else (a plain web server): names what answered', async () => {
    const log = join(dir, '0.log');
    await writeFile(log, criLine(1, 'x'));
    // the fake OpenSearch without its root route stands for any HTTP server: use its 404 for /_x as /
    const other = `${os.url}/not-opensearch`;
    const res = await runCli(['tail', '--once', '--from-beginning', '--os', other, log]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('is neither Elasticsearch nor OpenSearch (GET / answered HTTP 404)');
  });

  it('the agent pointed at the wrong server is not ready, says so once, and sends no bulk request', async () => {
    const pods = join(dir, 'pods', 'ns_pod_uid', 'c');
    await mkdir(pods, { recursive: true });
    await writeFile(join(pods, '0.log'), criLine(1, 'x'));
    const bulkBefore = os.requests.filter((r) => r === 'POST /_bulk').length;
    // the shared agent runner (test/helpers/agent.ts): its flags, with no Kubernetes API
    const agent = startAgent({ dir, kubeUrl: 'http://127.0.0.1:1', esUrl: os.url, children }, [
      '--no-kube',
      '--retry-max-ms',
      '200',
      '--shutdown-timeout',
      '500',
    ]);
    const { child, logs } = agent;
    const url = await agent.url();
    let ready = 0;
    let status: { output?: { state?: string; lastError?: string } } = {};
    for (let i = 0; i < 100; i++) {
      ready = (await fetch(`${url}/readyz`)).status;
      status = (await (await fetch(`${url}/status`)).json()) as typeof status;
      if (status.output?.state === 'wrong-server') break;
      await sleep(50);
    }
    // long enough for several checks at --retry-max-ms 200: still one line
    await sleep(1000);
    child.kill('SIGTERM');
    await new Promise((r) => child.on('close', r));
    expect(ready).toBe(503);
    expect(status.output?.state).toBe('wrong-server');
    expect(status.output?.lastError).toContain('is OpenSearch 2.19.6, not Elasticsearch');
    const wrong = logs.filter((l) =>
      String(l.msg ?? l.message).includes('is OpenSearch 2.19.6, not Elasticsearch'),
    );
    expect(wrong).toHaveLength(1);
    expect(os.requests.filter((r) => r === 'POST /_bulk').length).toBe(bulkBefore);
  });
});
