import { describe, expect, it } from 'vitest';
import { documentContext } from '../../../src/encode/document.ts';
import { BodyPool, bodyPool, POOLED_MIN_BYTES, recycleLocally } from '../../../src/parse/body-pool.ts';
import { FileProcessor, IGNORED_EVENTS } from '../../../src/parse/file-processor.ts';

const MiB = 1024 * 1024;
const TIME = '2026-11-22T00:00:00.123456789Z';

describe('BodyPool', () => {
  it('small sizes are plain allocations; big ones come in whole MiB', () => {
    const pool = new BodyPool();
    expect(pool.take(1000).buffer.byteLength).toBe(1000);
    expect(pool.take(POOLED_MIN_BYTES + 1).buffer.byteLength).toBe(MiB);
    expect(pool.take(5 * MiB + 1).buffer.byteLength).toBe(6 * MiB);
  });

  it('gives back the smallest pooled buffer that fits, and frees what it cannot keep', () => {
    const pool = new BodyPool();
    const sizes = [3, 1, 2].map((n) => new ArrayBuffer(n * MiB));
    for (const ab of sizes) pool.put(ab);
    expect(pool.bytes).toBe(6 * MiB);
    const got = pool.take(1.5 * MiB);
    expect(got.buffer).toBe(sizes[2]);
    expect(pool.bytes).toBe(4 * MiB);
    // too small to pool: freed (detached) at once
    const small = new ArrayBuffer(POOLED_MIN_BYTES - 1);
    pool.put(small);
    expect(small.byteLength).toBe(0);
    // over the pool's cap: freed
    const huge = new ArrayBuffer(64 * MiB);
    pool.put(huge);
    expect(huge.byteLength).toBe(0);
    pool.clear();
    expect(pool.bytes).toBe(0);
    expect(sizes[0]!.byteLength).toBe(0);
  });
});

describe('recycleLocally', () => {
  function body(lines: number): Buffer {
    const proc = new FileProcessor(
      documentContext('/p', 'h'),
      { format: 'cri', maxLineBytes: MiB },
      IGNORED_EVENTS,
    );
    const input = Buffer.from(
      `${TIME} stdout F {"level":"info","msg":"a line of some length"}\n`.repeat(lines),
    );
    return proc.process(input, input.length, 0, true).body;
  }

  it('an acknowledged body is detached and its memory reused by the next body', () => {
    bodyPool.clear();
    const first = body(3000);
    const memory = first.buffer;
    expect(memory.byteLength).toBeGreaterThanOrEqual(POOLED_MIN_BYTES);
    const text = first.toString();
    recycleLocally(first);
    expect(first.length).toBe(0);
    expect(bodyPool.bytes).toBeGreaterThan(0);
    const pooled = bodyPool.bytes;
    const second = body(3000);
    expect(second.toString()).toBe(text);
    // written into pooled memory: the pool did not grow
    expect(bodyPool.bytes).toBeLessThanOrEqual(pooled);
    bodyPool.clear();
  });

  it("never touches a buffer of Node's shared pool, an empty body, or one already recycled", () => {
    const small = Buffer.from('{"a":1}\n');
    const neighbour = Buffer.from('still here');
    recycleLocally(small);
    recycleLocally(Buffer.alloc(0));
    expect(small.toString()).toBe('{"a":1}\n');
    expect(neighbour.toString()).toBe('still here');
    const b = body(3000);
    recycleLocally(b);
    expect(() => recycleLocally(b)).not.toThrow();
    bodyPool.clear();
  });
});
