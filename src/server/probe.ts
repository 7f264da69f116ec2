import type { MetadataStatus } from '../enrich/types.ts';
import type { OutputState } from '../sink/elasticsearch/sink.ts';
import type { FileStatus } from '../source/tailer.ts';

/** How the output is doing, as the health endpoints and /status see it. */
export interface OutputStatus {
  kind: 'elasticsearch' | 'opensearch' | 'stdout';
  /** the sink's own state word, shown as is (e.g. 'ok', 'retrying') */
  state: string;
  /** the output can deliver now; readiness reports it and liveness only suspects a stall while it holds */
  healthy: boolean;
  lastError?: string | undefined;
}

/**
 * What the agent exposes to the HTTP server. The server only reads through this, so it can be tested
 * with a plain object and never reaches into pipeline internals.
 *
 * Beyond the first draft: `bufferLimitBytes`, so /status can show how full the buffer is next to
 * `waitingBytes`.
 */
export interface AgentProbe {
  /** records read and not yet acknowledged, in bytes (budget.used) */
  waitingBytes(): number;
  /** the byte budget's limit (budget.limit) */
  readonly bufferLimitBytes: number;
  /**
   * ms since epoch of the last acknowledgement (progress). Set it to the start time before the first
   * acknowledgement. The server does not need it reset when the buffer fills after an idle spell: it
   * starts the stall clock itself only once it has seen bytes waiting on a healthy output.
   */
  lastProgressMs(): number;
  output(): OutputStatus;
  metadata(): MetadataStatus;
  files(): FileStatus[];
  readonly startedMs: number;
  readonly version: string;
}

/**
 * The Elasticsearch sink as an output status. 'idle' (nothing sent yet) counts as healthy: a node
 * with no logs yet must still become ready, and an unreachable cluster shows up as 'retrying' at the
 * first request.
 */
export function elasticsearchOutput(
  sink: {
    readonly state: OutputState;
    readonly lastError: string | undefined;
  },
  kind: 'elasticsearch' | 'opensearch' = 'elasticsearch',
): OutputStatus {
  return {
    kind,
    state: sink.state,
    healthy: sink.state === 'ok' || sink.state === 'idle',
    lastError: sink.lastError,
  };
}

/** stdout has no remote end to wait for: it is always ready (a broken pipe stops the process instead). */
export function stdoutOutput(): OutputStatus {
  return { kind: 'stdout', state: 'ok', healthy: true, lastError: undefined };
}
