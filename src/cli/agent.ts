import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { agentUsage, type ConfigValues, loadAgentConfig, workerCount } from '../config/load.ts';
import { AGENT_OPTIONS } from '../config/options.ts';
import { KubernetesEnricher, type KubernetesEnricherOptions } from '../enrich/kubernetes-enricher.ts';
import { KubernetesPodSource } from '../enrich/pod-cache.ts';
import type { MetadataStatus, PodMetadataSource } from '../enrich/types.ts';
import { UsageError } from '../errors.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import type { FormatOption } from '../pipeline/types.ts';
import { type AgentProbe, elasticsearchOutput, stdoutOutput } from '../server/probe.ts';
import { buildServer, listen } from '../server/server.ts';
import { acquireStateLock, type StateLock } from '../source/state-lock.ts';
import type { TailerOptions } from '../source/tailer.ts';
import { SourceCounters } from '../telemetry/counters.ts';
import { jsonLogger, type Logger, textLogger } from '../telemetry/logger.ts';
import { createMetrics } from '../telemetry/metrics.ts';
import { RecordTransforms, recordOptions } from '../transform/resolve.ts';
import { WorkerPool } from '../worker/pool.ts';
import { version } from './main.ts';
import { createOutput, type OutputConfig, outputConfig } from './output-flags.ts';

/** Pod metadata turned off (--no-kube): documents carry what the path says. */
class NoPodSource implements PodMetadataSource {
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  get(): undefined {
    return undefined;
  }
  async waitFor(): Promise<undefined> {
    return undefined;
  }
  status(): MetadataStatus {
    return { state: 'disabled', cachedPods: 0, misses: 0, lastError: undefined };
  }
}

type Get = <T>(key: string) => T;

function getter(values: ConfigValues): Get {
  return <T>(key: string) => values.get(key) as T;
}

/** The agent's output settings through the same validation as `tail`'s flags. */
function agentOutput(get: Get, hostName: string): OutputConfig | undefined {
  const es = get<string[]>('output.es');
  const os = get<string[]>('output.os');
  const str = (v: unknown) => (v === undefined ? undefined : String(v));
  const config = outputConfig(
    {
      output: get<string>('output.type'),
      es: es.length > 0 ? es.join(',') : undefined,
      os: os.length > 0 ? os.join(',') : undefined,
      'os-aws-region': get<string | undefined>('output.awsRegion'),
      'os-aws-service': get<string | undefined>('output.awsService'),
      index: get<string>('output.index'),
      'dlq-index': get<string>('output.dlqIndex'),
      pipeline: get<string | undefined>('output.pipeline'),
      'id-mode': get<string>('output.idMode'),
      'batch-docs': str(get('output.batchDocs')),
      'batch-bytes': str(get('output.batchBytes')),
      'flush-ms': str(get('output.flushMs')),
      concurrency: str(get('output.concurrency')),
      'retry-max-ms': str(get('output.retryMaxMs')),
      'es-timeout-ms': str(get('output.timeoutMs')),
      'es-user': get<string | undefined>('output.user'),
      'es-password-file': get<string | undefined>('output.passwordFile'),
      'es-api-key-file': get<string | undefined>('output.apiKeyFile'),
      'es-bearer-token-file': get<string | undefined>('output.bearerTokenFile'),
      'es-ca-file': get<string | undefined>('output.caFile'),
      'es-insecure': get<boolean>('output.insecure'),
      'es-cloud-id': get<string | undefined>('output.cloudId'),
      'es-compression': get<boolean>('output.compression'),
      'manage-templates': get<boolean>('output.manageTemplates'),
    },
    get<string>('output.index'),
    hostName,
  );
  return config === undefined ? undefined : { ...config, mergeKey: get<string>('parse.mergeKey') };
}

function enricherOptions(get: Get): KubernetesEnricherOptions {
  const self =
    process.env.POD_NAME && process.env.POD_NAMESPACE
      ? { namespace: process.env.POD_NAMESPACE, name: process.env.POD_NAME }
      : undefined;
  return {
    dedot: get<boolean>('kube.dedot'),
    annotationAllowList: get<string[]>('kube.annotations'),
    namespaceLabels: get<boolean>('kube.namespaceLabels'),
    include: {
      namespaces: get<string[]>('include.namespaces'),
      pods: get<string[]>('include.pods'),
      containers: get<string[]>('include.containers'),
    },
    exclude: {
      namespaces: get<string[]>('exclude.namespaces'),
      pods: get<string[]>('exclude.pods'),
      containers: get<string[]>('exclude.containers'),
    },
    selfPod: self,
    nodeName: get<string | undefined>('nodeName'),
    waitForPodMs: get<boolean>('kube.enabled') ? get<number>('kube.podWaitMs') : 0,
  };
}

async function podSource(get: Get, log: Logger): Promise<PodMetadataSource> {
  if (!get<boolean>('kube.enabled')) return new NoPodSource();
  const nodeName = get<string | undefined>('nodeName');
  if (nodeName === undefined) {
    throw new UsageError(
      'the node name is not known: set --node-name or NODE_NAME (downward API spec.nodeName), or --no-kube',
    );
  }
  const apiUrl = get<string | undefined>('kube.apiUrl');
  // In a pod or with --kube-api: the built-in client; a kubeconfig loads @kubernetes/client-node here, so its
  // errors come before anything starts.
  return KubernetesPodSource.create({
    nodeName,
    logger: log,
    userAgent: `logferry/${version()}`,
    connection:
      apiUrl === undefined
        ? { kind: 'auto' }
        : { kind: 'url', url: apiUrl, tokenFile: get<string | undefined>('kube.tokenFile') },
    inCluster: {
      tokenFile: join(get<string>('kube.serviceAccountDir'), 'token'),
      caFile: join(get<string>('kube.serviceAccountDir'), 'ca.crt'),
    },
    namespaceLabels: get<boolean>('kube.namespaceLabels'),
    deletedPodTtlMs: get<number>('kube.deletedPodTtlMs'),
  });
}

function tailerOptions(get: Get, once: boolean, hostName: string): TailerOptions {
  const podsDir = get<string>('podsDir');
  const maxLineBytes = get<number>('maxLineBytes');
  return {
    // live files and kubelet's rotated siblings (0.log.<timestamp>); the gzipped ones are skipped
    // one walk finds live (N.log) and rotated (N.log.<time>[.gz]) files
    patterns: [join(podsDir, '*', '*', '*.log*')],
    skipPath: (p) => p.endsWith('.gz') || p.endsWith('.tmp'),
    format: get<FormatOption>('format'),
    maxLineBytes,
    readChunkBytes: Math.max(1024 * 1024, maxLineBytes + 1),
    startAtEnd: get<string>('readFrom') === 'tail',
    once,
    pollIntervalMs: get<number>('pollIntervalMs'),
    scanIntervalMs: get<number>('scanIntervalMs'),
    rotateGraceMs: get<number>('rotateGraceMs'),
    deletedMaxMs: get<number>('deletedMaxMs'),
    maxOpenFiles: get<number>('maxOpenFiles'),
    hostName,
    watch: !once,
    readers: 2,
    positionsFile: join(get<string>('stateDir'), 'positions.json'),
    checkpointIntervalMs: 1000,
    forgetAfterMs: 24 * 60 * 60 * 1000,
  };
}

/** Keys whose new value on SIGHUP can be applied without a restart. */
const RELOADABLE = new Set(AGENT_OPTIONS.filter((s) => s.reloadable).map((s) => s.key));

export async function runAgent(argv: string[]): Promise<number> {
  const loaded = loadAgentConfig(argv);
  if (loaded === 'help') {
    process.stdout.write(agentUsage());
    return 0;
  }
  const get = getter(loaded.values);
  const log = get<string>('logFormat') === 'json' ? jsonLogger() : textLogger();
  const hostName = get<string | undefined>('nodeName') ?? hostname();
  const output = agentOutput(get, hostName);
  const stateDir = get<string>('stateDir');
  // A state directory that cannot be written (read-only, full) must not stop the logs: ship, say so,
  // and keep trying to save checkpoints (the tailer retries every interval).
  let lock: StateLock | undefined;
  try {
    await mkdir(stateDir, { recursive: true });
    lock = await acquireStateLock(stateDir, { warn: (m) => log.warn(m) });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    log.error(
      `state directory ${stateDir} cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); shipping without a lock, checkpoints are retried`,
    );
  }

  const counters = new SourceCounters(log);
  const throttled = (ns: string, action: 'drop' | 'pause', lines: number, bytes: number) =>
    counters.throttledRecords(ns, action, lines, bytes);
  const records = recordOptions(get);
  const transforms = new RecordTransforms(records, { throttle: { throttled }, warn: (m) => log.warn(m) });
  const pods = await podSource(get, log);
  const enricher = new KubernetesEnricher(pods, enricherOptions(get));
  let stop: (() => void) | undefined;
  let exitCode = 0;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const workers = workerCount(get('workers'), '--workers');
  const work =
    workers === 0
      ? undefined
      : new WorkerPool({
          workers,
          records,
          events: counters,
          throttled,
          idleMs: get<number>('workerIdleMs'),
          onWorker: (change) => counters.workerChanged(change),
          onFatal: (err) => {
            // a bug; the files' processors are gone: stop (checkpoints hold what was delivered)
            log.error(`records worker failed: ${err.message}; stopping`);
            exitCode = 1;
            stop?.();
          },
        });
  const { sink, elasticsearch, nodes } = await createOutput(output, log, (err) => {
    log.error(`output failed: ${err.message}`);
    stop?.();
  });
  const pipeline = new Pipeline(
    { tailer: tailerOptions(get, loaded.once, hostName), maxBufferBytes: get<number>('maxBufferBytes') },
    { sink, events: counters, enricher, transforms, work },
  );
  const metrics = createMetrics({
    source: counters,
    sink: elasticsearch?.counters,
    budget: pipeline.budget,
    files: () => pipeline.tailer.status(),
    metadata: () => pods.status(),
    output: () => ({
      healthy:
        elasticsearch === undefined ||
        (elasticsearch.state !== 'retrying' && elasticsearch.state !== 'wrong-server'),
    }),
    nodes,
  });
  if (elasticsearch !== undefined) elasticsearch.counters.observeRequest = metrics.observeRequest;
  const startedMs = Date.now();
  const probe: AgentProbe = {
    waitingBytes: () => pipeline.budget.used,
    bufferLimitBytes: pipeline.budget.limit,
    lastProgressMs: () => pipeline.budget.lastReleaseMs,
    output: () =>
      elasticsearch === undefined ? stdoutOutput() : elasticsearchOutput(elasticsearch, output?.kind),
    metadata: () => pods.status(),
    files: () => pipeline.tailer.status(),
    startedMs,
    version: version(),
  };
  const server = buildServer({
    probe,
    metrics: metrics.registry,
    stallTimeoutMs: get<number>('http.stallTimeoutMs'),
    log,
  });
  const address = await listen(server, get<string>('http.addr'));
  log.info(`logferry ${version()} agent started`, {
    http: address,
    podsDir: get<string>('podsDir'),
    output: output?.kind ?? 'stdout',
    kube: get<boolean>('kube.enabled'),
  });

  const onStop = () => stop?.();
  const onReload = () => {
    if (loaded.configFile === undefined) {
      log.warn('SIGHUP: no --config file to reload');
      return;
    }
    try {
      // the same layering as at start (defaults < file < environment < flags), with the file re-read
      const reloaded = loadAgentConfig(argv);
      if (reloaded === 'help') return;
      const next = reloaded.values;
      const changed = AGENT_OPTIONS.map((spec) => spec.key).filter(
        (k) => JSON.stringify(loaded.values.get(k)) !== JSON.stringify(next.get(k)),
      );
      const applied = changed.filter((k) => RELOADABLE.has(k));
      const refused = changed.filter((k) => !RELOADABLE.has(k));
      const values = loaded.values as Map<string, unknown>;
      for (const k of applied) values.set(k, next.get(k));
      if (refused.length > 0)
        log.warn(`SIGHUP: ${refused.join(', ')} cannot change without a restart; keeping the old values`);
      if (applied.length > 0) {
        enricher.setOptions(enricherOptions(get));
        pipeline.tailer.reevaluate();
        log.info(`SIGHUP: applied ${applied.join(', ')}`);
      } else if (refused.length === 0) {
        log.info('SIGHUP: configuration unchanged');
      }
    } catch (err) {
      log.error(
        `SIGHUP: ${(err as Error).message.replaceAll('\n', '; ')}; keeping the running configuration`,
      );
    }
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onReload);
  try {
    await pods.start();
    await pipeline.start();
    if (loaded.once) await Promise.race([pipeline.runOnce(), stopped]);
    else await stopped;
    log.info('stopping: delivering what is in flight, then saving checkpoints');
    await pipeline.stop(get<number>('shutdownTimeoutMs'));
  } finally {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onReload);
    await pods.stop();
    await work?.close();
    await server.close();
    await lock?.release();
  }
  if (elasticsearch !== undefined) {
    const c = elasticsearch.counters;
    log.info('stopped', {
      stored: c.sent,
      alreadyStored: c.duplicates,
      deadLettered: c.deadLettered,
      dropped: c.dropped,
      undelivered: c.queued,
    });
  } else {
    log.info('stopped');
  }
  return exitCode;
}
