import { readFileSync } from 'node:fs';
import { redactCredentials, UsageError } from '../errors.ts';
import type { Sink } from '../pipeline/types.ts';
import type { ConnectionOptions } from '../sink/elasticsearch/client.ts';
import { IndexTemplate, validateIndexName } from '../sink/elasticsearch/encode.ts';
import type { NodeCounters } from '../sink/elasticsearch/node-watcher.ts';
import type { ElasticsearchSink, ElasticsearchSinkOptions } from '../sink/elasticsearch/sink.ts';
import { StreamSink } from '../sink/stdout.ts';
import type { Logger } from '../telemetry/logger.ts';
import { parseBytes, parseChoice, parsePositiveInt } from './values.ts';

/** Output flags shared by `tail` and `agent` (node:util parseArgs option definitions). */
export const OUTPUT_OPTIONS = {
  es: { type: 'string' },
  index: { type: 'string' },
  'dlq-index': { type: 'string' },
  pipeline: { type: 'string' },
  'id-mode': { type: 'string' },
  'batch-docs': { type: 'string' },
  'batch-bytes': { type: 'string' },
  'flush-ms': { type: 'string' },
  concurrency: { type: 'string' },
  'retry-max-ms': { type: 'string' },
  'es-timeout-ms': { type: 'string' },
  'es-user': { type: 'string' },
  'es-password-file': { type: 'string' },
  'es-api-key-file': { type: 'string' },
  'es-bearer-token-file': { type: 'string' },
  'es-ca-file': { type: 'string' },
  'es-insecure': { type: 'boolean' },
  'es-cloud-id': { type: 'string' },
  'es-compression': { type: 'boolean' },
  'manage-templates': { type: 'boolean' },
} as const;

export const OUTPUT_USAGE = `Elasticsearch output (without --es, documents go to stdout):
  --es <url[,url...]>          Elasticsearch URLs; requests are spread over them
  --index <template>           target index or data stream; {field} and {yyyy.MM.dd} are substituted
                               (default: %INDEX%)
  --dlq-index <name>           where refused documents go (default: logs-logferry.dlq-default)
  --pipeline <name>            ingest pipeline
  --id-mode <deterministic|auto>  deterministic: _id from file + offset, exactly once (default);
                               auto: Elasticsearch ids, faster indexing, at least once
  --batch-docs <n>             documents per bulk request, at most (default: 5000)
  --batch-bytes <size>         bulk request size, at most (default: 8MiB)
  --flush-ms <n>               send a partial batch this long after its first document (default: 1000)
  --concurrency <n>            bulk requests in flight (default: 2)
  --retry-max-ms <n>           cap of the exponential backoff between retries (default: 30000)
  --es-timeout-ms <n>          a bulk request without an answer after this is retried (default: 60000)
  --es-user <name>             basic auth user; the password comes from LOGFERRY_ES_PASSWORD or
  --es-password-file <file>
  --es-api-key-file <file>     API key (or LOGFERRY_ES_API_KEY)
  --es-bearer-token-file <file>  bearer token (or LOGFERRY_ES_BEARER_TOKEN)
  --es-ca-file <file>          CA certificate(s) to trust (PEM)
  --es-insecure                do not verify the server's certificate
  --es-cloud-id <id>           Elastic Cloud deployment id (instead of --es)
  --es-compression             gzip request bodies
  --manage-templates           install index templates (data streams where the cluster has them) at start
`;

export const OUTPUT_DEFAULTS = {
  dlqIndex: 'logs-logferry.dlq-default',
  idMode: 'deterministic' as const,
  batchDocs: 5000,
  batchBytes: 8 * 1024 * 1024,
  flushMs: 1000,
  concurrency: 2,
  retryInitialMs: 100,
  retryMaxMs: 30_000,
  requestTimeoutMs: 60_000,
};

type Values = {
  [K in keyof typeof OUTPUT_OPTIONS]?: (typeof OUTPUT_OPTIONS)[K]['type'] extends 'boolean'
    ? boolean
    : string;
};

export interface OutputConfig {
  connection: ConnectionOptions;
  sink: ElasticsearchSinkOptions;
  manageTemplates: boolean;
  /** where documents carry their parsed fields (mapped `flattened` by the templates) */
  mergeKey?: string | undefined;
}

function secretFrom(file: string | undefined, env: string, flag: string): string | undefined {
  if (file !== undefined) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
  }
  const v = process.env[env];
  return v === undefined || v === '' ? undefined : v;
}

/** Flag values -> output configuration, or undefined for stdout. Throws UsageError. */
export function outputConfig(v: Values, defaultIndex: string, hostName: string): OutputConfig | undefined {
  if (v.es === undefined && v['es-cloud-id'] === undefined) return undefined;
  const nodes = (v.es ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const n of nodes) {
    let u: URL;
    try {
      u = new URL(n);
    } catch {
      throw new UsageError(`--es: '${redactCredentials(n)}' is not a URL; use e.g. http://127.0.0.1:9200`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new UsageError(`--es: '${u.protocol}' URLs are not supported; use http:// or https://`);
    }
  }
  const index = new IndexTemplate(v.index ?? defaultIndex);
  const dlqIndex = v['dlq-index'] ?? OUTPUT_DEFAULTS.dlqIndex;
  validateIndexName(dlqIndex);
  const password = secretFrom(v['es-password-file'], 'LOGFERRY_ES_PASSWORD', '--es-password-file');
  if (v['es-user'] !== undefined && password === undefined) {
    throw new UsageError('--es-user needs a password: set LOGFERRY_ES_PASSWORD or --es-password-file');
  }
  const int = (flag: keyof Values, def: number) => {
    const raw = v[flag];
    return typeof raw === 'string' ? parsePositiveInt(`--${flag}`, raw) : def;
  };
  return {
    manageTemplates: v['manage-templates'] === true,
    connection: {
      nodes,
      cloudId: v['es-cloud-id'],
      apiKey: secretFrom(v['es-api-key-file'], 'LOGFERRY_ES_API_KEY', '--es-api-key-file'),
      username: v['es-user'],
      password,
      bearerToken: secretFrom(
        v['es-bearer-token-file'],
        'LOGFERRY_ES_BEARER_TOKEN',
        '--es-bearer-token-file',
      ),
      caFile: v['es-ca-file'],
      insecure: v['es-insecure'] === true,
      compression: v['es-compression'] === true,
      requestTimeoutMs: int('es-timeout-ms', OUTPUT_DEFAULTS.requestTimeoutMs),
      pipeline: v.pipeline,
    },
    sink: {
      index,
      dlqIndex,
      idMode:
        v['id-mode'] === undefined
          ? OUTPUT_DEFAULTS.idMode
          : parseChoice('--id-mode', v['id-mode'], ['deterministic', 'auto'] as const),
      batchDocs: int('batch-docs', OUTPUT_DEFAULTS.batchDocs),
      batchBytes:
        v['batch-bytes'] === undefined
          ? OUTPUT_DEFAULTS.batchBytes
          : parseBytes('--batch-bytes', v['batch-bytes']),
      flushMs: int('flush-ms', OUTPUT_DEFAULTS.flushMs),
      concurrency: int('concurrency', OUTPUT_DEFAULTS.concurrency),
      retryInitialMs: OUTPUT_DEFAULTS.retryInitialMs,
      retryMaxMs: int('retry-max-ms', OUTPUT_DEFAULTS.retryMaxMs),
      hostName,
      pipeline: v.pipeline,
    },
  };
}

export interface Output {
  sink: Sink;
  /** the Elasticsearch sink, when that is the output (for counters and state) */
  elasticsearch?: ElasticsearchSink | undefined;
  /** the Elasticsearch nodes' failures and recoveries, when the output has a list of URLs */
  nodes?: NodeCounters | undefined;
}

/**
 * Builds the configured output; without Elasticsearch, documents go to stdout. The Elasticsearch
 * client is loaded only when it is used: it is most of `logferry tail`'s start-up time otherwise.
 */
export async function createOutput(
  config: OutputConfig | undefined,
  log: Logger,
  onFatal: (err: Error) => void,
): Promise<Output> {
  if (config === undefined) return { sink: new StreamSink(process.stdout, onFatal) };
  const [{ clientTransport, createClient }, { ElasticsearchSink }, { installTemplates }, { NodeWatcher }] =
    await Promise.all([
      import('../sink/elasticsearch/client.ts'),
      import('../sink/elasticsearch/sink.ts'),
      import('../sink/elasticsearch/templates.ts'),
      import('../sink/elasticsearch/node-watcher.ts'),
    ]);
  const nodes =
    config.connection.cloudId === undefined
      ? new NodeWatcher(log, config.connection.nodes.length)
      : undefined;
  let client: ReturnType<typeof createClient>;
  try {
    client = createClient(config.connection, nodes);
  } catch (err) {
    throw new UsageError(`Elasticsearch client: ${(err as Error).message}`);
  }
  if (config.manageTemplates) {
    await installTemplates(client, [config.sink.index, config.sink.dlqIndex], log, config.mergeKey);
  }
  const sink = new ElasticsearchSink(config.sink, clientTransport(client, config.connection.pipeline), log);
  return { sink, elasticsearch: sink, nodes };
}
