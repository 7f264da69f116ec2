import type { MetadataStatus } from '../enrich/types.ts';
import type { EventLoopMonitor } from './event-loop.ts';
import type { AgentProbe, OutputStatus } from './probe.ts';

export type Liveness =
  | { alive: true }
  | { alive: false; reason: 'event_loop_stalled'; detail: string; delayMs: number; limitMs: number }
  | {
      alive: false;
      reason: 'pipeline_stalled';
      detail: string;
      waitingBytes: number;
      stalledMs: number;
      stallTimeoutMs: number;
    };

export interface LivenessOptions {
  /** bytes waiting on a healthy output with no acknowledgement for longer than this means stuck */
  stallTimeoutMs: number;
  /** an event-loop delay above this means stuck */
  eventLoopStallMs: number;
  now: () => number;
  eventLoop?: EventLoopMonitor | undefined;
}

/**
 * Decides whether restarting the process would help. Only what a restart can fix counts: a blocked event
 * loop, or a pipeline that holds data, has a working output and still does not move (other agents have
 * shipped bugs where inputs paused and never resumed, for hours; this check is what lets the kubelet
 * restart us instead). An unhealthy output is not a liveness failure: a restart cannot fix Elasticsearch,
 * and readiness already reports it.
 */
export class LivenessCheck {
  readonly #opts: LivenessOptions;
  /**
   * The last time the pipeline was seen with nothing to do or a broken output. The stall clock starts
   * no earlier than this: bytes read after an idle hour, or held while Elasticsearch was down, are not
   * stuck just because the last acknowledgement is old.
   */
  #quietAtMs = Number.NEGATIVE_INFINITY;

  constructor(opts: LivenessOptions) {
    this.#opts = opts;
  }

  check(probe: AgentProbe): Liveness {
    const { stallTimeoutMs, eventLoopStallMs } = this.#opts;
    const now = this.#opts.now();
    const delayMs = this.#opts.eventLoop?.delayMs() ?? 0;
    if (delayMs > eventLoopStallMs) {
      return {
        alive: false,
        reason: 'event_loop_stalled',
        detail: `event loop blocked for ${Math.round(delayMs)} ms (limit ${eventLoopStallMs} ms)`,
        delayMs: Math.round(delayMs),
        limitMs: eventLoopStallMs,
      };
    }
    const waitingBytes = probe.waitingBytes();
    if (waitingBytes <= 0 || !probe.output().healthy) {
      this.#quietAtMs = now;
      return { alive: true };
    }
    const since = Math.max(probe.lastProgressMs(), probe.startedMs, this.#quietAtMs);
    const stalledMs = now - since;
    if (stalledMs > stallTimeoutMs) {
      return {
        alive: false,
        reason: 'pipeline_stalled',
        detail:
          `${waitingBytes} bytes waiting and no acknowledgement for ${Math.round(stalledMs / 1000)} s ` +
          `while the output is healthy (limit ${Math.round(stallTimeoutMs / 1000)} s)`,
        waitingBytes,
        stalledMs,
        stallTimeoutMs,
      };
    }
    return { alive: true };
  }
}

export interface ComponentReadiness {
  ready: boolean;
  state: string;
  lastError: string | null;
}

export interface Readiness {
  ready: boolean;
  output: ComponentReadiness & { kind: OutputStatus['kind'] };
  metadata: ComponentReadiness;
}

/**
 * Ready when documents can reach their destination and be enriched: the output is healthy (stdout always
 * is) and the pod metadata watch has synced (or enrichment is off). While syncing, documents would ship
 * without pod labels, so a rollout should wait for it.
 */
export function checkReadiness(output: OutputStatus, metadata: MetadataStatus): Readiness {
  const outputReady = output.kind === 'stdout' || output.healthy;
  const metadataReady = metadata.state === 'synced' || metadata.state === 'disabled';
  return {
    ready: outputReady && metadataReady,
    output: {
      ready: outputReady,
      kind: output.kind,
      state: output.state,
      lastError: output.lastError ?? null,
    },
    metadata: { ready: metadataReady, state: metadata.state, lastError: metadata.lastError ?? null },
  };
}
