/**
 * Exponential backoff with full jitter (a uniformly random wait between 0 and the capped exponential
 * bound): many agents retrying against one recovering cluster spread out instead of arriving together.
 */
export function backoffMs(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const bound = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * bound);
}
