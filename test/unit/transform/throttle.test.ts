import { describe, expect, it } from 'vitest';
import {
  bytesRate,
  ContainerThrottle,
  limitsText,
  parseThrottle,
  type ThrottleAction,
  type ThrottleConfig,
  ThrottleRegistry,
  TokenBucket,
  throttleSummaryRecord,
} from '../../../src/transform/throttle.ts';

/** A clock the test moves by hand. */
function fakeClock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
    set: (ms: number) => {
      t = ms;
    },
  };
}

type Event = [string, ThrottleAction, number, number];

function recorder() {
  const events: Event[] = [];
  return {
    events,
    sink: {
      throttled: (ns: string, action: ThrottleAction, lines: number, bytes: number) =>
        events.push([ns, action, lines, bytes]),
    },
  };
}

describe('TokenBucket', () => {
  it('starts full with one second of rate, and refills continuously', () => {
    const clock = fakeClock();
    const b = new TokenBucket({ ratePerSec: 10, now: clock.now });
    expect(b.capacity).toBe(10);
    expect(b.take(10)).toBe(true);
    expect(b.take(1)).toBe(false);
    clock.advance(99);
    expect(b.take(1)).toBe(false);
    clock.advance(1);
    expect(b.take(1)).toBe(true);
    clock.advance(250);
    expect(b.tokens).toBeCloseTo(2.5);
  });

  it('never refills beyond its capacity', () => {
    const clock = fakeClock();
    const b = new TokenBucket({ ratePerSec: 10, burst: 30, now: clock.now });
    expect(b.take(30)).toBe(true);
    clock.advance(60_000);
    expect(b.tokens).toBe(30);
    expect(b.isFull()).toBe(true);
    expect(b.take(30)).toBe(true);
    expect(b.take(1)).toBe(false);
  });

  it('takes all or nothing', () => {
    const clock = fakeClock();
    const b = new TokenBucket({ ratePerSec: 10, now: clock.now });
    b.take(5);
    expect(b.take(6)).toBe(false);
    expect(b.tokens).toBe(5);
    expect(b.canTake(5)).toBe(true);
    expect(b.tokens).toBe(5);
  });

  it('takes more than its capacity only when full, going into debt', () => {
    const clock = fakeClock();
    const b = new TokenBucket({ ratePerSec: 10, now: clock.now });
    expect(b.take(25)).toBe(true);
    expect(b.tokens).toBe(-15);
    expect(b.waitMs()).toBe(1500);
    expect(b.take(1)).toBe(false);
    clock.advance(2500); // back to full
    expect(b.take(11)).toBe(true);
    clock.advance(100);
    expect(b.take(11)).toBe(false);
  });

  it('consume returns the wait until it is out of debt', () => {
    const clock = fakeClock();
    const b = new TokenBucket({ ratePerSec: 100, now: clock.now });
    expect(b.consume(60)).toBe(0);
    expect(b.consume(90)).toBe(500); // -50 tokens at 100/s
    clock.advance(499);
    expect(b.waitMs()).toBe(1);
    clock.advance(1);
    expect(b.waitMs()).toBe(0);
    expect(b.consume(0)).toBe(0);
  });

  it('treats a clock going back as standing still', () => {
    const clock = fakeClock();
    const b = new TokenBucket({ ratePerSec: 10, now: clock.now });
    b.take(10);
    clock.advance(-5000);
    expect(b.tokens).toBe(0);
    clock.advance(5100); // only time after the latest reading counts
    expect(b.tokens).toBeCloseTo(1);
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])('refuses rate %s', (rate) => {
    expect(() => new TokenBucket({ ratePerSec: rate })).toThrow(RangeError);
  });

  it('refuses a burst of 0', () => {
    expect(() => new TokenBucket({ ratePerSec: 1, burst: 0 })).toThrow(RangeError);
  });
});

describe('ContainerThrottle, drop', () => {
  it('admits up to the lines limit and counts the rest for the summary', () => {
    const clock = fakeClock();
    const rec = recorder();
    const t = new ContainerThrottle({
      linesPerSec: 2,
      action: 'drop',
      now: clock.now,
      onThrottled: (a, l, b) => rec.sink.throttled('ns', a, l, b),
    });
    expect([t.admit(10, 0), t.admit(20, 11), t.admit(30, 32), t.admit(40, 63)]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(t.summary()).toEqual({ lines: 2, bytes: 70, firstOffset: 32, lastOffset: 63 });
    expect(rec.events).toEqual([['ns', 'drop', 2, 70]]);
    expect(t.summary()).toBeUndefined();
    clock.advance(500);
    expect(t.admit(5, 104)).toBe(true);
    expect(t.admit(5, 110)).toBe(false);
    expect(t.summary()).toEqual({ lines: 1, bytes: 5, firstOffset: 110, lastOffset: 110 });
    expect(rec.events).toHaveLength(2);
  });

  it('admits up to the bytes limit', () => {
    const clock = fakeClock();
    const t = new ContainerThrottle({ bytesPerSec: 100, action: 'drop', now: clock.now });
    expect([t.admit(60), t.admit(60), t.admit(40), t.admit(1)]).toEqual([true, false, true, false]);
    expect(t.summary()).toEqual({ lines: 2, bytes: 61, firstOffset: undefined, lastOffset: undefined });
    clock.advance(1000);
    expect(t.admit(100)).toBe(true);
  });

  it('with both limits, a record must fit both, and a refused one takes from neither', () => {
    const clock = fakeClock();
    const t = new ContainerThrottle({ linesPerSec: 3, bytesPerSec: 100, action: 'drop', now: clock.now });
    expect(t.admit(90)).toBe(true); // lines 2 left, bytes 10 left
    expect(t.admit(50)).toBe(false); // bytes refuse: lines not taken
    expect(t.admit(5)).toBe(true);
    expect(t.admit(5)).toBe(true); // lines 0 left, bytes 0 left
    clock.advance(1000); // lines 3, bytes 100
    expect([t.admit(1), t.admit(1), t.admit(1), t.admit(1)]).toEqual([true, true, true, false]);
    expect(t.summary()).toMatchObject({ lines: 2, bytes: 51 });
  });

  it('burstSeconds scales the capacity of both buckets', () => {
    const clock = fakeClock();
    const t = new ContainerThrottle({
      linesPerSec: 10,
      bytesPerSec: 1000,
      burstSeconds: 3,
      action: 'drop',
      now: clock.now,
    });
    let admitted = 0;
    for (let i = 0; i < 100; i++) if (t.admit(10)) admitted++;
    expect(admitted).toBe(30);
  });

  it('a record larger than the bytes burst passes when the bucket is full', () => {
    const clock = fakeClock();
    const t = new ContainerThrottle({ bytesPerSec: 100, action: 'drop', now: clock.now });
    expect(t.admit(500)).toBe(true);
    expect(t.admit(1)).toBe(false);
    clock.advance(4000);
    expect(t.admit(1)).toBe(false); // back to 0, not yet refilled
    clock.advance(1000);
    expect(t.admit(500)).toBe(true);
  });

  it('without limits admits everything', () => {
    const t = new ContainerThrottle({ action: 'drop', now: () => 0 });
    for (let i = 0; i < 1000; i++) expect(t.admit(1_000_000)).toBe(true);
    expect(t.summary()).toBeUndefined();
    expect(t.afterChunk(1e6, 1e9)).toBe(0);
  });
});

describe('ContainerThrottle, pause', () => {
  it('returns no pause within the limits, and the time to repay a chunk over them', () => {
    const clock = fakeClock();
    const rec = recorder();
    const t = new ContainerThrottle({
      linesPerSec: 100,
      action: 'pause',
      now: clock.now,
      onThrottled: (a, l, b) => rec.sink.throttled('ns', a, l, b),
    });
    expect(t.afterChunk(60, 6000)).toBe(0);
    expect(t.afterChunk(90, 9000)).toBe(500); // 50 lines in debt at 100/s
    expect(rec.events).toEqual([['ns', 'pause', 90, 9000]]);
    clock.advance(200);
    expect(t.pauseMs()).toBe(300);
    clock.advance(300);
    expect(t.pauseMs()).toBe(0);
    expect(t.afterChunk(10, 1000)).toBe(100); // out of debt is not refilled
    clock.advance(1100);
    expect(t.afterChunk(10, 1000)).toBe(0);
    expect(rec.events).toEqual([
      ['ns', 'pause', 90, 9000],
      ['ns', 'pause', 10, 1000],
    ]);
  });

  it('waits for the slower of the two buckets', () => {
    const clock = fakeClock();
    const t = new ContainerThrottle({ linesPerSec: 100, bytesPerSec: 1000, action: 'pause', now: clock.now });
    expect(t.afterChunk(150, 1100)).toBe(500); // lines: 500 ms; bytes: 100 ms
    clock.advance(500);
    expect(t.afterChunk(10, 4000)).toBe(3600); // lines: 100 ms; bytes: 400 - 4000 -> 3600 ms
  });

  it('a whole chunk is kept even when it is far over (debt accumulates)', () => {
    const clock = fakeClock();
    const t = new ContainerThrottle({ bytesPerSec: 1024, action: 'pause', now: clock.now });
    expect(t.afterChunk(1, 1024 * 11)).toBe(10_000);
    expect(t.afterChunk(1, 1024)).toBe(11_000);
    clock.advance(11_000);
    expect(t.pauseMs()).toBe(0);
  });

  it('is settled once its buckets are full again and nothing is left to report', () => {
    const clock = fakeClock();
    const t = new ContainerThrottle({ linesPerSec: 10, action: 'drop', now: clock.now });
    expect(t.isSettled()).toBe(true);
    for (let i = 0; i < 11; i++) t.admit(1);
    expect(t.isSettled()).toBe(false);
    clock.advance(1000);
    expect(t.isSettled()).toBe(false); // a drop not yet summarized
    t.summary();
    expect(t.isSettled()).toBe(true);
  });
});

describe('summary record', () => {
  it.each<[string, Parameters<typeof throttleSummaryRecord>, string]>([
    [
      'lines limit',
      [{ lines: 1234, bytes: 56789, firstOffset: 10, lastOffset: 900 }, { linesPerSec: 100 }],
      'logferry: throttled 1234 lines (56789 bytes) from this container (limit 100 lines/s)',
    ],
    [
      'one line, both limits',
      [
        { lines: 1, bytes: 1 },
        { linesPerSec: 100, bytesPerSec: 1048576 },
      ],
      'logferry: throttled 1 line (1 byte) from this container (limit 100 lines/s, 1048576 bytes/s)',
    ],
    [
      'bytes limit',
      [{ lines: 3, bytes: 300 }, { bytesPerSec: 512 }],
      'logferry: throttled 3 lines (300 bytes) from this container (limit 512 bytes/s)',
    ],
  ])('%s', (_, args, message) => {
    expect(throttleSummaryRecord(...args).message).toBe(message);
  });

  it('carries the counts, offsets and limits as the throttled field', () => {
    expect(
      throttleSummaryRecord({ lines: 5, bytes: 50, firstOffset: 10, lastOffset: 90 }, { linesPerSec: 2 })
        .throttled,
    ).toEqual({ action: 'drop', lines: 5, bytes: 50, first_offset: 10, last_offset: 90, lines_per_sec: 2 });
    expect(throttleSummaryRecord({ lines: 5, bytes: 50 }, { bytesPerSec: 9 }).throttled).toEqual({
      action: 'drop',
      lines: 5,
      bytes: 50,
      bytes_per_sec: 9,
    });
    expect(limitsText({ linesPerSec: 1.5 })).toBe('1.5 lines/s');
  });
});

describe('ThrottleRegistry', () => {
  const CONFIG: ThrottleConfig = { linesPerSec: 1, burstSeconds: 1, action: 'drop' };

  it('keeps one throttle per key, with the config', () => {
    const clock = fakeClock();
    const reg = new ThrottleRegistry(CONFIG, { now: clock.now });
    const a = reg.get('ns_a/app', 'ns');
    expect(reg.get('ns_a/app', 'ns')).toBe(a);
    expect(reg.get('ns_b/app', 'ns')).not.toBe(a);
    expect(reg.size).toBe(2);
    expect(a.action).toBe('drop');
    expect(a.limits).toEqual({ linesPerSec: 1, bytesPerSec: undefined, burstSeconds: 1 });
  });

  it('reports throttling with the namespace of each container', () => {
    const clock = fakeClock();
    const rec = recorder();
    const reg = new ThrottleRegistry(CONFIG, { now: clock.now, events: rec.sink });
    const a = reg.get('a', 'shop');
    const b = reg.get('b', 'kube-system');
    for (let i = 0; i < 4; i++) a.admit(10);
    b.admit(7);
    b.admit(7);
    a.summary();
    b.summary();
    expect(rec.events).toEqual([
      ['shop', 'drop', 3, 30],
      ['kube-system', 'drop', 1, 7],
    ]);
    const p = new ThrottleRegistry({ ...CONFIG, action: 'pause' }, { now: clock.now, events: rec.sink });
    expect(p.get('c', 'batch').afterChunk(3, 33)).toBe(2000);
    expect(rec.events.at(-1)).toEqual(['batch', 'pause', 3, 33]);
  });

  it('forgets containers idle for idleMs', () => {
    const clock = fakeClock(0);
    const reg = new ThrottleRegistry(CONFIG, { now: clock.now, idleMs: 1000 });
    const a = reg.get('a', 'ns');
    reg.get('b', 'ns');
    clock.set(600);
    reg.get('b', 'ns');
    clock.set(1100);
    reg.get('c', 'ns'); // sweeps: a idle for 1100 ms
    expect(reg.size).toBe(2);
    clock.set(1500);
    expect(reg.get('a', 'ns')).not.toBe(a);
    expect(reg.size).toBe(3);
    clock.set(2100);
    expect(reg.sweep()).toBe(2); // b (1500 ms) and c (1000 ms); a was gotten 600 ms ago
    expect(reg.size).toBe(1);
  });

  it('keeps a container used through a kept reference', () => {
    const clock = fakeClock(0);
    const reg = new ThrottleRegistry(CONFIG, { now: clock.now, idleMs: 1000 });
    const a = reg.get('a', 'ns');
    clock.set(900);
    a.admit(1);
    clock.set(1100);
    expect(reg.sweep()).toBe(0);
    expect(reg.get('a', 'ns')).toBe(a);
    clock.set(2200);
    expect(reg.sweep()).toBe(1);
    expect(reg.size).toBe(0);
  });

  it('holds at most maxContainers, forgetting the least recently used', () => {
    const clock = fakeClock(0);
    const reg = new ThrottleRegistry(CONFIG, { now: clock.now, maxContainers: 2 });
    const a = reg.get('a', 'ns');
    const b = reg.get('b', 'ns');
    reg.get('a', 'ns');
    reg.get('c', 'ns');
    expect(reg.size).toBe(2);
    expect(reg.get('a', 'ns')).toBe(a);
    expect(reg.get('b', 'ns')).not.toBe(b);
  });

  it('stays bounded with thousands of short-lived containers', () => {
    const clock = fakeClock(0);
    const reg = new ThrottleRegistry(CONFIG, { now: clock.now, idleMs: 60_000 });
    for (let i = 0; i < 20_000; i++) {
      reg.get(`pod-${i}/app`, 'ns').admit(100);
      clock.advance(10); // 6000 containers per idle period
    }
    expect(reg.size).toBeLessThanOrEqual(6000 + 6000 / 4 + 1);
    expect(reg.size).toBeGreaterThanOrEqual(6000);
  });

  it('reports drops not yet summarized when it forgets a container', () => {
    const clock = fakeClock(0);
    const rec = recorder();
    const reg = new ThrottleRegistry(CONFIG, { now: clock.now, events: rec.sink });
    const a = reg.get('a', 'ns');
    a.admit(1);
    a.admit(2);
    reg.forget('a');
    reg.forget('missing');
    expect(reg.size).toBe(0);
    expect(rec.events).toEqual([['ns', 'drop', 1, 2]]);
  });
});

describe('throttle config', () => {
  it.each<[string, unknown, ThrottleConfig | undefined]>([
    ['absent', undefined, undefined],
    ['null', null, undefined],
    ['lines', { linesPerSec: 100, action: 'drop' }, { linesPerSec: 100, burstSeconds: 1, action: 'drop' }],
    [
      'action defaults to pause',
      { linesPerSec: 100 },
      { linesPerSec: 100, burstSeconds: 1, action: 'pause' },
    ],
    [
      'bytes as a size',
      { bytesPerSec: '1MiB', action: 'pause', burstSeconds: 2.5 },
      { bytesPerSec: 1048576, burstSeconds: 2.5, action: 'pause' },
    ],
    [
      'bytes per second spelled out',
      { bytesPerSec: '512KiB/s', action: 'drop' },
      { bytesPerSec: 524288, burstSeconds: 1, action: 'drop' },
    ],
    [
      'both, fractional lines',
      { linesPerSec: 0.5, bytesPerSec: 1000, action: 'drop' },
      { linesPerSec: 0.5, bytesPerSec: 1000, burstSeconds: 1, action: 'drop' },
    ],
  ])('accepts %s', (_, input, value) => {
    expect(parseThrottle(input)).toEqual({ ok: true, value });
  });

  it.each<[string, unknown, string[]]>([
    [
      'not a mapping',
      'fast',
      ['throttle: "fast" is not valid: expected a mapping: linesPerSec, bytesPerSec, burstSeconds, action'],
    ],
    ['no limit', { action: 'drop' }, ['throttle: needs linesPerSec or bytesPerSec (or both)']],
    [
      'bad action',
      { linesPerSec: 1, action: 'slow' },
      [
        'throttle.action: "slow" is not valid: expected drop (lines over the limit are lost, the file keeps up) or pause (nothing lost, the file lags)',
      ],
    ],
    [
      'zero lines',
      { linesPerSec: 0, action: 'drop' },
      ['throttle.linesPerSec: 0 is not valid: expected a positive number of lines per second, e.g. 1000'],
    ],
    [
      'lines as text',
      { linesPerSec: '100', action: 'drop' },
      ['throttle.linesPerSec: "100" is not valid: expected a positive number of lines per second, e.g. 1000'],
    ],
    [
      'bad bytes',
      { bytesPerSec: '1 fast', action: 'drop' },
      [
        'throttle.bytesPerSec: "1 fast" is not valid: expected a positive rate in bytes per second, e.g. 1048576, "1MiB" or "512KiB/s"',
      ],
    ],
    [
      'negative burst',
      { linesPerSec: 1, burstSeconds: -1, action: 'drop' },
      [
        'throttle.burstSeconds: -1 is not valid: expected a positive number of seconds of rate, e.g. 1 or 2.5',
      ],
    ],
    [
      'unknown key',
      { linesPerSec: 1, action: 'drop', perNamespace: {} },
      ["throttle: unknown key 'perNamespace'; expected linesPerSec, bytesPerSec, burstSeconds, action"],
    ],
  ])('reports %s', (_, input, problems) => {
    expect(parseThrottle(input)).toEqual({ ok: false, problems });
  });

  it.each<[unknown, number | undefined]>([
    [1000, 1000],
    [0.5, 0.5],
    ['64MiB', 64 * 1024 ** 2],
    ['1 MiB / s', 1024 ** 2],
    ['1.5KB', 1500],
    [0, undefined],
    [-5, undefined],
    [Number.POSITIVE_INFINITY, undefined],
    ['', undefined],
    ['/s', undefined],
    [true, undefined],
  ])('bytesRate(%j)', (input, value) => {
    expect(bytesRate(input)).toBe(value);
  });
});
