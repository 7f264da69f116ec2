// The CI-sized chaos run (see test/chaos/harness.ts; `npm run chaos` runs longer ones).
import { describe, expect, it } from 'vitest';
import { runChaos } from '../chaos/harness.ts';

describe('chaos', () => {
  const seed = Number(process.env.LOGFERRY_CHAOS_SEED ?? 20261122);

  it(`kills, rotations, pod churn and Elasticsearch faults lose and duplicate nothing (seed ${seed})`, async () => {
    const summary = await runChaos({
      seed,
      durationMs: 20_000,
      pods: 4,
      rate: 100,
      // 64 KiB at 100 lines/s: a rotation every ~6 s per pod, so inodes are freed and reused during the
      // run (that is how this test found document ids colliding across reused inodes)
      rotateBytes: 64 * 1024,
      keepRotated: 5,
    });
    expect(summary.written).toBeGreaterThan(1000);
    expect(summary.restarts).toBeGreaterThan(0);
    expect(summary.rotations).toBeGreaterThan(0);
    expect({ lost: summary.lost, duplicates: summary.duplicates, outOfOrder: summary.outOfOrder }).toEqual({
      lost: 0,
      duplicates: 0,
      outOfOrder: 0,
    });
    expect(summary.delivered).toBe(summary.written);
  }, 150_000);
});
