// `logferry tail --es`: the CLI against a fake Elasticsearch (always) and a real one (when
// LOGFERRY_TEST_ES_URL names one; .ci/run starts it with scripts/es-test-server.sh).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { templateName } from '../../src/sink/elasticsearch/templates.ts';
import { type FakeElasticsearch, startFakeElasticsearch } from '../fakes/fake-elasticsearch.ts';
import { BIN, criLine, runCli, sleep, stderrOfRun, tempDir } from '../helpers/cli.ts';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  await cleanup();
});

const realUrl = process.env.LOGFERRY_TEST_ES_URL;

interface Target {
  url: string;
  /** every stored document of an index, by _id */
  docs(index: string): Promise<Map<string, Record<string, unknown>>>;
}

function clientTarget(url: string): Target {
  const client = new Client({ node: url, maxRetries: 0 });
  return {
    url,
    async docs(index) {
      await client.indices.refresh({ index, ignore_unavailable: true });
      const out = new Map<string, Record<string, unknown>>();
      const res = await client.search<Record<string, unknown>>({
        index,
        size: 10_000,
        query: { match_all: {} },
        ignore_unavailable: true,
      });
      for (const hit of res.hits.hits) out.set(hit._id!, hit._source!);
      return out;
    },
  };
}

const uniqueIndex = (name: string) => `logs-${name}-${randomBytes(3).toString('hex')}`;

function seqOf(doc: Record<string, unknown>): number {
  return Number(/seq=(\d+)/.exec(String(doc.message))?.[1]);
}

describe.each([
  ['fake', undefined, '8.19.21'],
  // the fake speaking as 9.x runs everywhere; a real 9.x node runs in `npm run test:es9` (.ci/run)
  ['fake 9.x', undefined, '9.1.0'],
  ['real', realUrl, undefined],
])('shipping to %s Elasticsearch', (label, url, fakeVersion) => {
  let fake: FakeElasticsearch | undefined;
  let target: Target;
  const skip = label === 'real' && url === undefined;

  beforeAll(async () => {
    if (skip) return;
    if (url === undefined) fake = await startFakeElasticsearch({ version: fakeVersion });
    target = clientTarget(url ?? fake!.url);
  });
  afterAll(async () => {
    await fake?.close();
  });

  it.skipIf(skip)('ships the same documents tail prints, with deterministic ids, once', async () => {
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
    const shipped = await runCli([
      'tail',
      '--once',
      '--from-beginning',
      '--host-name',
      'n1',
      '--es',
      target.url,
      '--index',
      index,
      log,
    ]);
    expect(shipped.code).toBe(0);
    expect(shipped.stdout).toBe('');
    expect(shipped.stderr).toMatch(
      /shipped: 3 stored, 0 already stored, 0 dead-lettered, 0 dropped, 0 undelivered/,
    );
    const stored = await target.docs(index);
    const byTime = (a: Record<string, unknown>, b: Record<string, unknown>) =>
      String(a['@timestamp']).localeCompare(String(b['@timestamp']));
    expect([...stored.values()].sort(byTime)).toEqual([...printed.docs].sort(byTime));
    for (const [id, doc] of stored)
      expect(id).toMatch(new RegExp(`^[0-9a-f]{24}-${(doc.log as { offset: number }).offset}$`));

    // a second run without positions sends everything again: every document is already there
    const again = await runCli([
      'tail',
      '--once',
      '--from-beginning',
      '--es',
      target.url,
      '--index',
      index,
      log,
    ]);
    expect(again.stderr).toMatch(/0 stored, 3 already stored/);
    expect((await target.docs(index)).size).toBe(3);
  });

  /** `tail --once` of `log` into daily indexes `<index>-yyyy.MM.dd`, installing the templates first. */
  const shipWithTemplates = (log: string, index: string) =>
    runCli([
      'tail',
      '--once',
      '--from-beginning',
      '--manage-templates',
      '--es',
      target.url,
      '--index',
      `${index}-{yyyy.MM.dd}`,
      log,
    ]);

  it.skipIf(skip)('--manage-templates installs the index templates, then ships', async () => {
    const log = join(dir, '0.log');
    await writeFile(log, criLine(1, 'templated'));
    const index = uniqueIndex('tpl');
    const res = await shipWithTemplates(log, index);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain(`installed index template ${templateName(`${index}-*`)} for ${index}-*`);
    expect(res.stderr).toMatch(/1 stored/);
    const client = new Client({ node: target.url, maxRetries: 0 });
    const { index_templates } = await client.indices.getIndexTemplate({ name: templateName(`${index}-*`) });
    expect(index_templates[0]?.index_template.index_patterns).toEqual([`${index}-*`]);
    await client.close();
    expect((await target.docs(`${index}-2026.11.22`)).size).toBe(1);
  });

  it.skipIf(skip)(
    'with the templates, apps that disagree on a field type are all stored (json is flattened)',
    async () => {
      const log = join(dir, '0.log');
      await writeFile(
        log,
        [
          criLine(1, '{"user":"bob"}'),
          criLine(2, '{"user":{"id":7,"name":"ann"}}'),
          criLine(3, '{"user":[1,"x"]}'),
        ].join(''),
      );
      const index = uniqueIndex('flat');
      const res = await shipWithTemplates(log, index);
      expect(res.code).toBe(0);
      expect(res.stderr).toMatch(/3 stored, 0 already stored, 0 dead-lettered/);
      expect((await target.docs(`${index}-2026.11.22`)).size).toBe(3);
    },
  );

  it.skipIf(skip)(
    'a mapping conflict sends the document to the dead-letter index, with the reason',
    async () => {
      const log = join(dir, '0.log');
      await writeFile(
        log,
        [criLine(1, '{"field":"text"}'), criLine(2, '{"field":{"nested":true}}'), criLine(3, 'after')].join(
          '',
        ),
      );
      const index = uniqueIndex('conflict');
      const dlq = uniqueIndex('dlq');
      const res = await runCli([
        'tail',
        '--once',
        '--from-beginning',
        '--es',
        target.url,
        '--index',
        index,
        '--dlq-index',
        dlq,
        '--concurrency',
        '1',
        '--batch-docs',
        '1',
        log,
      ]);
      expect(res.code).toBe(0);
      expect(res.stderr).toMatch(/2 stored, 0 already stored, 1 dead-lettered, 0 dropped/);
      const dead = [...(await target.docs(dlq)).values()];
      expect(dead).toHaveLength(1);
      expect(JSON.parse(String(dead[0]!.message))).toMatchObject({ json: { field: { nested: true } } });
      expect(dead[0]!.error).toMatchObject({ status: 400 });
      expect(String((dead[0]!.error as { type: string }).type)).toMatch(/parsing_exception/);
    },
  );

  it.skipIf(skip)(
    'after SIGKILLs mid-stream and restarts, Elasticsearch holds every line exactly once',
    async () => {
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
        '--es',
        target.url,
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
      const last = await runCli(['tail', '--once', ...args.slice(1)]);
      expect(last.code).toBe(0);
      const docs = await target.docs(index);
      const seqs = [...docs.values()].map(seqOf).sort((a, b) => a - b);
      expect(seqs.length).toBe(seq);
      expect(new Set(seqs).size).toBe(seq);
      expect(seqs[seq - 1]).toBe(seq - 1);
    },
  );
});

describe('faults (fake Elasticsearch)', () => {
  let fake: FakeElasticsearch;
  beforeEach(async () => {
    fake = await startFakeElasticsearch();
  });
  afterEach(async () => {
    await fake.close();
  });

  it('a batch over the size limit is split and delivered', async () => {
    await fake.close();
    fake = await startFakeElasticsearch({ maxContentLength: 16 * 1024 });
    const log = join(dir, '0.log');
    await writeFile(
      log,
      Array.from({ length: 400 }, (_, i) => criLine(i, `seq=${i} ${'q'.repeat(100)}`)).join(''),
    );
    const res = await runCli([
      'tail',
      '--once',
      '--from-beginning',
      '--es',
      fake.url,
      '--index',
      'logs-split',
      log,
    ]);
    expect(res.code).toBe(0);
    expect(fake.count('logs-split')).toBe(400);
    expect(fake.requests.some((r) => r.status === 413)).toBe(true);
  });

  it('--pipeline sends documents through the ingest pipeline; dead letters bypass it', async () => {
    await fake.close();
    fake = await startFakeElasticsearch({ pipelines: ['logs-ok'] });
    const log = join(dir, '0.log');
    await writeFile(log, criLine(1, 'through the pipeline'));
    const ok = await runCli([
      'tail',
      '--once',
      '--from-beginning',
      '--es',
      fake.url,
      '--index',
      'logs-p',
      '--pipeline',
      'logs-ok',
      log,
    ]);
    expect(ok.stderr).toMatch(/1 stored/);
    expect(fake.requests.some((r) => r.url.includes('pipeline=logs-ok'))).toBe(true);
    // a pipeline that does not exist refuses every document: they land in the dead-letter index
    const bad = await runCli([
      'tail',
      '--once',
      '--from-beginning',
      '--es',
      fake.url,
      '--index',
      'logs-q',
      '--pipeline',
      'missing',
      log,
    ]);
    expect(bad.code).toBe(0);
    expect(bad.stderr).toMatch(/0 stored, 0 already stored, 1 dead-lettered, 0 dropped/);
    expect(fake.count('logs-logferry.dlq-default')).toBe(1);
  });

  it('credentials in an Elasticsearch URL never reach the logs', async () => {
    const log = join(dir, '0.log');
    await writeFile(log, criLine(1, 'x'));
    await fake.stop();
    const url = new URL(fake.url);
    const stderr = await stderrOfRun(
      [
        'tail',
        '--from-beginning',
        '--retry-max-ms',
        '200',
        '--es',
        `http://elastic:s3cr3t-pw@${url.host}`,
        log,
      ],
      // long enough for a start and a failed request on a loaded machine
      6000,
    );
    await fake.restart();
    expect(stderr).toMatch(/cannot reach Elasticsearch/);
    expect(stderr).not.toContain('s3cr3t-pw');
  });

  it('per-item 429s are retried item by item until everything is stored', async () => {
    fake.fault({ kind: 'item-status', status: 429, every: 3, count: 300 });
    const log = join(dir, '0.log');
    await writeFile(log, Array.from({ length: 600 }, (_, i) => criLine(i, `seq=${i}`)).join(''));
    const res = await runCli([
      'tail',
      '--once',
      '--from-beginning',
      '--es',
      fake.url,
      '--index',
      'logs-429',
      log,
    ]);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/600 stored, 0 already stored/);
    expect(fake.count('logs-429')).toBe(600);
  });

  // After copytruncate a file's offsets start over: under its old id each new line would take an
  // old line's _id, and `create` would answer 409 "already stored" for lines never stored.
  it.each([
    { name: 'shorter than its checkpoint', lines: 60 },
    { name: 'as long as before (the head tells it apart)', lines: 100 },
  ])('copytruncate while stopped, file now $name: the new lines get new ids, all stored', async (c) => {
    const log = join(dir, '0.log');
    const positions = join(dir, 'positions.json');
    const index = `logs-truncate-${c.lines}`;
    const ship = () =>
      runCli([
        'tail',
        '--once',
        '--from-beginning',
        '--positions',
        positions,
        '--es',
        fake.url,
        '--index',
        index,
        log,
      ]);
    await writeFile(log, Array.from({ length: 100 }, (_, i) => criLine(i, `seq=${1000 + i}`)).join(''));
    expect((await ship()).code).toBe(0);
    await writeFile(log, Array.from({ length: c.lines }, (_, i) => criLine(i, `seq=${2000 + i}`)).join(''));
    const res = await ship();
    expect(res.stderr).toMatch(new RegExp(`${c.lines} stored, 0 already stored`));
    expect(new Set(fake.docs(index).map((d) => seqOf(d.source))).size).toBe(100 + c.lines);
  });

  it('copytruncate while following: the lines after the truncation get new ids, all stored', async () => {
    const log = join(dir, '0.log');
    await writeFile(log, Array.from({ length: 100 }, (_, i) => criLine(i, `seq=${1000 + i}`)).join(''));
    const index = 'logs-truncate-live';
    const child = spawn(
      process.execPath,
      [
        BIN,
        'tail',
        '--from-beginning',
        '--poll-interval-ms',
        '50',
        '--flush-ms',
        '50',
        '--es',
        fake.url,
        '--index',
        index,
        log,
      ],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
    try {
      await fake.waitForCount(100, { index });
      // shorter than what was read, so the truncation is seen whenever the poll comes
      await writeFile(log, Array.from({ length: 60 }, (_, i) => criLine(i, `seq=${2000 + i}`)).join(''));
      await fake.waitForCount(160, { index, timeoutMs: 20_000 });
      expect(new Set(fake.docs(index).map((d) => seqOf(d.source))).size).toBe(160);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('close', r));
    }
  });

  it('a 30-second outage loses nothing: reading pauses, delivery resumes', async () => {
    const log = join(dir, '0.log');
    await writeFile(log, '');
    const child = spawn(
      process.execPath,
      [
        BIN,
        'tail',
        // the file is empty at start: reading it from 0 takes away the race between the
        // append below and the agent's start-up (at the end, a slow start skipped the lines)
        '--from-beginning',
        '--poll-interval-ms',
        '50',
        '--es',
        fake.url,
        '--index',
        'logs-outage',
        '--flush-ms',
        '100',
        '--retry-max-ms',
        '2000',
        log,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    try {
      await sleep(500);
      await appendFile(log, Array.from({ length: 100 }, (_, i) => criLine(i, `seq=${i}`)).join(''));
      await fake.waitForCount(100, { index: 'logs-outage' });
      const down = fake.outage(30_000);
      await sleep(200);
      for (let b = 1; b <= 10; b++) {
        await appendFile(
          log,
          Array.from({ length: 100 }, (_, i) => criLine(b * 100 + i, `seq=${b * 100 + i}`)).join(''),
        );
        await sleep(2000);
      }
      await down;
      await fake.waitForCount(1100, { index: 'logs-outage', timeoutMs: 30_000 });
      const seqs = fake.docs('logs-outage').map((d) => seqOf(d.source));
      expect(new Set(seqs).size).toBe(1100);
      expect(stderr).toMatch(/cannot reach Elasticsearch/);
      expect(stderr).toMatch(/accepts requests again/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('close', r));
    }
  }, 120_000);

  it('every item 429 for 10 s: nothing lost, and memory stays under the bound', async () => {
    const log = join(dir, '0.log');
    const fh = await open(log, 'w');
    // 40 MB of lines, well over the 8 MiB budget given below
    const line = (i: number) => criLine(i, `seq=${i} ${'m'.repeat(180)}`);
    let chunk = '';
    const total = 200_000;
    for (let i = 0; i < total; i++) {
      chunk += line(i);
      if (chunk.length > 1 << 20) {
        await fh.write(chunk);
        chunk = '';
      }
    }
    await fh.write(chunk);
    await fh.close();
    fake.fault({ kind: 'item-status', status: 429, forMs: 10_000 });
    const child = spawn(
      process.execPath,
      [
        // V8's heap limits as the README recommends for this budget (old space: 3 x budget + 64 MiB)
        '--max-old-space-size=88',
        '--max-semi-space-size=2',
        BIN,
        'tail',
        '--once',
        '--from-beginning',
        '--max-buffer-bytes',
        '8MiB',
        '--retry-max-ms',
        '1000',
        '--es',
        fake.url,
        '--index',
        'logs-storm',
        log,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let peakKiB = 0;
    const sampler = setInterval(async () => {
      try {
        const status = await (await import('node:fs/promises')).readFile(`/proc/${child.pid}/status`, 'utf8');
        const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
        peakKiB = Math.max(peakKiB, kib);
      } catch {
        // exited
      }
    }, 100);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    clearInterval(sampler);
    expect(code).toBe(0);
    expect(fake.count('logs-storm')).toBe(total);
    // the bound stated in the README: old space (88) + 4.5 x budget + 2 x concurrency x batch bytes + 60 MiB
    expect(peakKiB).toBeGreaterThan(0);
    expect(peakKiB / 1024).toBeLessThan(88 + 4.5 * 8 + 2 * 2 * 8 + 60);
  }, 120_000);
});
