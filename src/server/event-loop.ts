import { monitorEventLoopDelay } from 'node:perf_hooks';

/** How often an event-loop delay sampler may wake an idle agent (ours and prom-client's). */
export const IDLE_WAKE_MS = 1000;

/** The worst event-loop delay seen recently; the liveness check reads it. */
export interface EventLoopMonitor {
  /** the largest delay in ms over the last one to two windows */
  delayMs(): number;
}

export interface EventLoopMonitorOptions {
  /** sampling timer period; a delay shorter than this is not seen */
  resolutionMs?: number;
  /** how long a window lasts; a stall stays visible for one to two windows */
  windowMs?: number;
}

/**
 * Measures event-loop delay with perf_hooks. Windows rotate on a timer rather than on each read, so
 * what /healthz reports does not depend on who else called it (a manual curl must not hide a stall
 * from the kubelet). The max, not p99, is used: a loop blocked for seconds yields a single late
 * sample, which a percentile would average away.
 */
export function createEventLoopMonitor(
  options: EventLoopMonitorOptions = {},
): EventLoopMonitor & { stop(): void } {
  // 1 s: a stall the liveness check cares about lasts seconds, and each sample is a wake-up of an
  // otherwise idle process (20 ms, the first choice, woke it 50 times a second; 100 ms still cost
  // ~0.1 % of a core on an idle node: docs/PERFORMANCE.md, section 4)
  const histogram = monitorEventLoopDelay({ resolution: options.resolutionMs ?? IDLE_WAKE_MS });
  histogram.enable();
  let previousMaxNs = 0;
  const timer = setInterval(() => {
    previousMaxNs = histogram.max;
    histogram.reset();
  }, options.windowMs ?? 10_000);
  // a health monitor must never keep the process alive on its own
  timer.unref();
  return {
    delayMs: () => Math.max(previousMaxNs, histogram.max) / 1e6,
    stop: () => {
      clearInterval(timer);
      histogram.disable();
    },
  };
}
