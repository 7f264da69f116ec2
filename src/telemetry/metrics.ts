import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { MetadataStatus } from '../enrich/types.ts';
import { IDLE_WAKE_MS } from '../server/event-loop.ts';
import type { SinkCounters } from '../sink/counters.ts';
import type { NodeCounters } from '../sink/elasticsearch/node-watcher.ts';
import type { FileStatus } from '../source/tailer.ts';
import type { SourceCounters } from './counters.ts';

/** Where the metrics read from; everything is read at scrape time. */
export interface MetricsSources {
  source: SourceCounters;
  /** the Elasticsearch sink's counters; without them (stdout output) the output metrics are not exported */
  sink?: SinkCounters | undefined;
  budget: { readonly used: number; readonly limit: number };
  files: () => FileStatus[];
  /** without it (enrichment off) the metadata metrics are not exported */
  metadata?: (() => MetadataStatus) | undefined;
  /** for logferry_output_up; added to the first draft, which had no way to tell output health */
  output?: (() => { healthy: boolean }) | undefined;
  /** the Elasticsearch nodes' failures and recoveries (issue #14); absent for stdout and Elastic Cloud */
  nodes?: NodeCounters | undefined;
}

export interface Metrics {
  registry: Registry;
  /** one bulk request's duration; the agent wiring calls it (e.g. as SinkCounters.observeRequest) */
  observeRequest(seconds: number): void;
}

const PREFIX = 'logferry_';

/** Upper bounds for bulk request durations: a fast local cluster up to a request close to its timeout. */
const REQUEST_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type Outcome = 'sent' | 'duplicate' | 'retried' | 'dead_lettered' | 'dropped';

/**
 * The prom-client side of telemetry; nothing else imports prom-client. The pipeline counts in plain
 * numbers (SourceCounters, SinkCounters) and every metric here copies its number in a collect callback,
 * so a line read costs an addition, not a metric update, and nothing is done between scrapes.
 *
 * A counter is exported as the exact value of its source (reset, then incremented by the total) rather
 * than by deltas: there is no remembered state to drift, and two scrapes in a row report the same number.
 * A separate registry keeps several agents in one process (tests) apart from each other and from the
 * global one.
 */
export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  // prom-client samples event-loop lag with its own timer, every 10 ms by default: 100 wake-ups a
  // second of an idle agent, the largest part of its idle CPU (docs/PERFORMANCE.md, section 4)
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: IDLE_WAKE_MS });
  const { source, sink, budget, metadata, output, nodes } = sources;

  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name: PREFIX + name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name: PREFIX + name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });

  counter('lines_read_total', 'Lines read from log files.', () => source.lines);
  counter('bytes_read_total', 'Bytes read from log files.', () => source.bytes);
  counter('parse_errors_total', 'Lines that could not be parsed in their format.', () => source.parseErrors);
  counter('lines_split_total', 'Lines longer than the maximum line length, split.', () => source.splits);
  counter('records_filtered_total', 'Records dropped by the configured filters.', () => source.filtered);
  counter('records_truncated_total', 'Messages cut to the record-size limit.', () => source.truncated);
  for (const [unit, read] of [
    ['lines', (t: { lines: number }) => t.lines],
    ['bytes', (t: { bytes: number }) => t.bytes],
  ] as const) {
    new Counter({
      name: `${PREFIX}throttled_${unit}_total`,
      help: `Records (${unit}) over the per-container rate limit, by namespace and action (drop: dropped; pause: read later).`,
      labelNames: ['namespace', 'action'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [key, t] of source.throttled) {
          const [namespace, action] = key.split('\u0000');
          this.inc({ namespace, action }, read(t));
        }
      },
    });
  }
  counter('rotations_total', 'File rotations and truncations followed.', () => source.rotations);
  counter(
    'skipped_bytes_total',
    'Bytes of deleted files released unread (the file was gone for longer than allowed).',
    () => source.skipped,
  );
  new Counter({
    name: `${PREFIX}files_unreadable_total`,
    help: 'Times a matched log file became unreadable (could not be opened or read), by errno code; it is retried.',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [code, n] of source.unreadable) this.inc({ code }, n);
    },
  });
  gauge('files_open', 'Log files currently open.', () => source.filesOpen);
  gauge(
    'records_workers_running',
    'Records worker threads running (one starts with work and ends after workerIdleMs without).',
    () => source.workersRunning,
  );
  counter('records_worker_starts_total', 'Records worker threads started.', () => source.workerStarts);
  gauge('buffer_bytes', 'Bytes read and not yet acknowledged by the output.', () => budget.used);
  gauge(
    'buffer_limit_bytes',
    'Byte budget: reading pauses while the buffer holds this much.',
    () => budget.limit,
  );
  gauge('lag_bytes', 'Bytes written to followed files and not read yet, summed over files.', () => {
    let lag = 0;
    for (const f of sources.files()) lag += Math.max(0, f.size - f.readPos);
    return lag;
  });

  const histogram = new Histogram({
    name: `${PREFIX}bulk_request_duration_seconds`,
    help: 'Duration of bulk requests to Elasticsearch.',
    buckets: REQUEST_BUCKETS_SECONDS,
    registers: [registry],
  });

  if (sink !== undefined) {
    const outcomes: Record<Outcome, () => number> = {
      sent: () => sink.sent,
      duplicate: () => sink.duplicates,
      retried: () => sink.retried,
      dead_lettered: () => sink.deadLettered,
      dropped: () => sink.dropped,
    };
    new Counter({
      name: `${PREFIX}records_total`,
      help: 'Records by outcome: sent, duplicate (already stored), retried (per attempt), dead_lettered, dropped.',
      labelNames: ['outcome'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [outcome, read] of Object.entries(outcomes)) this.inc({ outcome }, read());
      },
    });
    counter('bulk_requests_total', 'Bulk requests sent.', () => sink.requests);
    counter(
      'bulk_request_failures_total',
      'Bulk requests that failed as a whole.',
      () => sink.requestFailures,
    );
    counter('bulk_request_splits_total', 'Bulk request bodies split after 413 or 400.', () => sink.splits);
    counter(
      'output_wrong_server_total',
      'Server checks (GET /) that found another product than the output ships to (no bulk is sent to it).',
      () => sink.wrongServer,
    );
    counter('output_bytes_total', 'Bulk request body bytes sent.', () => sink.bytesSent);
    gauge('inflight_requests', 'Bulk requests in flight.', () => sink.inFlight);
    gauge(
      'output_queued_records',
      'Records in the output: queued, in flight or waiting for a retry.',
      () => sink.queued,
    );
  }
  if (output !== undefined) {
    gauge('output_up', '1 while the output can deliver (not retrying, not unauthorized).', () =>
      output().healthy ? 1 : 0,
    );
  }
  if (nodes !== undefined) {
    counter(
      'output_node_failures_total',
      'Times an Elasticsearch node stopped answering (connection error or HTTP 502/503/504) and was taken out of the pool.',
      () => nodes.failures,
    );
    counter(
      'output_node_recoveries_total',
      'Times a failed Elasticsearch node answered again and was put back in the pool.',
      () => nodes.recoveries,
    );
    gauge('output_nodes_down', 'Elasticsearch nodes failed now (of the configured URLs).', () => nodes.down);
  }
  if (metadata !== undefined) {
    gauge('metadata_cached_pods', 'Pods in the metadata cache.', () => metadata().cachedPods);
    counter('metadata_misses_total', 'Lookups of pods not in the metadata cache.', () => metadata().misses);
    gauge('metadata_synced', '1 once the pod watch has synced.', () =>
      metadata().state === 'synced' ? 1 : 0,
    );
    counter(
      'metadata_api_errors_total',
      'Failed Kubernetes API lists and watches (unreachable, refused by RBAC, bad token); each is retried.',
      () => metadata().apiErrors ?? 0,
    );
  }

  return { registry, observeRequest: (seconds) => histogram.observe(seconds) };
}
