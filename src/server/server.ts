import { getHeapStatistics } from 'node:v8';
import { type FastifyInstance, type FastifyPluginAsync, fastify } from 'fastify';
import { parsePodLogPath } from '../enrich/k8s-paths.ts';
import type { Logger } from '../telemetry/logger.ts';
import { parseListenAddress } from './address.ts';
import { createEventLoopMonitor, type EventLoopMonitor } from './event-loop.ts';
import { checkReadiness, type Liveness, LivenessCheck } from './health.ts';
import type { AgentProbe } from './probe.ts';

/** What /metrics needs from a registry; prom-client's Registry fits, and the server never imports it. */
export interface MetricsRegistryLike {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface ServerDeps {
  probe: AgentProbe;
  metrics: MetricsRegistryLike;
  /** bytes waiting on a healthy output with no acknowledgement for this long fails /healthz */
  stallTimeoutMs: number;
  now?: (() => number) | undefined;
  /** default: perf_hooks monitorEventLoopDelay, stopped when the server closes */
  eventLoop?: EventLoopMonitor | undefined;
  /** an event-loop delay above this fails /healthz; default 5000 */
  eventLoopStallMs?: number | undefined;
  /** told when liveness changes, so a restart by the kubelet is explained in our own logs */
  log?: Logger | undefined;
}

export const DEFAULT_EVENT_LOOP_STALL_MS = 5000;

/**
 * The agent's HTTP surface: /healthz (liveness), /readyz, /metrics and /status. It never listens by
 * itself, so tests drive it with `inject()` and no socket; `listen()` below binds it.
 */
export function buildServer(deps: ServerDeps): FastifyInstance {
  const app = fastify({ logger: false });
  const now = deps.now ?? Date.now;
  let eventLoop = deps.eventLoop;
  if (eventLoop === undefined) {
    const monitor = createEventLoopMonitor();
    app.addHook('onClose', async () => monitor.stop());
    eventLoop = monitor;
  }
  const liveness = new LivenessCheck({
    stallTimeoutMs: deps.stallTimeoutMs,
    eventLoopStallMs: deps.eventLoopStallMs ?? DEFAULT_EVENT_LOOP_STALL_MS,
    now,
    eventLoop,
  });
  app.register(healthRoutes(deps.probe, liveness, deps.log));
  app.register(readinessRoutes(deps.probe));
  app.register(metricsRoutes(deps.metrics));
  app.register(statusRoutes(deps.probe, now));
  return app;
}

/** Binds the server to `host:port` (or `[ipv6]:port`); resolves with the address it listens on. */
export async function listen(app: FastifyInstance, addr: string): Promise<string> {
  const { host, port } = parseListenAddress(addr);
  return app.listen({ host, port });
}

function healthRoutes(
  probe: AgentProbe,
  liveness: LivenessCheck,
  log: Logger | undefined,
): FastifyPluginAsync {
  return async (app) => {
    let lastReason: string | undefined;
    const report = (result: Liveness) => {
      const reason = result.alive ? undefined : result.reason;
      if (reason === lastReason) return;
      lastReason = reason;
      if (result.alive) log?.info('healthz: alive again');
      else log?.error(`healthz: failing, ${result.detail}`, { reason: result.reason });
    };
    app.get('/healthz', async (_request, reply) => {
      const result = liveness.check(probe);
      report(result);
      if (result.alive) return { status: 'ok' };
      const { alive: _alive, ...body } = result;
      return reply.code(503).send({ status: 'failing', ...body });
    });
  };
}

function readinessRoutes(probe: AgentProbe): FastifyPluginAsync {
  return async (app) => {
    app.get('/readyz', async (_request, reply) => {
      const { ready, output, metadata } = checkReadiness(probe.output(), probe.metadata());
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', output, metadata });
    });
  };
}

function metricsRoutes(registry: MetricsRegistryLike): FastifyPluginAsync {
  return async (app) => {
    app.get('/metrics', async (_request, reply) => {
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    });
  };
}

/** The pod a file belongs to, as its kubelet path says (the same reading enrichment starts from). */
function podOf(path: string): { namespace: string; name: string; container: string } | null {
  const ref = parsePodLogPath(path);
  return ref === undefined ? null : { namespace: ref.namespace, name: ref.podName, container: ref.container };
}

function statusRoutes(probe: AgentProbe, now: () => number): FastifyPluginAsync {
  return async (app) => {
    app.get('/status', async () => {
      const output = probe.output();
      const metadata = probe.metadata();
      const files = probe
        .files()
        .map((f) => ({
          path: f.path,
          state: f.state,
          offset: f.committed,
          readPos: f.readPos,
          size: f.size,
          lag: f.lag,
          pendingBatches: f.pendingBatches,
          // added for `logferry top` (#16); null for a file outside the kubelet layout
          pod: podOf(f.path),
        }))
        .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      return {
        version: probe.version,
        startedAt: new Date(probe.startedMs).toISOString(),
        uptimeSeconds: Math.max(0, Math.floor((now() - probe.startedMs) / 1000)),
        output: {
          kind: output.kind,
          state: output.state,
          healthy: output.healthy,
          lastError: output.lastError ?? null,
        },
        metadata: {
          state: metadata.state,
          cachedPods: metadata.cachedPods,
          misses: metadata.misses,
          lastError: metadata.lastError ?? null,
        },
        buffer: {
          waitingBytes: probe.waitingBytes(),
          limitBytes: probe.bufferLimitBytes,
          lastProgressAt: new Date(probe.lastProgressMs()).toISOString(),
        },
        files,
        // what the process runs with (src/cli/runtime.ts sets these for `logferry agent`)
        runtime: {
          pid: process.pid,
          node: process.version,
          nodeFlags: process.execArgv,
          heapLimitBytes: getHeapStatistics().heap_size_limit,
          mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? null,
        },
      };
    });
  };
}
