import { LogferryError } from '../../errors.ts';
import { type MetricSamples, parsePrometheusText } from './prometheus.ts';

/** The parts of the agent's /status that top reads (src/server/server.ts serves it). */
export interface AgentStatus {
  version: string;
  uptimeSeconds: number;
  output: { kind: string; state: string; healthy: boolean; lastError: string | null };
  metadata: { state: string; cachedPods: number; misses: number; lastError: string | null };
  buffer: { waitingBytes: number; limitBytes: number; lastProgressAt?: string };
  files: StatusFile[];
}

export interface StatusFile {
  path: string;
  state: string;
  offset: number;
  readPos: number;
  size: number;
  lag: number;
  pendingBatches: number;
  /** since logferry 0.1 with top; an older agent's /status has none, and top reads the path instead */
  pod?: { namespace: string; name: string; container: string } | null;
}

/** One look at the agent: both bodies, and when they were read (for rates). */
export interface AgentSample {
  atMs: number;
  status: AgentStatus;
  metrics: MetricSamples;
}

/** The agent could not be reached, or what answered is not a logferry agent: one line for the user. */
export class AgentUnreachableError extends LogferryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LOGFERRY_ERR_AGENT_UNREACHABLE', message, options);
  }
}

export const FETCH_TIMEOUT_MS = 2000;

function reason(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `no answer within ${FETCH_TIMEOUT_MS / 1000} s`;
  const code = e?.cause?.code;
  if (code !== undefined) return code;
  return e?.cause?.message ?? e?.message ?? String(err);
}

async function get(url: string, timeoutMs: number, stop: AbortSignal | undefined): Promise<string> {
  let res: Response;
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    res = await fetch(url, { signal: stop === undefined ? timeout : AbortSignal.any([timeout, stop]) });
  } catch (err) {
    throw new AgentUnreachableError(`cannot reach the agent at ${url} (${reason(err)})`, { cause: err });
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw new AgentUnreachableError(`${url}: the answer broke off (${reason(err)})`, { cause: err });
  }
  if (!res.ok) {
    throw new AgentUnreachableError(`${url} answered HTTP ${res.status}: is this a logferry agent's server?`);
  }
  return text;
}

function isStatus(v: unknown): v is AgentStatus {
  const s = v as AgentStatus;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.output?.state === 'string' &&
    typeof s.buffer?.waitingBytes === 'number' &&
    Array.isArray(s.files)
  );
}

/** Reads /status and /metrics of the agent at `base` (http://host:port). */
export async function fetchSample(
  base: string,
  options: {
    timeoutMs?: number;
    now?: () => number;
    /** quitting: the requests are abandoned */
    signal?: AbortSignal | undefined;
  } = {},
): Promise<AgentSample> {
  const timeoutMs = options.timeoutMs ?? FETCH_TIMEOUT_MS;
  const [statusText, metricsText] = await Promise.all([
    get(`${base}/status`, timeoutMs, options.signal),
    get(`${base}/metrics`, timeoutMs, options.signal),
  ]);
  const atMs = (options.now ?? Date.now)();
  let status: unknown;
  try {
    status = JSON.parse(statusText);
  } catch {
    status = undefined;
  }
  if (!isStatus(status)) {
    throw new AgentUnreachableError(
      `${base}/status is not a logferry agent's status (not the JSON it serves)`,
    );
  }
  return { atMs, status, metrics: parsePrometheusText(metricsText) };
}
