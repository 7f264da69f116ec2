// Several Elasticsearch URLs through the official client's pool, against three fake nodes (real HTTP servers):
// a stopped node neither fails a bulk nor stalls it, its failure and its recovery are each seen once, and it
// gets requests again once it is back. The same against three real nodes: es-cluster.test.ts.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clientTransport, createClient } from '../../src/sink/elasticsearch/client.ts';
import { NodeWatcher } from '../../src/sink/elasticsearch/node-watcher.ts';
import { SourceCounters } from '../../src/telemetry/counters.ts';
import type { Logger } from '../../src/telemetry/logger.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { type FakeElasticsearch, startFakeElasticsearch } from '../fakes/fake-elasticsearch.ts';
import { criLine, runCli, tempDir } from '../helpers/cli.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function bulkBody(from: number, n: number): Buffer {
  let s = '';
  for (let i = from; i < from + n; i++)
    s += `{"create":{"_index":"logs-nodes","_id":"d${i}"}}\n{"seq":${i}}\n`;
  return Buffer.from(s);
}

describe('several Elasticsearch URLs (fake nodes)', () => {
  let fakes: FakeElasticsearch[] = [];
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    for (const f of fakes) await f.close();
    fakes = [];
  });

  async function setup(n: number) {
    fakes = await Promise.all(Array.from({ length: n }, () => startFakeElasticsearch()));
    const lines: Array<{ level: string; message: string }> = [];
    const log: Logger = {
      info: (message) => lines.push({ level: 'info', message }),
      warn: (message) => lines.push({ level: 'warn', message }),
      error: (message) => lines.push({ level: 'error', message }),
    };
    const watcher = new NodeWatcher(log, n, 200);
    const client = createClient(
      { nodes: fakes.map((f) => f.url), compression: false, requestTimeoutMs: 5_000 },
      watcher,
    );
    const transport = clientTransport(client);
    closers.push(() => transport.close());
    return { watcher, transport, lines };
  }

  const bulks = (f: FakeElasticsearch) => f.requests.filter((r) => r.path === '/_bulk').length;

  it('sends past a stopped node at once, logs its failure once and its recovery once, then uses it again', async () => {
    const { watcher, transport, lines } = await setup(3);
    const [, down] = fakes as [FakeElasticsearch, FakeElasticsearch, FakeElasticsearch];
    await down.stop();
    let seq = 0;
    // every request answers 200 although a third of them first reach the stopped node
    for (let i = 0; i < 9; i++) {
      const res = await transport.bulk(bulkBody(seq, 10));
      seq += 10;
      expect(res.status).toBe(200);
    }
    expect(fakes.reduce((n, f) => n + f.count('logs-nodes'), 0)).toBe(90);
    expect({ failures: watcher.failures, recoveries: watcher.recoveries, down: watcher.down }).toEqual({
      failures: 1,
      recoveries: 0,
      down: 1,
    });

    await down.restart();
    // the pool pings the failed node 200 ms (here) after its failure; requests meanwhile go elsewhere
    const deadline = Date.now() + 10_000;
    while (watcher.recoveries === 0 && Date.now() < deadline) {
      expect((await transport.bulk(bulkBody(seq, 10))).status).toBe(200);
      seq += 10;
      await sleep(50);
    }
    expect({ failures: watcher.failures, recoveries: watcher.recoveries, down: watcher.down }).toEqual({
      failures: 1,
      recoveries: 1,
      down: 0,
    });
    const before = bulks(down);
    for (let i = 0; i < 6; i++) await transport.bulk(bulkBody(seq + i * 10, 10));
    // round robin again: the restarted node takes its share
    expect(bulks(down) - before).toBeGreaterThanOrEqual(1);

    const down2 = lines.filter((l) => l.message.includes(down.url.replace(/\/$/, '')));
    expect(down2.map((l) => l.level)).toEqual(['warn', 'info']);
    expect(down2[0]!.message).toMatch(
      /failed \(connection error or HTTP 502\/503\/504\); requests go to the 2 other node/,
    );
    expect(down2[1]!.message).toMatch(/answers again/);
  });

  it('with every node down, the bulk rejects (the output retries with backoff) and each failure is logged once', async () => {
    const { watcher, transport, lines } = await setup(2);
    for (const f of fakes) await f.stop();
    for (let i = 0; i < 3; i++)
      await expect(transport.bulk(bulkBody(i * 10, 10))).rejects.toThrow(/ECONNREFUSED|connect/i);
    expect(watcher.failures).toBe(2);
    expect(watcher.down).toBe(2);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(2);
    for (const f of fakes) await f.restart();
    const deadline = Date.now() + 10_000;
    while (watcher.down > 0 && Date.now() < deadline) {
      await transport.bulk(bulkBody(100, 10)).catch(() => {});
      await sleep(50);
    }
    expect(watcher.recoveries).toBe(2);
    expect(lines.filter((l) => l.level === 'info')).toHaveLength(2);
  });

  it('one URL: a down node is counted, not logged by the watcher, and the client does not retry by itself', async () => {
    const { watcher, transport, lines } = await setup(1);
    const [only] = fakes as [FakeElasticsearch];
    await only.stop();
    await expect(transport.bulk(bulkBody(0, 10))).rejects.toThrow();
    expect(watcher.failures).toBe(1);
    expect(lines).toEqual([]);
    await only.restart();
    expect((await transport.bulk(bulkBody(0, 10))).status).toBe(200);
    expect(watcher.recoveries).toBe(1);
    expect(only.requests.filter((r) => r.path === '/_bulk')).toHaveLength(1);
  });

  it('exports the failures, recoveries and nodes down as metrics', async () => {
    const { watcher, transport } = await setup(3);
    await fakes[2]!.stop();
    for (let i = 0; i < 3; i++) await transport.bulk(bulkBody(i * 10, 10));
    const metrics = createMetrics({
      source: new SourceCounters({ info: () => {}, warn: () => {}, error: () => {} }),
      budget: { used: 0, limit: 1 },
      files: () => [],
      nodes: watcher,
    });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^logferry_output_node_failures_total 1$/m);
    expect(text).toMatch(/^logferry_output_node_recoveries_total 0$/m);
    expect(text).toMatch(/^logferry_output_nodes_down 1$/m);
  });

  it('tail --es with three URLs and one node down: everything stored once, the failure logged once', async () => {
    fakes = await Promise.all(Array.from({ length: 3 }, () => startFakeElasticsearch()));
    await fakes[1]!.stop();
    const { dir, cleanup } = await tempDir();
    closers.push(cleanup);
    const log = join(dir, '0.log');
    await writeFile(log, Array.from({ length: 3_000 }, (_, i) => criLine(i, `line ${i}`)).join(''));
    const res = await runCli([
      'tail',
      '--once',
      '--from-beginning',
      '--es',
      fakes.map((f) => f.url).join(','),
      '--index',
      'logs-nodes',
      '--batch-docs',
      '100',
      log,
    ]);
    expect(res.code).toBe(0);
    expect(fakes.reduce((n, f) => n + f.count('logs-nodes'), 0)).toBe(3_000);
    const down = fakes[1]!.url.replace(/\/$/, '');
    expect(res.stderr.split('\n').filter((l) => l.includes(`node ${down} failed`))).toHaveLength(1);
    // the bulks moved on to the other nodes: the output itself never had to retry
    expect(res.stderr).not.toContain('cannot reach Elasticsearch');
    expect(res.stderr).toMatch(/3000 stored, 0 already stored/);
  });
});
