/**
 * Every option of `logferry agent`, declared once: its config-file key, flag, environment variable,
 * type, default and description. The zod schema, the flag parser, the environment reader and the
 * reference in docs/configuration.md are all generated from this table (a test keeps the doc in sync).
 */
import type { z } from 'zod';
import {
  filtersSchema,
  multilineCustomSchema,
  multilineRulesSchema,
  parsersSchema,
  workersSchema,
} from './record-options.ts';

/** `structured`: a YAML value (list or mapping) checked by its own schema; file-only (no flag). */
export type OptionType = 'string' | 'int' | 'bytes' | 'bool' | 'list' | 'enum' | 'structured';

export interface OptionSpec {
  /** dotted key in the YAML file, e.g. `output.batchDocs` */
  key: string;
  /** command-line flag without dashes; undefined for file-only options */
  flag: string | undefined;
  type: OptionType;
  /** for enum */
  choices?: readonly string[];
  default: string | number | boolean | string[] | Readonly<Record<string, unknown>> | undefined;
  description: string;
  /** can change on SIGHUP without a restart */
  reloadable?: boolean;
  /** a secret: never printed */
  secret?: boolean;
  /** for structured: the value's schema (its issue messages are shown to the user as they are) */
  schema?: () => z.ZodType;
  /** what the value looks like, for the reference (structured) */
  shape?: string;
}

const MiB = 1024 * 1024;

export const AGENT_OPTIONS: readonly OptionSpec[] = [
  // --- source ---
  {
    key: 'podsDir',
    flag: 'pods-dir',
    type: 'string',
    default: '/var/log/pods',
    description: 'kubelet pod log directory: <namespace>_<pod>_<uid>/<container>/<restart>.log',
  },
  {
    key: 'stateDir',
    flag: 'state-dir',
    type: 'string',
    default: '/var/lib/logferry',
    description: 'checkpoints and the lock file live here (created if missing)',
  },
  {
    key: 'nodeName',
    flag: 'node-name',
    type: 'string',
    default: undefined,
    description: 'this node; only its pods are watched (default: the NODE_NAME environment variable)',
  },
  {
    key: 'readFrom',
    flag: 'read-from',
    type: 'enum',
    choices: ['head', 'tail'],
    default: 'head',
    description:
      'where to start a file that has no checkpoint: head collects what was written before the agent started',
  },
  {
    key: 'format',
    flag: 'format',
    type: 'enum',
    choices: ['auto', 'cri', 'docker', 'json', 'text'],
    default: 'auto',
    description: 'log file format; auto detects CRI or docker json-file per file',
  },
  {
    key: 'maxLineBytes',
    flag: 'max-line-bytes',
    type: 'bytes',
    default: 256 * 1024,
    description: 'a longer line is cut into pieces flagged "split"',
  },
  {
    key: 'workers',
    flag: 'workers',
    type: 'string',
    default: 'auto',
    shape: 'auto or a number of threads from 0 to 64',
    schema: () => workersSchema,
    description:
      'threads that parse and encode (file I/O, acknowledgements and checkpoints stay on the main thread); 0 does it all on the main thread; auto: one less than the cores, at least 1, at most 4',
  },
  {
    key: 'workerIdleMs',
    flag: 'worker-idle-ms',
    type: 'int',
    default: 30_000,
    description:
      'a records worker with nothing to do for this long is ended, its memory returned; the next chunk starts it again',
  },
  // --- records: multiline, parsing, filters, limits, throttling ---
  {
    key: 'multiline.default',
    flag: 'multiline',
    type: 'string',
    default: 'none',
    description:
      'multiline rule for containers without an annotation or a matching multiline.rules entry: none, auto, java, python, go, node, ruby, dotnet or a multiline.custom name (docs/multiline.md)',
  },
  {
    key: 'multiline.flushMs',
    flag: 'multiline-flush-ms',
    type: 'int',
    default: 1000,
    description: 'a pending multiline group is emitted after this much silence from its file',
  },
  {
    key: 'multiline.maxLines',
    flag: 'multiline-max-lines',
    type: 'int',
    default: 500,
    description: 'a multiline group is emitted when it has this many lines (the rest starts a new group)',
  },
  {
    key: 'multiline.maxBytes',
    flag: 'multiline-max-bytes',
    type: 'bytes',
    default: 256 * 1024,
    description: 'a multiline group is emitted before it would pass this many bytes',
  },
  {
    key: 'multiline.rules',
    flag: undefined,
    type: 'structured',
    default: [],
    shape: '[{ path: <glob>, rule: <name> }]',
    description:
      'per path glob (matched against the log file path), the multiline rule; the first match wins; an annotation wins over these',
    schema: () => multilineRulesSchema,
  },
  {
    key: 'multiline.custom',
    flag: undefined,
    type: 'structured',
    default: {},
    shape: '{ <name>: { start: <regex>, continuation: <regex> } }',
    description:
      'custom multiline rules by name: a record starts at a line matching start and/or goes on at lines matching continuation (RE2 syntax)',
    schema: () => multilineCustomSchema,
  },
  {
    key: 'parse.parser',
    flag: 'parser',
    type: 'string',
    default: 'json',
    description:
      'how messages are parsed into fields when the pod has no logferry.io/parser annotation: json, logfmt, none or a parsers entry name',
  },
  {
    key: 'parse.mergeKey',
    flag: 'merge-key',
    type: 'string',
    default: 'json',
    description: 'parsed fields go under this key, never at the top level (docs/parsing.md)',
  },
  {
    key: 'parse.appTimestamp',
    flag: 'app-timestamp',
    type: 'bool',
    default: false,
    description:
      "use the application's own timestamp (time, timestamp, ts) as @timestamp when it has a valid one",
  },
  {
    key: 'parsers',
    flag: undefined,
    type: 'structured',
    default: [],
    shape: '[{ name: <name>, regex: <RE2 regex with named groups> }]',
    description:
      'custom regex parsers: named groups become fields; chosen with parse.parser or the logferry.io/parser annotation',
    schema: () => parsersSchema,
  },
  {
    key: 'filters',
    flag: undefined,
    type: 'structured',
    default: [],
    shape: '[{ include | exclude | drop | rename | add: ... }]',
    description: 'record filters applied in order (docs/filters.md)',
    schema: () => filtersSchema,
  },
  {
    key: 'limits.maxRecordBytes',
    flag: 'max-record-bytes',
    type: 'bytes',
    default: undefined,
    description: 'a longer message is cut to this many bytes and flagged "truncated" (default: no limit)',
  },
  {
    key: 'throttle.linesPerSec',
    flag: 'throttle-lines-per-sec',
    type: 'int',
    default: undefined,
    description: 'per-container rate limit in records per second (default: none)',
  },
  {
    key: 'throttle.bytesPerSec',
    flag: 'throttle-bytes-per-sec',
    type: 'bytes',
    default: undefined,
    description: 'per-container rate limit in message bytes per second (default: none)',
  },
  {
    key: 'throttle.burstSeconds',
    flag: 'throttle-burst-seconds',
    type: 'int',
    default: 1,
    description: 'a container may burst this many seconds of its rate',
  },
  {
    key: 'throttle.action',
    flag: 'throttle-action',
    type: 'enum',
    choices: ['pause', 'drop'],
    default: 'pause',
    description:
      "over the rate: pause reads that container's file (nothing lost, it lags) or drop records (counted, with a summary record)",
  },
  {
    key: 'maxOpenFiles',
    flag: 'max-open-files',
    type: 'int',
    default: 1024,
    description: 'files held open at once; beyond it the quietest fully read file is parked',
  },
  {
    key: 'pollIntervalMs',
    flag: 'poll-interval-ms',
    type: 'int',
    default: 250,
    description: 'how often open files are checked for growth, rotation and truncation',
  },
  {
    key: 'scanIntervalMs',
    flag: 'scan-interval-ms',
    type: 'int',
    default: 10_000,
    description:
      'how often the pods directory is listed again; file-system notifications find new files sooner, this is the safety net',
  },
  {
    key: 'rotateGraceMs',
    flag: 'rotate-grace-ms',
    type: 'int',
    default: 2000,
    description: 'a rotated file is kept open this long after it stopped growing, for late writes',
  },
  {
    key: 'deletedMaxMs',
    flag: 'deleted-max-ms',
    type: 'int',
    default: 300_000,
    description:
      'a deleted file with unread bytes is released after this long; the skipped bytes are counted and logged',
  },
  {
    key: 'maxBufferBytes',
    flag: 'max-buffer-bytes',
    type: 'bytes',
    default: 64 * MiB,
    description:
      'encoded documents (with their metadata) waiting for the output to acknowledge them; reading pauses beyond it',
  },
  // --- Kubernetes metadata ---
  {
    key: 'kube.enabled',
    flag: 'kube',
    type: 'bool',
    default: true,
    description: 'add pod metadata from the Kubernetes API (--no-kube turns it off)',
  },
  {
    key: 'kube.apiUrl',
    flag: 'kube-api',
    type: 'string',
    default: undefined,
    description: 'API server URL (default: in-cluster service account, or KUBECONFIG)',
  },
  {
    key: 'kube.tokenFile',
    flag: 'kube-token-file',
    type: 'string',
    default: undefined,
    description: 'bearer token file for --kube-api',
  },
  {
    key: 'kube.serviceAccountDir',
    flag: 'kube-service-account-dir',
    type: 'string',
    default: '/var/run/secrets/kubernetes.io/serviceaccount',
    description:
      'in a pod (KUBERNETES_SERVICE_HOST set): the directory with the service account token and ca.crt (re-read every minute)',
  },
  {
    key: 'kube.podWaitMs',
    flag: 'kube-pod-wait-ms',
    type: 'int',
    default: 2000,
    description: 'lines of a pod not yet known to the API wait this long for it, then go with path metadata',
  },
  {
    key: 'kube.deletedPodTtlMs',
    flag: 'kube-deleted-pod-ttl-ms',
    type: 'int',
    default: 300_000,
    description: "a deleted pod's metadata is kept this long so its last lines drain enriched",
  },
  {
    key: 'kube.namespaceLabels',
    flag: 'kube-namespace-labels',
    type: 'bool',
    default: false,
    description:
      'add the labels of the pod’s namespace as kubernetes.namespace_labels.* (needs namespaces list/watch)',
  },
  {
    key: 'kube.annotations',
    flag: 'kube-annotations',
    type: 'list',
    default: [],
    description:
      'pod annotations to add as kubernetes.annotations.* (globs, comma-separated on the command line)',
    reloadable: true,
  },
  {
    key: 'kube.dedot',
    flag: 'kube-dedot',
    type: 'bool',
    default: true,
    description:
      'replace dots in label and annotation keys with _ so app and app.kubernetes.io/name never collide',
  },
  {
    key: 'include.namespaces',
    flag: 'include-namespaces',
    type: 'list',
    default: [],
    description: 'only these namespaces (globs; empty: all)',
    reloadable: true,
  },
  {
    key: 'include.pods',
    flag: 'include-pods',
    type: 'list',
    default: [],
    description: 'only these pods (globs; empty: all)',
    reloadable: true,
  },
  {
    key: 'include.containers',
    flag: 'include-containers',
    type: 'list',
    default: [],
    description: 'only these containers (globs; empty: all)',
    reloadable: true,
  },
  {
    key: 'exclude.namespaces',
    flag: 'exclude-namespaces',
    type: 'list',
    default: [],
    description: 'skip these namespaces (globs)',
    reloadable: true,
  },
  {
    key: 'exclude.pods',
    flag: 'exclude-pods',
    type: 'list',
    default: [],
    description: 'skip these pods (globs)',
    reloadable: true,
  },
  {
    key: 'exclude.containers',
    flag: 'exclude-containers',
    type: 'list',
    default: [],
    description: 'skip these containers (globs)',
    reloadable: true,
  },
  // --- output ---
  {
    key: 'output.type',
    flag: 'output',
    type: 'enum',
    choices: ['auto', 'stdout', 'elasticsearch', 'opensearch'],
    default: 'auto',
    description:
      'where documents go; auto: Elasticsearch when output.es is set, OpenSearch when output.os is, else stdout',
  },
  {
    key: 'output.os',
    flag: 'os',
    type: 'list',
    default: [],
    description:
      'OpenSearch URLs (comma-separated on the command line); the other output.* keys apply to it too (docs/opensearch.md)',
  },
  {
    key: 'output.awsRegion',
    flag: 'os-aws-region',
    type: 'string',
    default: undefined,
    description:
      'Amazon OpenSearch Service: sign requests with AWS SigV4 for this region; credentials from the AWS SDK default chain (IRSA)',
  },
  {
    key: 'output.awsService',
    flag: 'os-aws-service',
    type: 'enum',
    choices: ['es', 'aoss'],
    default: undefined,
    description:
      'the SigV4 service name: es for a managed domain (the default with output.awsRegion), aoss for Serverless',
  },
  {
    key: 'output.es',
    flag: 'es',
    type: 'list',
    default: [],
    description: 'Elasticsearch URLs (comma-separated on the command line); empty: documents go to stdout',
  },
  {
    key: 'output.index',
    flag: 'index',
    type: 'string',
    default: 'logs-kubernetes.container_logs-default',
    description:
      'target index or data stream; {field} (e.g. {kubernetes.namespace}) and {yyyy.MM.dd} are substituted',
  },
  {
    key: 'output.dlqIndex',
    flag: 'dlq-index',
    type: 'string',
    default: 'logs-logferry.dlq-default',
    description:
      'documents Elasticsearch refuses (mapping errors) are written here as strings with the reason',
  },
  {
    key: 'output.pipeline',
    flag: 'pipeline',
    type: 'string',
    default: undefined,
    description: 'ingest pipeline',
  },
  {
    key: 'output.idMode',
    flag: 'id-mode',
    type: 'enum',
    choices: ['deterministic', 'auto'],
    default: 'deterministic',
    description:
      'deterministic: _id from file + offset, exactly once; auto: Elasticsearch ids, at least once',
  },
  {
    key: 'output.batchDocs',
    flag: 'batch-docs',
    type: 'int',
    default: 5000,
    description: 'documents per bulk request, at most',
  },
  {
    key: 'output.batchBytes',
    flag: 'batch-bytes',
    type: 'bytes',
    default: 8 * MiB,
    description: 'bulk request size, at most',
  },
  {
    key: 'output.flushMs',
    flag: 'flush-ms',
    type: 'int',
    default: 1000,
    description: 'a partial batch is sent this long after its first document',
  },
  {
    key: 'output.concurrency',
    flag: 'concurrency',
    type: 'int',
    default: 2,
    description: 'bulk requests in flight',
  },
  {
    key: 'output.retryMaxMs',
    flag: 'retry-max-ms',
    type: 'int',
    default: 30_000,
    description: 'cap of the exponential backoff (full jitter) between retries; retries never stop',
  },
  {
    key: 'output.timeoutMs',
    flag: 'es-timeout-ms',
    type: 'int',
    default: 60_000,
    description: 'a bulk request without an answer after this is retried',
  },
  { key: 'output.user', flag: 'es-user', type: 'string', default: undefined, description: 'basic auth user' },
  {
    key: 'output.passwordFile',
    flag: 'es-password-file',
    type: 'string',
    default: undefined,
    description: 'file holding the basic auth password (or LOGFERRY_ES_PASSWORD)',
  },
  {
    key: 'output.apiKeyFile',
    flag: 'es-api-key-file',
    type: 'string',
    default: undefined,
    description: 'file holding an API key (or LOGFERRY_ES_API_KEY)',
  },
  {
    key: 'output.bearerTokenFile',
    flag: 'es-bearer-token-file',
    type: 'string',
    default: undefined,
    description: 'file holding a bearer token (or LOGFERRY_ES_BEARER_TOKEN)',
  },
  {
    key: 'output.caFile',
    flag: 'es-ca-file',
    type: 'string',
    default: undefined,
    description: 'CA certificates to trust (PEM)',
  },
  {
    key: 'output.insecure',
    flag: 'es-insecure',
    type: 'bool',
    default: false,
    description: "do not verify the server's certificate",
  },
  {
    key: 'output.cloudId',
    flag: 'es-cloud-id',
    type: 'string',
    default: undefined,
    description: 'Elastic Cloud deployment id (instead of output.es)',
  },
  {
    key: 'output.compression',
    flag: 'es-compression',
    type: 'bool',
    default: false,
    description: 'gzip request bodies (less network, more CPU)',
  },
  {
    key: 'output.manageTemplates',
    flag: 'manage-templates',
    type: 'bool',
    default: false,
    description:
      'install index templates for the index and the dead-letter index at start (data streams where the cluster has them)',
  },
  // --- server and lifecycle ---
  {
    key: 'http.addr',
    flag: 'http-addr',
    type: 'string',
    default: '0.0.0.0:2020',
    description: 'health, readiness, metrics and status server (host:port)',
  },
  {
    key: 'http.stallTimeoutMs',
    flag: 'stall-timeout-ms',
    type: 'int',
    default: 300_000,
    description:
      '/healthz fails when records wait, the output is healthy, and nothing was delivered for this long',
  },
  {
    key: 'shutdownTimeoutMs',
    flag: 'shutdown-timeout',
    type: 'int',
    default: 25_000,
    description:
      "on SIGTERM, in-flight data gets this long to be delivered (under Kubernetes' 30 s grace period)",
  },
  {
    key: 'logFormat',
    flag: 'log-format',
    type: 'enum',
    choices: ['json', 'text'],
    default: 'json',
    description: "format of logferry's own log lines on stderr",
  },
];

/** `LOGFERRY_` + the flag in upper snake case: `--pods-dir` -> `LOGFERRY_PODS_DIR`. */
export function envName(spec: OptionSpec): string | undefined {
  return spec.flag === undefined ? undefined : `LOGFERRY_${spec.flag.toUpperCase().replaceAll('-', '_')}`;
}
