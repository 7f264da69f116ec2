import { afterEach, describe, expect, it } from 'vitest';
import type { MetadataStatus } from '../../../src/enrich/types.ts';
import { UsageError } from '../../../src/errors.ts';
import { parseListenAddress } from '../../../src/server/address.ts';
import { createEventLoopMonitor } from '../../../src/server/event-loop.ts';
import {
  type AgentProbe,
  elasticsearchOutput,
  type OutputStatus,
  stdoutOutput,
} from '../../../src/server/probe.ts';
import { buildServer, listen } from '../../../src/server/server.ts';
import { SinkCounters } from '../../../src/sink/counters.ts';
import type { OutputState } from '../../../src/sink/elasticsearch/sink.ts';
import type { FileStatus } from '../../../src/source/tailer.ts';
import { SourceCounters } from '../../../src/telemetry/counters.ts';
import type { Logger } from '../../../src/telemetry/logger.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';

const STARTED = Date.parse('2026-01-01T00:00:00Z');
const STALL_MS = 60_000;

/** A probe whose every answer a test can change. */
function fakeProbe(): AgentProbe & {
  set: {
    waiting: number;
    lastProgress: number;
    output: OutputStatus;
    metadata: MetadataStatus;
    files: FileStatus[];
  };
} {
  const set = {
    waiting: 0,
    lastProgress: STARTED,
    output: elasticsearchOutput({ state: 'ok', lastError: undefined }),
    metadata: { state: 'synced', cachedPods: 3, misses: 1, lastError: undefined } as MetadataStatus,
    files: [] as FileStatus[],
  };
  return {
    set,
    waitingBytes: () => set.waiting,
    bufferLimitBytes: 1 << 20,
    lastProgressMs: () => set.lastProgress,
    output: () => set.output,
    metadata: () => set.metadata,
    files: () => set.files,
    startedMs: STARTED,
    version: '1.2.3',
  };
}

const silent: Logger = { info: () => {}, warn: () => {}, error: () => {} };

function setup(options: { delayMs?: number } = {}) {
  const probe = fakeProbe();
  const clock = { now: STARTED };
  const loop = { delay: options.delayMs ?? 0 };
  const source = new SourceCounters(silent);
  const sink = new SinkCounters();
  const metrics = createMetrics({
    source,
    sink,
    budget: { used: 0, limit: 1 << 20 },
    files: () => probe.files(),
    metadata: () => probe.metadata(),
    output: () => probe.output(),
  });
  const logged: string[] = [];
  const app = buildServer({
    probe,
    metrics: metrics.registry,
    stallTimeoutMs: STALL_MS,
    now: () => clock.now,
    eventLoop: { delayMs: () => loop.delay },
    log: {
      info: (m) => logged.push(`info ${m}`),
      warn: (m) => logged.push(`warn ${m}`),
      error: (m) => logged.push(`error ${m}`),
    },
  });
  apps.push(app);
  return { app, probe, clock, loop, source, sink, metrics, logged };
}

const apps: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

describe('GET /healthz', () => {
  it('is ok when nothing waits', async () => {
    const { app } = setup();
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('fails when the event loop was blocked longer than the limit', async () => {
    const { app, loop } = setup({ delayMs: 6200 });
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      status: 'failing',
      reason: 'event_loop_stalled',
      delayMs: 6200,
      limitMs: 5000,
    });
    loop.delay = 4000;
    expect((await app.inject('/healthz')).statusCode).toBe(200);
  });

  it('fails when bytes wait on a healthy output and nothing is acknowledged for the stall timeout', async () => {
    const { app, probe, clock, logged } = setup();
    probe.set.waiting = 4096;
    clock.now = STARTED + STALL_MS;
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    clock.now = STARTED + STALL_MS + 1;
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      status: 'failing',
      reason: 'pipeline_stalled',
      waitingBytes: 4096,
      stalledMs: STALL_MS + 1,
      stallTimeoutMs: STALL_MS,
    });
    expect(res.json().detail).toContain('4096 bytes waiting');
    // an acknowledgement is progress: alive again
    probe.set.lastProgress = clock.now;
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    expect(logged).toEqual([
      expect.stringMatching(/^error healthz: failing, 4096 bytes/),
      'info healthz: alive again',
    ]);
  });

  it.each<[string, (p: ReturnType<typeof fakeProbe>) => void]>([
    [
      'the output is retrying (readiness, not liveness)',
      (p) => {
        p.set.output = elasticsearchOutput({ state: 'retrying', lastError: 'connect ECONNREFUSED' });
      },
    ],
    [
      'the output is unauthorized',
      (p) => {
        p.set.output = elasticsearchOutput({ state: 'unauthorized', lastError: '401' });
      },
    ],
    [
      'nothing waits',
      (p) => {
        p.set.waiting = 0;
      },
    ],
  ])('is not stalled when %s', async (_name, change) => {
    const { app, probe, clock } = setup();
    probe.set.waiting = 100;
    change(probe);
    clock.now = STARTED + 10 * STALL_MS;
    expect((await app.inject('/healthz')).statusCode).toBe(200);
  });

  it('starts the stall clock when bytes arrive after an idle spell, not at the old acknowledgement', async () => {
    const { app, probe, clock } = setup();
    clock.now = STARTED + 10 * STALL_MS;
    expect((await app.inject('/healthz')).statusCode).toBe(200); // seen idle here
    probe.set.waiting = 100;
    clock.now += STALL_MS / 2;
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    clock.now += STALL_MS;
    expect((await app.inject('/healthz')).statusCode).toBe(503);
  });

  it('starts the stall clock when the output recovers, not during the outage', async () => {
    const { app, probe, clock } = setup();
    probe.set.waiting = 100;
    probe.set.output = elasticsearchOutput({ state: 'retrying', lastError: 'timeout' });
    clock.now = STARTED + 10 * STALL_MS;
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    probe.set.output = elasticsearchOutput({ state: 'ok', lastError: undefined });
    clock.now += STALL_MS / 2;
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    clock.now += STALL_MS;
    expect((await app.inject('/healthz')).statusCode).toBe(503);
  });
});

describe('GET /readyz', () => {
  const outputs: Array<[OutputState | 'stdout', boolean]> = [
    ['idle', true],
    ['ok', true],
    ['retrying', false],
    ['unauthorized', false],
    ['stdout', true],
  ];
  const metadata: Array<[MetadataStatus['state'], boolean]> = [
    ['disabled', true],
    ['synced', true],
    ['syncing', false],
    ['unreachable', false],
  ];
  const cases = outputs.flatMap(([o, oReady]) =>
    metadata.map(([m, mReady]) => [o, m, oReady, mReady] as const),
  );

  it.each(cases)('output %s, metadata %s', async (outputState, metadataState, outputReady, metadataReady) => {
    const { app, probe } = setup();
    probe.set.output =
      outputState === 'stdout'
        ? stdoutOutput()
        : elasticsearchOutput({
            state: outputState,
            lastError: outputReady ? undefined : `es: ${outputState}`,
          });
    probe.set.metadata = {
      state: metadataState,
      cachedPods: 0,
      misses: 0,
      lastError: metadataReady ? undefined : `kube: ${metadataState}`,
    };
    const res = await app.inject('/readyz');
    const ready = outputReady && metadataReady;
    expect(res.statusCode).toBe(ready ? 200 : 503);
    expect(res.json()).toEqual({
      status: ready ? 'ready' : 'not_ready',
      output: {
        ready: outputReady,
        kind: outputState === 'stdout' ? 'stdout' : 'elasticsearch',
        state: outputState === 'stdout' ? 'ok' : outputState,
        lastError: outputReady ? null : `es: ${outputState}`,
      },
      metadata: {
        ready: metadataReady,
        state: metadataState,
        lastError: metadataReady ? null : `kube: ${metadataState}`,
      },
    });
  });
});

describe('GET /status', () => {
  it('reports version, uptime, output, metadata, buffer and files sorted by path', async () => {
    const { app, probe, clock } = setup();
    clock.now = STARTED + 90_500;
    probe.set.waiting = 2048;
    probe.set.lastProgress = STARTED + 80_000;
    probe.set.output = elasticsearchOutput({ state: 'retrying', lastError: 'HTTP 503' });
    probe.set.files = [
      {
        path: '/var/log/pods/shop_checkout-7d9f8b6c5-x2k4q_0f3c2a91/app/0.log',
        state: 'active',
        committed: 10,
        readPos: 20,
        size: 50,
        lag: 30,
        pendingBatches: 1,
      },
      {
        path: '/var/log/pods/a/c/0.log',
        state: 'parked',
        committed: 5,
        readPos: 5,
        size: 5,
        lag: 0,
        pendingBatches: 0,
      },
    ];
    const res = await app.inject('/status');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      version: '1.2.3',
      startedAt: '2026-01-01T00:00:00.000Z',
      uptimeSeconds: 90,
      output: { kind: 'elasticsearch', state: 'retrying', healthy: false, lastError: 'HTTP 503' },
      metadata: { state: 'synced', cachedPods: 3, misses: 1, lastError: null },
      buffer: { waitingBytes: 2048, limitBytes: 1 << 20, lastProgressAt: '2026-01-01T00:01:20.000Z' },
      files: [
        {
          path: '/var/log/pods/a/c/0.log',
          state: 'parked',
          offset: 5,
          readPos: 5,
          size: 5,
          lag: 0,
          pendingBatches: 0,
          pod: null,
        },
        {
          path: '/var/log/pods/shop_checkout-7d9f8b6c5-x2k4q_0f3c2a91/app/0.log',
          state: 'active',
          offset: 10,
          readPos: 20,
          size: 50,
          lag: 30,
          pendingBatches: 1,
          pod: { namespace: 'shop', name: 'checkout-7d9f8b6c5-x2k4q', container: 'app' },
        },
      ],
      runtime: {
        pid: process.pid,
        node: process.version,
        nodeFlags: process.execArgv,
        heapLimitBytes: expect.any(Number),
        mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? null,
      },
    });
  });
});

/** A sample value as Prometheus reads it (Go's ParseFloat: NaN and Inf in any case). */
function parseSampleValue(text: string, line: string): number {
  if (/^nan$/i.test(text)) return Number.NaN;
  if (/^[+-]?inf$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new Error(`bad value in ${JSON.stringify(line)}`);
  return value;
}

/** Parses Prometheus text exposition into TYPE lines and samples; throws on a line it cannot read. */
function parseExposition(text: string): { types: Map<string, string>; samples: Map<string, number> } {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type !== null) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (sample === null) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    samples.set(sample[1]!, parseSampleValue(sample[2]!, line));
  }
  return { types, samples };
}

describe('GET /metrics', () => {
  it('serves Prometheus text whose values follow the counters', async () => {
    const { app, source, sink, metrics } = setup();
    const scrape = async () => {
      const res = await app.inject('/metrics');
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe(metrics.registry.contentType);
      return { text: res.body, ...parseExposition(res.body) };
    };
    const first = await scrape();
    expect(first.text).toContain('# TYPE logferry_records_total counter');
    expect(first.types.get('logferry_bulk_request_duration_seconds')).toBe('histogram');
    expect(first.types.get('process_cpu_seconds_total')).toBe('counter');
    expect(first.samples.get('logferry_records_total{outcome="sent"}')).toBe(0);
    expect(first.samples.get('logferry_lines_read_total')).toBe(0);

    source.linesRead(7);
    sink.sent = 5;
    sink.dropped = 1;
    const second = await scrape();
    expect(second.samples.get('logferry_lines_read_total')).toBe(7);
    expect(second.samples.get('logferry_records_total{outcome="sent"}')).toBe(5);
    expect(second.samples.get('logferry_records_total{outcome="dropped"}')).toBe(1);
    expect(second.samples.get('logferry_output_up')).toBe(1);
    expect(second.samples.get('logferry_metadata_synced')).toBe(1);
  });
});

describe('listen address', () => {
  it.each<[string, string, number]>([
    ['0.0.0.0:2020', '0.0.0.0', 2020],
    ['127.0.0.1:0', '127.0.0.1', 0],
    ['[::]:2020', '::', 2020],
    ['[::1]:8080', '::1', 8080],
    ['[fe80::1%eth0]:2020', 'fe80::1%eth0', 2020],
    ['localhost:2020', 'localhost', 2020],
    ['logferry.kube-system.svc:65535', 'logferry.kube-system.svc', 65535],
    [':2020', '0.0.0.0', 2020],
  ])('%s -> %s port %d', (addr, host, port) => {
    expect(parseListenAddress(addr)).toEqual({ host, port });
  });

  it.each<[string, RegExp]>([
    ['', /missing :port/],
    ['2020', /missing :port/],
    ['0.0.0.0', /missing :port/],
    ['0.0.0.0:', /missing port/],
    ['0.0.0.0:http', /'http' is not a port/],
    ['0.0.0.0:-1', /'-1' is not a port/],
    ['0.0.0.0:65536', /above 65535/],
    ['0.0.0.0:123456', /not a port/],
    ['::1:2020', /brackets/],
    ['[::1]', /missing :port after \]/],
    ['[::1:2020', /missing \]/],
    ['[nope]:2020', /not an IPv6 address/],
    ['http://0.0.0.0:2020', /brackets|not a host name/],
    ['my host:2020', /not a host name/],
  ])('rejects %j', (addr, why) => {
    expect(() => parseListenAddress(addr)).toThrow(UsageError);
    expect(() => parseListenAddress(addr)).toThrow(why);
    expect(() => parseListenAddress(addr)).toThrow(
      /expected host:port, e\.g\. 0\.0\.0\.0:2020 or \[::\]:2020/,
    );
  });

  it('listen() binds the parsed address and rejects a bad one before binding', async () => {
    const { app } = setup();
    const url = await listen(app, '127.0.0.1:0');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    const other = setup();
    await expect(listen(other.app, 'nope')).rejects.toBeInstanceOf(UsageError);
  });
});

describe('createEventLoopMonitor', () => {
  it('sees a blocked event loop', async () => {
    const monitor = createEventLoopMonitor({ resolutionMs: 10 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 30));
      const until = performance.now() + 150;
      while (performance.now() < until) {
        // block the loop on purpose
      }
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(monitor.delayMs()).toBeGreaterThanOrEqual(100);
    } finally {
      monitor.stop();
    }
  });
});

describe('buildServer defaults', () => {
  it('measures the real event loop when none is injected, and stops measuring on close', async () => {
    const probe = fakeProbe();
    const app = buildServer({
      probe,
      metrics: { contentType: 'text/plain', metrics: async () => '' },
      stallTimeoutMs: STALL_MS,
    });
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(200);
    await app.close();
  });
});
