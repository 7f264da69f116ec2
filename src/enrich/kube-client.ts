import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIPv6 } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { UsageError } from '../errors.ts';
import type { KubeConnection } from './kube-config.ts';

/**
 * A small Kubernetes API client on node:http/node:https: exactly what the pod cache needs (list a collection,
 * watch it), for the connections that need no kubeconfig: in-cluster (service account token + CA) and an API URL.
 *
 * Why not @kubernetes/client-node: importing it (its index, and even its config module) loads every generated API
 * model: measured, 56 to 66 MiB of RSS and 21 MiB of V8 heap more on import, about 35 MiB more RSS in the idle
 * agent, and 0.6 CPU-s at each start (docs/PERFORMANCE.md). It is still
 * used for kubeconfig files (exec plugins, auth providers, contexts), loaded on use (see pod-cache.ts).
 *
 * What the pod cache relies on (list-watch.ts), kept as the library's Watch does it:
 * - `watch()` resolves its AbortController once the server answered 200; a failure calls `done(err)` first;
 * - `done` is called exactly once, when the stream ends (null) or fails (an error);
 * - HTTP errors carry the status as `code` and `statusCode` and the response body as `body` (errorStatus and
 *   describeError read them); an idle watch ends with an error named 'TimeoutError';
 * - lines that are not JSON objects with a string `type` are skipped (a proxy's error page, a truncated line).
 * The bearer token file is re-read every minute (projected service account tokens rotate), as the library and
 * client-go do; so is the CA file.
 */

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

export interface KubeList<T> {
  items: T[];
  metadata?: { resourceVersion?: string | undefined } | undefined;
}

export type WatchEventHandler = (type: string, object: unknown, event: unknown) => void;

/** The part of the library's Watch the pod cache uses; its Watch class fits too. */
export interface KubeWatch {
  watch(
    path: string,
    query: Query,
    onEvent: WatchEventHandler,
    done: (err: unknown) => void,
  ): Promise<AbortController>;
}

/** List and watch, from this client or the library (kube-config.ts libraryApi). */
export interface KubeApi extends KubeWatch {
  list<T>(path: string, query: Query, signal: AbortSignal): Promise<KubeList<T>>;
  /** frees idle connections */
  close(): void;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Where an in-cluster connection looks; tests point it elsewhere. */
export interface InClusterSource {
  /** KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT; default process.env */
  env: NodeJS.ProcessEnv;
  /** default /var/run/secrets/kubernetes.io/serviceaccount/token */
  tokenFile: string;
  /** default /var/run/secrets/kubernetes.io/serviceaccount/ca.crt */
  caFile: string;
}

export interface KubeClientConfig {
  /** base URL, no trailing slash: `https://10.96.0.1:443`, `http://127.0.0.1:8001/prefix` */
  server: string;
  /** bearer token, re-read every `tokenRefreshMs` */
  tokenFile?: string | undefined;
  /** CA bundle for https (default: the system's) */
  caFile?: string | undefined;
  insecureSkipTlsVerify?: boolean | undefined;
}

export interface KubeClientOptions extends KubeClientConfig {
  /** default 'logferry' */
  userAgent?: string | undefined;
  /** a watch that receives nothing for this long ends with a TimeoutError; default 120 s */
  watchIdleTimeoutMs?: number | undefined;
  /** how often the token and CA files are re-read; default 60 s */
  refreshMs?: number | undefined;
  /** for tests */
  now?: (() => number) | undefined;
}

/**
 * The built-in client's configuration for a connection, or undefined when it needs a kubeconfig file (the
 * library's job): `kubeconfig`, and `auto` outside a pod. Throws UsageError as loadKubeConfig does.
 */
export function lightClientConfig(
  conn: KubeConnection = { kind: 'auto' },
  inCluster: Partial<InClusterSource> = {},
): KubeClientConfig | undefined {
  const env = inCluster.env ?? process.env;
  switch (conn.kind) {
    case 'kubeconfig':
      return undefined;
    case 'auto':
      return env.KUBERNETES_SERVICE_HOST ? inClusterConfig(env, inCluster) : undefined;
    case 'in-cluster':
      if (!env.KUBERNETES_SERVICE_HOST) {
        throw new UsageError(
          'in-cluster Kubernetes config: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)',
        );
      }
      return inClusterConfig(env, inCluster);
    case 'url': {
      let url: URL;
      try {
        url = new URL(conn.url);
      } catch (err) {
        throw new UsageError(
          `cannot load the Kubernetes client configuration: invalid API URL '${conn.url}'`,
          { cause: err },
        );
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new UsageError(`the Kubernetes API URL must be http or https: '${conn.url}'`);
      }
      return {
        server: `${url.origin}${url.pathname.replace(/\/+$/, '')}`,
        tokenFile: conn.tokenFile,
        caFile: conn.caFile,
        insecureSkipTlsVerify: conn.insecureSkipTlsVerify ?? false,
      };
    }
  }
}

/** As the library's loadFromCluster: https unless the port is a plain-http one, IPv6 hosts in brackets. */
function inClusterConfig(env: NodeJS.ProcessEnv, paths: Partial<InClusterSource>): KubeClientConfig {
  const host = env.KUBERNETES_SERVICE_HOST!;
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  return {
    server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    tokenFile: paths.tokenFile ?? `${SERVICE_ACCOUNT_DIR}/token`,
    caFile: paths.caFile ?? `${SERVICE_ACCOUNT_DIR}/ca.crt`,
    insecureSkipTlsVerify: false,
  };
}

/** An API answer other than 200: the shape errorStatus and describeError (list-watch.ts) read. */
export class KubeApiError extends Error {
  readonly code: number;
  readonly statusCode: number;
  /** the response body (usually a Status object as JSON), when there was one */
  readonly body: string | undefined;

  constructor(status: number, body: string | undefined) {
    let message = http.STATUS_CODES[status] ?? `HTTP ${status}`;
    try {
      const parsed = JSON.parse(body ?? '') as { message?: unknown };
      if (typeof parsed.message === 'string' && parsed.message !== '') message = parsed.message;
    } catch {}
    super(message);
    this.name = 'KubeApiError';
    this.code = status;
    this.statusCode = status;
    this.body = body === '' ? undefined : body;
  }
}

const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

/**
 * A token (or CA) file, read on first use and again when older than `refreshMs`. A failed re-read keeps the last
 * good content (a rotation in progress); with nothing read yet the error is thrown.
 */
export class RefreshedFile {
  readonly #path: string;
  readonly #what: string;
  readonly #refreshMs: number;
  readonly #now: () => number;
  #content: Buffer | undefined;
  #readAtMs = Number.NEGATIVE_INFINITY;

  constructor(path: string, what: string, refreshMs: number, now: () => number = Date.now) {
    this.#path = path;
    this.#what = what;
    this.#refreshMs = refreshMs;
    this.#now = now;
  }

  get path(): string {
    return this.#path;
  }

  /** The content, re-read when due. */
  get(): Buffer {
    const now = this.#now();
    if (this.#content === undefined || now - this.#readAtMs >= this.#refreshMs) {
      try {
        this.#content = readFileSync(this.#path);
        this.#readAtMs = now;
      } catch (err) {
        if (this.#content === undefined) {
          const e = err as NodeJS.ErrnoException;
          throw Object.assign(
            new Error(`cannot read the ${this.#what} ${this.#path}: ${e.code ?? e.message}`),
            { code: e.code },
          );
        }
      }
    }
    return this.#content!;
  }
}

/** Bearer tokens are trimmed, as client-go does: a trailing newline would make an invalid header. */
export class TokenFile {
  readonly #file: RefreshedFile;
  constructor(path: string, refreshMs: number, now?: () => number) {
    this.#file = new RefreshedFile(path, 'token file', refreshMs, now);
  }
  /** undefined for an empty file (no Authorization header, as the library does) */
  get(): string | undefined {
    const token = this.#file.get().toString('utf8').trim();
    return token === '' ? undefined : token;
  }
}

/**
 * Splits a watch response into newline-delimited JSON events. Chunks may split lines (and UTF-8 characters)
 * anywhere; `\r\n` and blank lines are fine; the last line needs no newline (end() flushes it). A line that is
 * not a JSON object with a string `type` goes to `onGarbage` and is otherwise skipped, as the library skips it.
 * A line longer than `maxLineChars` throws (a stream without newlines must not grow without bound).
 */
export class WatchStreamParser {
  readonly #decoder = new StringDecoder('utf8');
  readonly #onEvent: WatchEventHandler;
  readonly #onGarbage: (line: string) => void;
  readonly #maxLineChars: number;
  /** the current line's text so far, in pieces (joined once its newline arrives) */
  #partial: string[] = [];
  #partialChars = 0;

  constructor(
    onEvent: WatchEventHandler,
    onGarbage: (line: string) => void = () => {},
    maxLineChars = 64 * 1024 * 1024,
  ) {
    this.#onEvent = onEvent;
    this.#onGarbage = onGarbage;
    this.#maxLineChars = maxLineChars;
  }

  write(chunk: Buffer): void {
    this.#text(this.#decoder.write(chunk));
  }

  /** The stream ended: a last line without a newline is still an event. */
  end(): void {
    this.#text(this.#decoder.end());
    if (this.#partial.length > 0) {
      const line = this.#partial.join('');
      this.#partial = [];
      this.#partialChars = 0;
      this.#line(line);
    }
  }

  #text(text: string): void {
    let start = 0;
    let nl = text.indexOf('\n');
    while (nl !== -1) {
      let line = text.slice(start, nl);
      if (this.#partial.length > 0) {
        this.#partial.push(line);
        line = this.#partial.join('');
        this.#partial = [];
        this.#partialChars = 0;
      }
      this.#line(line);
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    if (start < text.length) {
      const rest = text.slice(start);
      this.#partial.push(rest);
      this.#partialChars += rest.length;
      if (this.#partialChars > this.#maxLineChars) {
        this.#partial = [];
        this.#partialChars = 0;
        throw new Error(`a watch event longer than ${this.#maxLineChars} characters`);
      }
    }
  }

  #line(line: string): void {
    if (line.trim() === '') return;
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      this.#onGarbage(line);
      return;
    }
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      this.#onGarbage(line);
      return;
    }
    const { type, object } = event as { type?: unknown; object?: unknown };
    if (typeof type !== 'string') {
      this.#onGarbage(line);
      return;
    }
    this.#onEvent(type, object, event);
  }
}

function timeoutError(): DOMException {
  return new DOMException('The operation was aborted due to timeout', 'TimeoutError');
}

/** Reads a (small) error body; never rejects. */
function readErrorBody(res: http.IncomingMessage, limit = 64 * 1024): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      if (size < limit) chunks.push(chunk);
      size += chunk.length;
    });
    const finish = (): void => resolve(Buffer.concat(chunks).toString('utf8').slice(0, limit));
    res.on('end', finish);
    res.on('error', finish);
    res.on('close', finish);
  });
}

/**
 * Connections are kept for the next request (a relist, the next watch), with TCP keep-alive probes on watches that
 * stay quiet; an idle pooled connection is closed after 30 s, before a server or load balancer drops it under a
 * request (the socket timeout only ends pooled sockets: a quiet watch in use is left alone).
 */
const AGENT_OPTIONS: http.AgentOptions = { keepAlive: true, keepAliveMsecs: 30_000, timeout: 30_000 };

export class KubeClient implements KubeApi {
  readonly #server: string;
  readonly #https: boolean;
  readonly #insecure: boolean;
  readonly #userAgent: string;
  readonly #idleMs: number;
  readonly #token: TokenFile | undefined;
  readonly #ca: RefreshedFile | undefined;
  #agent: http.Agent | undefined;
  #agentCa: Buffer | undefined;
  /** https agents replaced after a CA change: their watches run on, then they are closed with the client */
  #retired: http.Agent[] = [];

  constructor(opts: KubeClientOptions) {
    this.#server = opts.server.replace(/\/+$/, '');
    this.#https = this.#server.startsWith('https:');
    this.#insecure = opts.insecureSkipTlsVerify ?? false;
    this.#userAgent = opts.userAgent ?? 'logferry';
    this.#idleMs = opts.watchIdleTimeoutMs ?? 120_000;
    const refreshMs = opts.refreshMs ?? 60_000;
    this.#token =
      opts.tokenFile === undefined ? undefined : new TokenFile(opts.tokenFile, refreshMs, opts.now);
    this.#ca =
      opts.caFile === undefined || !this.#https
        ? undefined
        : new RefreshedFile(opts.caFile, 'CA file', refreshMs, opts.now);
  }

  get server(): string {
    return this.#server;
  }

  async list<T>(path: string, query: Query, signal: AbortSignal): Promise<KubeList<T>> {
    const { status, body } = await this.#get(path, query, signal);
    if (status !== 200) throw new KubeApiError(status, body);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new Error(`GET ${path}: the answer is not JSON: ${body.slice(0, 100)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as KubeList<T>).items)) {
      throw new Error(`GET ${path}: the answer is not a list`);
    }
    return parsed as KubeList<T>;
  }

  watch(
    path: string,
    query: Query,
    onEvent: WatchEventHandler,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const controller = new AbortController();
    return new Promise<AbortController>((resolve) => {
      let finished = false;
      let req: http.ClientRequest | undefined;
      const finish = (err: unknown): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        controller.signal.removeEventListener('abort', onAbort);
        req?.destroy();
        try {
          done(err);
        } finally {
          resolve(controller);
        }
      };
      const onAbort = (): void => finish(controller.signal.reason);
      controller.signal.addEventListener('abort', onAbort, { once: true });
      // Until the answer this bounds the connection; from then on it is an idle timeout, reset by every chunk.
      const timer = setTimeout(() => finish(timeoutError()), this.#idleMs);
      timer.unref();

      let request: { url: URL; options: http.RequestOptions };
      try {
        request = this.#request(path, { watch: true, ...query });
      } catch (err) {
        finish(err);
        return;
      }
      req = (this.#https ? https : http).request(request.url, request.options, (res) => {
        if (finished) {
          res.destroy();
          return;
        }
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          void readErrorBody(res).then((body) => finish(new KubeApiError(status, body)));
          return;
        }
        timer.refresh();
        resolve(controller);
        const parser = new WatchStreamParser((type, object, event) => {
          if (!finished) onEvent(type, object, event);
        });
        res.on('data', (chunk: Buffer) => {
          if (finished) return;
          timer.refresh();
          try {
            parser.write(chunk);
          } catch (err) {
            finish(err);
          }
        });
        res.on('end', () => {
          if (finished) return;
          try {
            parser.end();
          } catch (err) {
            finish(err);
            return;
          }
          finish(null);
        });
        res.on('error', (err) => finish(this.#connectionError(err)));
        res.on('close', () =>
          finish(res.complete ? null : new Error('the watch connection closed mid-stream')),
        );
      });
      req.on('error', (err) => finish(this.#connectionError(err)));
      req.end();
    });
  }

  close(): void {
    this.#agent?.destroy();
    this.#agent = undefined;
    for (const agent of this.#retired) agent.destroy();
    this.#retired = [];
  }

  #get(path: string, query: Query, signal: AbortSignal): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      let settled = false;
      let req: http.ClientRequest | undefined;
      const settle = (outcome: { err: unknown } | { status: number; body: string }): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if ('err' in outcome) {
          req?.destroy();
          reject(outcome.err);
        } else {
          resolve(outcome);
        }
      };
      const onAbort = (): void => settle({ err: signal.reason });
      signal.addEventListener('abort', onAbort, { once: true });
      let request: { url: URL; options: http.RequestOptions };
      try {
        request = this.#request(path, query);
      } catch (err) {
        settle({ err });
        return;
      }
      request.options.headers = { ...request.options.headers, 'Accept-Encoding': 'gzip' };
      req = (this.#https ? https : http).request(request.url, request.options, (res) => {
        const gzip = res.headers['content-encoding'] === 'gzip';
        const body = gzip ? res.pipe(createGunzip()) : res;
        const chunks: Buffer[] = [];
        body.on('data', (chunk: Buffer) => chunks.push(chunk));
        body.on('end', () =>
          settle({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        body.on('error', (err) => settle({ err: this.#connectionError(err) }));
        res.on('error', (err) => settle({ err: this.#connectionError(err) }));
        res.on('close', () => {
          if (!res.complete)
            settle({ err: new Error(`GET ${path}: the connection closed before the answer ended`) });
        });
      });
      req.on('error', (err) => settle({ err: this.#connectionError(err) }));
      req.end();
    });
  }

  #request(path: string, query: Query): { url: URL; options: http.RequestOptions } {
    const url = new URL(this.#server + path);
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': this.#userAgent,
    };
    const token = this.#token?.get();
    if (token !== undefined) headers.Authorization = `Bearer ${token}`;
    return { url, options: { method: 'GET', headers, agent: this.#currentAgent() } };
  }

  #currentAgent(): http.Agent {
    if (!this.#https) {
      this.#agent ??= new http.Agent(AGENT_OPTIONS);
      return this.#agent;
    }
    const ca = this.#ca?.get();
    if (
      this.#agent !== undefined &&
      (ca === undefined || ca === this.#agentCa || ca.equals(this.#agentCa!))
    ) {
      return this.#agent;
    }
    if (this.#agent !== undefined) {
      // A new CA bundle: new connections use it; idle ones of the old agent go now, watches run on.
      for (const sockets of Object.values(this.#agent.freeSockets))
        for (const s of sockets ?? []) s.destroy();
      this.#retired.push(this.#agent);
    }
    this.#agentCa = ca;
    this.#agent = new https.Agent({
      ...AGENT_OPTIONS,
      rejectUnauthorized: !this.#insecure,
      ...(ca === undefined ? {} : { ca }),
    });
    return this.#agent;
  }

  /** A network or TLS failure, saying where and, for an untrusted certificate, which CA was used. */
  #connectionError(err: Error): Error {
    if (err instanceof KubeApiError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    let message = `cannot reach the Kubernetes API at ${this.#server}: ${err.message}`;
    if (code !== undefined && TLS_TRUST_CODES.has(code)) {
      const trusted = this.#ca === undefined ? 'the system CAs' : `the CA file ${this.#ca.path}`;
      // Node's hint about --use-system-ca does not apply when a CA file is given.
      const detail = err.message.replace(/; if the root CA is installed locally.*$/, '');
      message = `the Kubernetes API at ${this.#server} presented a certificate not trusted by ${trusted} (${code}: ${detail})`;
    }
    return Object.assign(new Error(message), { code });
  }
}
