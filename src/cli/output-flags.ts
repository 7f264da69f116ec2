import { readFileSync } from 'node:fs';
import { redactCredentials, UsageError } from '../errors.ts';
import type { Sink } from '../pipeline/types.ts';
import { IndexTemplate, validateIndexName } from '../sink/elasticsearch/encode.ts';
import type { NodeCounters } from '../sink/elasticsearch/node-watcher.ts';
import type {
  BulkTransport,
  ElasticsearchSink,
  ElasticsearchSinkOptions,
} from '../sink/elasticsearch/sink.ts';
import type { TemplateApi } from '../sink/elasticsearch/templates.ts';
import type { OpenSearchConnectionOptions } from '../sink/opensearch/client.ts';
import type { OutputKind } from '../sink/server-kind.ts';
import { StreamSink } from '../sink/stdout.ts';
import type { Logger } from '../telemetry/logger.ts';
import { parseBytes, parseChoice, parsePositiveInt } from './values.ts';

/** Output flags shared by `tail` and `agent` (node:util parseArgs option definitions). */
export const OUTPUT_OPTIONS = {
  output: { type: 'string' },
  es: { type: 'string' },
  os: { type: 'string' },
  'os-aws-region': { type: 'string' },
  'os-aws-service': { type: 'string' },
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

export const OUTPUT_USAGE = `Elasticsearch or OpenSearch output (without --es or --os, documents go to stdout):
  --output <auto|stdout|elasticsearch|opensearch>  where documents go (default auto: elasticsearch
                               with --es, opensearch with --os, else stdout)
  --es <url[,url...]>          Elasticsearch URLs; requests are spread over them
  --os <url[,url...]>          OpenSearch URLs (the --es-* connection flags, --index and the batching
                               flags apply to it too; see docs/opensearch.md)
  --os-aws-region <region>     sign requests with AWS SigV4 for Amazon OpenSearch Service; credentials
                               from the AWS SDK's default chain (env, IRSA web identity, profile)
  --os-aws-service <es|aoss>   es: a managed domain (default); aoss: OpenSearch Serverless
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
  kind: OutputKind;
  connection: OpenSearchConnectionOptions;
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

const OUTPUT_TYPES = ['auto', 'stdout', 'elasticsearch', 'opensearch'] as const;

/** `--output` with `--es`/`--os`: which output, or a UsageError naming the flag to fix. */
export function outputKind(v: Values): OutputKind | undefined {
  const type = v.output === undefined ? 'auto' : parseChoice('--output', v.output, OUTPUT_TYPES);
  const es = v.es !== undefined || v['es-cloud-id'] !== undefined;
  const os = v.os !== undefined;
  if (es && os)
    throw new UsageError(
      '--es and --os are both set: ship to one of them (--es for Elasticsearch, --os for OpenSearch)',
    );
  switch (type) {
    case 'stdout':
      if (es || os)
        throw new UsageError(
          `--output stdout: drop ${es ? '--es' : '--os'}, or use --output ${es ? 'elasticsearch' : 'opensearch'}`,
        );
      return undefined;
    case 'elasticsearch':
      if (os) throw new UsageError('--output elasticsearch takes its URLs from --es, not --os');
      if (!es) throw new UsageError('--output elasticsearch needs --es URL[,URL...]');
      return 'elasticsearch';
    case 'opensearch':
      if (es)
        throw new UsageError('--output opensearch takes its URLs from --os, not --es (or --es-cloud-id)');
      if (!os) throw new UsageError('--output opensearch needs --os URL[,URL...]');
      return 'opensearch';
    default:
      return es ? 'elasticsearch' : os ? 'opensearch' : undefined;
  }
}

function nodeUrls(raw: string | undefined, flag: string): string[] {
  const nodes = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const n of nodes) {
    let u: URL;
    try {
      u = new URL(n);
    } catch {
      throw new UsageError(`${flag}: '${redactCredentials(n)}' is not a URL; use e.g. http://127.0.0.1:9200`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new UsageError(`${flag}: '${u.protocol}' URLs are not supported; use http:// or https://`);
    }
  }
  return nodes;
}

/** Flag values -> output configuration, or undefined for stdout. Throws UsageError. */
export function outputConfig(v: Values, defaultIndex: string, hostName: string): OutputConfig | undefined {
  const kind = outputKind(v);
  if (kind === undefined) return undefined;
  const nodes = kind === 'opensearch' ? nodeUrls(v.os, '--os') : nodeUrls(v.es, '--es');
  if (kind === 'opensearch' && nodes.length === 0)
    throw new UsageError('--os: no URL given; use e.g. --os http://127.0.0.1:9200');
  const aws = awsSigning(v, kind);
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
  if (kind === 'opensearch') {
    // OpenSearch has no Elasticsearch API keys or Cloud ids: refuse them rather than ignore them
    if (v['es-api-key-file'] !== undefined || process.env.LOGFERRY_ES_API_KEY) {
      throw new UsageError(
        '--es-api-key-file / LOGFERRY_ES_API_KEY: OpenSearch has no API keys; use --es-user or --os-aws-region',
      );
    }
  }
  return {
    kind,
    manageTemplates: v['manage-templates'] === true,
    connection: {
      nodes,
      aws,
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
      kind,
    },
  };
}

const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

function awsSigning(v: Values, kind: OutputKind): OpenSearchConnectionOptions['aws'] {
  const region = v['os-aws-region'];
  const service = v['os-aws-service'];
  if (region === undefined) {
    if (service !== undefined)
      throw new UsageError('--os-aws-service needs --os-aws-region (e.g. --os-aws-region eu-west-1)');
    return undefined;
  }
  if (kind !== 'opensearch')
    throw new UsageError('--os-aws-region signs OpenSearch requests: use it with --os URL');
  if (!AWS_REGION.test(region)) {
    throw new UsageError(`--os-aws-region: '${region}' is not an AWS region; use e.g. eu-west-1`);
  }
  if (v['es-user'] !== undefined || v['es-bearer-token-file'] !== undefined) {
    throw new UsageError(
      '--os-aws-region signs every request with AWS credentials: drop --es-user / --es-bearer-token-file',
    );
  }
  return {
    region,
    service: service === undefined ? 'es' : parseChoice('--os-aws-service', service, ['es', 'aoss'] as const),
  };
}

export interface Output {
  sink: Sink;
  /** the Elasticsearch or OpenSearch sink, when that is the output (for counters and state) */
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
  opts: { wrongServerIsUsageError?: boolean } = {},
): Promise<Output> {
  if (config === undefined) return { sink: new StreamSink(process.stdout, onFatal) };
  const output =
    config.kind === 'opensearch'
      ? await createOpenSearchOutput(config, log)
      : await createElasticsearchOutput(config, log);
  // The server check comes first, so that neither templates nor documents go to the wrong kind of
  // server. `tail`: a wrong server is a wrong flag, said once, exit 2. The agent: logged once, not
  // ready, checked again later (the sink). An unreachable one is the sink's to retry.
  // Without templates to install the agent does not wait for the answer: a node that swallows
  // packets would hold its health server back for a whole request timeout.
  const tail = opts.wrongServerIsUsageError === true;
  const check = output.sink.checkServer({ quiet: tail });
  if (!tail && !config.manageTemplates) {
    void check;
    return { sink: output.sink, elasticsearch: output.sink, nodes: output.nodes };
  }
  const verdict = await check;
  if (!verdict.ok && verdict.permanent && tail) {
    await output.transport.close();
    throw new UsageError(verdict.message);
  }
  if (config.manageTemplates && (verdict.ok || !verdict.permanent)) {
    const { installTemplates } = await import('../sink/elasticsearch/templates.ts');
    await installTemplates(
      output.templates,
      [config.sink.index, config.sink.dlqIndex],
      log,
      config.mergeKey,
      output.mergeKeyMapping,
    );
  }
  return { sink: output.sink, elasticsearch: output.sink, nodes: output.nodes };
}

interface BuiltOutput {
  sink: ElasticsearchSink;
  /** Elasticsearch's node failures and recoveries (node-watcher.ts) */
  nodes?: NodeCounters | undefined;
  transport: BulkTransport;
  templates: TemplateApi;
  /** the merge key's mapping in the templates (default: `flattened`) */
  mergeKeyMapping?: Record<string, unknown> | undefined;
}

async function createElasticsearchOutput(config: OutputConfig, log: Logger): Promise<BuiltOutput> {
  const [
    { clientTransport, createClient },
    { ElasticsearchSink },
    { elasticsearchTemplateApi },
    { elasticsearchIdentify },
    { NodeWatcher },
  ] = await Promise.all([
    import('../sink/elasticsearch/client.ts'),
    import('../sink/elasticsearch/sink.ts'),
    import('../sink/elasticsearch/templates.ts'),
    import('../sink/elasticsearch/identify.ts'),
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
  const transport = {
    ...clientTransport(client, config.connection.pipeline),
    identify: elasticsearchIdentify(client, config.connection.requestTimeoutMs),
  };
  return {
    sink: new ElasticsearchSink(config.sink, transport, log),
    transport,
    templates: elasticsearchTemplateApi(client),
    nodes,
  };
}

/** The same sink over the OpenSearch client; the templates map the merge key as `flat_object`. */
async function createOpenSearchOutput(config: OutputConfig, log: Logger): Promise<BuiltOutput> {
  const [client, { ElasticsearchSink }, { FLAT_OBJECT }] = await Promise.all([
    import('../sink/opensearch/client.ts'),
    import('../sink/elasticsearch/sink.ts'),
    import('../sink/opensearch/templates.ts'),
  ]);
  let os: Awaited<ReturnType<typeof client.createOpenSearchClient>>;
  try {
    os = await client.createOpenSearchClient(config.connection);
  } catch (err) {
    throw new UsageError(`OpenSearch client: ${(err as Error).message}`);
  }
  if (config.connection.aws?.service === 'aoss' && config.sink.idMode === 'deterministic') {
    log.warn(
      'output: OpenSearch Serverless time-series collections refuse bulk items with an _id; use --id-mode auto for them (at least once)',
    );
  }
  const transport = client.openSearchTransport(os, config.connection.pipeline);
  // Serverless collections answer no GET / to identify them by: no server check there
  if (config.connection.aws?.service === 'aoss') delete transport.identify;
  return {
    sink: new ElasticsearchSink(config.sink, transport, log),
    transport,
    templates: client.openSearchTemplateApi(os),
    mergeKeyMapping: FLAT_OBJECT,
  };
}
