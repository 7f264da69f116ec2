import { parsePodLogPath } from '../../enrich/k8s-paths.ts';
import { metricValue } from './prometheus.ts';
import type { AgentSample, StatusFile } from './sample.ts';

/**
 * What top shows, computed from two looks at the agent (pure; render.ts draws it). A rate is
 * undefined until there are two samples, and a figure the agent does not export (the output metrics
 * of an agent writing to stdout) is undefined too: the screen says "-" rather than a made-up 0.
 */
export interface TopView {
  url: string;
  version: string;
  uptimeSeconds: number;
  metadata: { state: string; cachedPods: number };
  input: { linesPerSec: number | undefined; bytesPerSec: number | undefined };
  output: {
    kind: string;
    health: OutputHealth;
    /** the sink's own word: idle, ok, retrying, unauthorized */
    state: string;
    lastError: string | null;
    docsPerSec: number | undefined;
    bytesPerSec: number | undefined;
    /** records in the output: queued, in flight or waiting for a retry */
    queuedDocs: number | undefined;
    inflightRequests: number | undefined;
    retriesPerMin: number | undefined;
    deadLettersPerMin: number | undefined;
  };
  buffer: { usedBytes: number; limitBytes: number };
  files: { total: number; lagging: number; lagBytes: number; rows: FileRow[] };
  /** set while the latest look failed and the view is the one before it */
  stale?: string | undefined;
}

/**
 * healthy: delivering (or nothing to deliver yet); retrying: the output failed and is being retried;
 * down: it cannot deliver without someone acting (unauthorized: credentials refused).
 */
export type OutputHealth = 'healthy' | 'retrying' | 'down';

export interface FileRow {
  path: string;
  /** namespace/pod/container, or undefined for a file outside the kubelet layout */
  pod: string | undefined;
  lagBytes: number;
  state: string;
}

export function outputHealth(output: { healthy: boolean; state: string }): OutputHealth {
  if (output.healthy) return 'healthy';
  return output.state === 'retrying' ? 'retrying' : 'down';
}

function podOf(f: StatusFile): string | undefined {
  if (f.pod === null) return undefined;
  if (f.pod !== undefined) return `${f.pod.namespace}/${f.pod.name}/${f.pod.container}`;
  // an agent from before /status had `pod`
  const ref = parsePodLogPath(f.path);
  return ref === undefined ? undefined : `${ref.namespace}/${ref.podName}/${ref.container}`;
}

/** Most lag first; equal lag by path, so that rows do not jump about between refreshes. */
export function byLag(a: FileRow, b: FileRow): number {
  if (a.lagBytes !== b.lagBytes) return b.lagBytes - a.lagBytes;
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/**
 * Per second between two counter readings. A counter that went down means the agent restarted in
 * between: as Prometheus' rate() does, its whole new value is the increase.
 */
export function rate(prev: number | undefined, cur: number | undefined, seconds: number): number | undefined {
  if (prev === undefined || cur === undefined || !(seconds > 0)) return undefined;
  const increase = cur >= prev ? cur - prev : cur;
  return increase / seconds;
}

const RECORDS = 'logferry_records_total';

export function buildView(url: string, cur: AgentSample, prev?: AgentSample): TopView {
  const seconds = prev === undefined ? 0 : (cur.atMs - prev.atMs) / 1000;
  const perSec = (name: string, labels?: Record<string, string>) =>
    prev === undefined
      ? undefined
      : rate(metricValue(prev.metrics, name, labels), metricValue(cur.metrics, name, labels), seconds);
  const perMin = (name: string, labels?: Record<string, string>) => {
    const r = perSec(name, labels);
    return r === undefined ? undefined : r * 60;
  };
  const sent = perSec(RECORDS, { outcome: 'sent' });
  const duplicates = perSec(RECORDS, { outcome: 'duplicate' });
  const { status } = cur;
  const rows = status.files
    .map((f) => ({ path: f.path, pod: podOf(f), lagBytes: Math.max(0, f.lag), state: f.state }))
    .sort(byLag);
  const lagging = rows.filter((r) => r.lagBytes > 0);
  return {
    url,
    version: status.version,
    uptimeSeconds: status.uptimeSeconds,
    metadata: { state: status.metadata.state, cachedPods: status.metadata.cachedPods },
    input: {
      linesPerSec: perSec('logferry_lines_read_total'),
      bytesPerSec: perSec('logferry_bytes_read_total'),
    },
    output: {
      kind: status.output.kind,
      health: outputHealth(status.output),
      state: status.output.state,
      lastError: status.output.lastError,
      // documents the cluster holds now: stored, or found already stored (a resend after a restart)
      docsPerSec: sent === undefined ? undefined : sent + (duplicates ?? 0),
      bytesPerSec: perSec('logferry_output_bytes_total'),
      queuedDocs: metricValue(cur.metrics, 'logferry_output_queued_records'),
      inflightRequests: metricValue(cur.metrics, 'logferry_inflight_requests'),
      retriesPerMin: perMin(RECORDS, { outcome: 'retried' }),
      deadLettersPerMin: perMin(RECORDS, { outcome: 'dead_lettered' }),
    },
    buffer: { usedBytes: status.buffer.waitingBytes, limitBytes: status.buffer.limitBytes },
    files: {
      total: rows.length,
      lagging: lagging.length,
      lagBytes: lagging.reduce((n, r) => n + r.lagBytes, 0),
      rows,
    },
  };
}
