import type { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { MetadataStatus } from '../../../src/enrich/types.ts';
import { SinkCounters } from '../../../src/sink/counters.ts';
import type { FileStatus } from '../../../src/source/tailer.ts';
import { SourceCounters } from '../../../src/telemetry/counters.ts';
import type { Logger } from '../../../src/telemetry/logger.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';

const silent: Logger = { info: () => {}, warn: () => {}, error: () => {} };

/** Every logferry_ sample after one scrape, keyed `name{label="value"}`. */
async function scrape(registry: Registry): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const metric of await registry.getMetricsAsJSON()) {
    if (!metric.name.startsWith('logferry_')) continue;
    for (const v of metric.values as Array<{
      value: number;
      labels: Record<string, string | number>;
      metricName?: string;
    }>) {
      const labels = Object.entries(v.labels)
        .map(([k, l]) => `${k}="${l}"`)
        .join(',');
      out.set(`${v.metricName ?? metric.name}${labels === '' ? '' : `{${labels}}`}`, v.value);
    }
  }
  return out;
}

function file(path: string, size: number, readPos: number): FileStatus {
  return { path, state: 'active', committed: readPos, readPos, size, lag: size - readPos, pendingBatches: 0 };
}

function setup() {
  const source = new SourceCounters(silent);
  const sink = new SinkCounters();
  const budget = { used: 0, limit: 64 << 20 };
  const state = {
    files: [] as FileStatus[],
    metadata: { state: 'syncing', cachedPods: 0, misses: 0, lastError: undefined } as MetadataStatus,
    healthy: true,
  };
  const nodes = { failures: 0, recoveries: 0, down: 0 };
  const metrics = createMetrics({
    source,
    sink,
    budget,
    files: () => state.files,
    metadata: () => state.metadata,
    output: () => ({ healthy: state.healthy }),
    nodes,
  });
  return { source, sink, budget, state, nodes, metrics };
}

describe('createMetrics', () => {
  it('exports every counter as exactly its source number, however often it is scraped', async () => {
    const { source, sink, state, metrics } = setup();
    // a labelled counter has no sample for a label value it has not seen (undefined)
    const expected = () =>
      new Map<string, number | undefined>([
        ['logferry_lines_read_total', source.lines],
        ['logferry_bytes_read_total', source.bytes],
        ['logferry_parse_errors_total', source.parseErrors],
        ['logferry_lines_split_total', source.splits],
        ['logferry_rotations_total', source.rotations],
        ['logferry_skipped_bytes_total', source.skipped],
        ['logferry_files_unreadable_total{code="EACCES"}', source.unreadable.get('EACCES')],
        ['logferry_files_unreadable_total{code="EIO"}', source.unreadable.get('EIO')],
        ['logferry_records_total{outcome="sent"}', sink.sent],
        ['logferry_records_total{outcome="duplicate"}', sink.duplicates],
        ['logferry_records_total{outcome="retried"}', sink.retried],
        ['logferry_records_total{outcome="dead_lettered"}', sink.deadLettered],
        ['logferry_records_total{outcome="dropped"}', sink.dropped],
        ['logferry_bulk_requests_total', sink.requests],
        ['logferry_bulk_request_failures_total', sink.requestFailures],
        ['logferry_bulk_request_splits_total', sink.splits],
        ['logferry_output_wrong_server_total', sink.wrongServer],
        ['logferry_output_bytes_total', sink.bytesSent],
        ['logferry_metadata_misses_total', state.metadata.misses],
        ['logferry_metadata_api_errors_total', state.metadata.apiErrors ?? 0],
      ]);
    const check = async () => {
      const got = await scrape(metrics.registry);
      for (const [name, value] of expected()) expect([name, got.get(name)]).toEqual([name, value]);
    };
    await check();
    for (let round = 1; round <= 3; round++) {
      source.linesRead(10 * round);
      source.bytesRead(1000 * round);
      source.parseError('cri');
      source.lineSplit();
      source.rotated('/a', 'rename');
      source.skippedBytes('/a', 7);
      source.fileUnreadable('/a', 'EACCES');
      if (round === 2) source.fileUnreadable('/b', 'EIO');
      sink.sent += 5;
      sink.duplicates += 1;
      sink.retried += 2;
      sink.deadLettered += 1;
      sink.dropped += round;
      sink.requests += 3;
      sink.requestFailures += 1;
      sink.splits += 1;
      sink.wrongServer += round;
      sink.bytesSent += 4096;
      state.metadata = {
        ...state.metadata,
        misses: state.metadata.misses + 2,
        apiErrors: (state.metadata.apiErrors ?? 0) + round,
      };
      // scraping twice without a change must not count anything twice
      await check();
      await check();
    }
    const got = await scrape(metrics.registry);
    expect(got.get('logferry_lines_read_total')).toBe(60);
    expect(got.get('logferry_files_unreadable_total{code="EACCES"}')).toBe(3);
    expect(got.get('logferry_files_unreadable_total{code="EIO"}')).toBe(1);
  });

  it('reads the gauges at scrape time', async () => {
    const { source, sink, budget, state, nodes, metrics } = setup();
    source.fileOpened('/a');
    source.fileOpened('/b');
    source.fileClosed('/a');
    sink.inFlight = 2;
    sink.queued = 300;
    budget.used = 12_345;
    state.files = [file('/a', 1000, 400), file('/b', 50, 50), file('/c', 10, 20)];
    state.metadata = { state: 'synced', cachedPods: 42, misses: 0, lastError: undefined };
    let got = await scrape(metrics.registry);
    expect(got.get('logferry_files_open')).toBe(1);
    expect(got.get('logferry_inflight_requests')).toBe(2);
    expect(got.get('logferry_output_queued_records')).toBe(300);
    expect(got.get('logferry_buffer_bytes')).toBe(12_345);
    expect(got.get('logferry_buffer_limit_bytes')).toBe(64 << 20);
    // a file read past its known size (it grew since the last stat) adds nothing, it does not subtract
    expect(got.get('logferry_lag_bytes')).toBe(600);
    expect(got.get('logferry_metadata_cached_pods')).toBe(42);
    expect(got.get('logferry_metadata_synced')).toBe(1);
    expect(got.get('logferry_output_up')).toBe(1);
    expect(got.get('logferry_output_nodes_down')).toBe(0);

    state.healthy = false;
    Object.assign(nodes, { failures: 3, recoveries: 2, down: 1 });
    state.metadata = { state: 'unreachable', cachedPods: 42, misses: 0, lastError: 'ECONNREFUSED' };
    state.files = [];
    got = await scrape(metrics.registry);
    expect(got.get('logferry_output_up')).toBe(0);
    expect(got.get('logferry_output_nodes_down')).toBe(1);
    expect(got.get('logferry_output_node_failures_total')).toBe(3);
    expect(got.get('logferry_output_node_recoveries_total')).toBe(2);
    expect(got.get('logferry_metadata_synced')).toBe(0);
    expect(got.get('logferry_lag_bytes')).toBe(0);
  });

  it('observes bulk request durations in a histogram', async () => {
    const { metrics } = setup();
    metrics.observeRequest(0.02);
    metrics.observeRequest(0.3);
    metrics.observeRequest(12);
    const got = await scrape(metrics.registry);
    expect(got.get('logferry_bulk_request_duration_seconds_count')).toBe(3);
    expect(got.get('logferry_bulk_request_duration_seconds_sum')).toBeCloseTo(12.32);
    expect(got.get('logferry_bulk_request_duration_seconds_bucket{le="0.025"}')).toBe(1);
    expect(got.get('logferry_bulk_request_duration_seconds_bucket{le="0.5"}')).toBe(2);
    expect(got.get('logferry_bulk_request_duration_seconds_bucket{le="10"}')).toBe(2);
    expect(got.get('logferry_bulk_request_duration_seconds_bucket{le="+Inf"}')).toBe(3);
  });

  it('uses its own registry, with process metrics and no unbounded labels', async () => {
    const first = setup();
    // an errno code is a short, fixed set of values, unlike the file's path
    first.source.fileUnreadable('/var/log/pods/a/b/0.log', 'EACCES');
    const a = first.metrics.registry;
    const b = setup().metrics.registry;
    expect(a).not.toBe(b);
    const text = await a.metrics();
    expect(text).toContain('# TYPE process_cpu_seconds_total counter');
    expect(text).toContain('# TYPE logferry_records_total counter');
    const labels = new Set<string>();
    for (const metric of await a.getMetricsAsJSON()) {
      if (!metric.name.startsWith('logferry_')) continue;
      if (String(metric.type) === 'counter') expect(metric.name).toMatch(/_total$/);
      for (const v of metric.values) for (const k of Object.keys(v.labels)) labels.add(k);
    }
    expect([...labels].sort()).toEqual(['code', 'le', 'outcome']);
  });

  it('leaves out output and metadata metrics it has no source for', async () => {
    const metrics = createMetrics({
      source: new SourceCounters(silent),
      budget: { used: 0, limit: 1 },
      files: () => [],
    });
    const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names).toContain('logferry_lines_read_total');
    expect(names).toContain('logferry_bulk_request_duration_seconds');
    for (const absent of [
      'logferry_records_total',
      'logferry_output_up',
      'logferry_output_nodes_down',
      'logferry_output_node_failures_total',
      'logferry_metadata_synced',
    ]) {
      expect(names).not.toContain(absent);
    }
  });
});
