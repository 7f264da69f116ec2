// A fake Elasticsearch 8.19 that is a real HTTP server on 127.0.0.1 (port 0), faithful to what
// @elastic/elasticsearch 8.x and a log shipper see: the product header, compatibility media types, gzip both ways,
// _bulk with per-item results, version conflicts, dynamic-mapping conflicts, http.max_content_length, and faults
// injected at run time. Response shapes were captured from a real 8.19.21 node (scripts/es-test-server.sh); see
// docs/testing-elasticsearch.md for what is and is not modelled.

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { promisify } from 'node:util';
import { gunzip, gzipSync, inflate } from 'node:zlib';
import { type FastifyInstance, type FastifyReply, type FastifyRequest, fastify } from 'fastify';
import { type BulkOp, invalidIndexNameReason, parseBulkBody } from './fake-elasticsearch-bulk.ts';
import {
  type EsCause,
  type EsErrorBody,
  illegalArgument,
  indexNotFound,
  itemFaultError,
  mediaTypeError,
  requestError,
  statusFaultBody,
} from './fake-elasticsearch-errors.ts';
import {
  FaultBoard,
  type FaultHandle,
  type FaultKind,
  type FaultSpec,
  realClearTimeout,
  realNow,
  realSetTimeout,
  realSleep,
} from './fake-elasticsearch-faults.ts';
import { applyFilterPath } from './fake-elasticsearch-filter-path.ts';
import {
  type DynamicMode,
  type FieldMap,
  type FieldType,
  fieldsFromMappings,
  isPlainObject,
  mapDocument,
  mappingsFromFields,
} from './fake-elasticsearch-mapping.ts';

export type { DynamicMode, FaultHandle, FaultSpec, FieldType };

export interface FakeElasticsearchOptions {
  // Reported by GET /. Default '8.19.21', the version scripts/es-test-server.sh runs.
  version?: string;
  clusterName?: string;
  // Largest decoded request body accepted, like `http.max_content_length` (default 100 MiB, as in Elasticsearch).
  // Larger requests get 413 with an empty body and no product header, exactly as Elasticsearch answers.
  maxContentLength?: number;
  // Field types every new index starts with (dotted paths), e.g. { 'kubernetes.labels.app': 'keyword' }.
  // Index templates and explicit index creation add to these.
  mappings?: Record<string, FieldType>;
  // Dynamic mapping of unknown fields: true (Elasticsearch's default) maps them from the first value seen, so a
  // later document with another JSON type for the same field gets a per-item 400; false ignores them; 'strict'
  // rejects them.
  dynamic?: DynamicMode;
  // Ingest pipelines that exist. 'any' (default) accepts every `pipeline` parameter; a list makes unknown pipelines
  // fail per item as in Elasticsearch. PUT /_ingest/pipeline/<id> adds to the list. Pipelines run no processors.
  pipelines?: 'any' | readonly string[];
  // Gzip responses when the client accepts it (`http.compression`, on by default in Elasticsearch).
  compressResponses?: boolean;
  // Port to listen on; 0 (default) picks a free one. stop()/restart() keep whichever port was bound.
  port?: number;
}

export interface StoredDoc {
  index: string;
  id: string;
  source: Record<string, unknown>;
  version: number;
  seqNo: number;
}

export interface RecordedRequest {
  method: string;
  // Path and query as sent.
  url: string;
  path: string;
  // null while unanswered, and for requests whose socket was reset or destroyed.
  status: number | null;
  // Body size on the wire, and after gunzip.
  bodyBytes: number;
  decodedBytes: number;
  contentEncoding: string | undefined;
  // Bulk operations parsed from the body, and how many ended with each item status.
  items: number;
  itemStatuses: Record<number, number>;
  // Request-level fault applied to this request, if any.
  fault: FaultKind | undefined;
  receivedAt: number;
}

export interface FakeElasticsearch {
  readonly url: string;
  readonly port: number;
  // Every request received since start (or reset()), in arrival order.
  readonly requests: readonly RecordedRequest[];
  // Stored documents in insertion order; `index` may be a name, a wildcard pattern or a comma list.
  docs(index?: string): StoredDoc[];
  count(index?: string): number;
  indices(): string[];
  // Adds field types to an index (created if missing), like PUT /<index>/_mapping.
  putMapping(index: string, fields: Record<string, FieldType>): void;
  fault(spec: FaultSpec): FaultHandle;
  clearFaults(): void;
  // Resolves once count(index) >= count; rejects after timeoutMs (default 10 s) naming the count reached.
  waitForCount(count: number, opts?: { index?: string; timeoutMs?: number }): Promise<void>;
  // Forgets indices, templates, pipelines added at run time, the request log and faults.
  reset(): void;
  // Closes the listener and destroys open connections: clients get "connection refused" until restart().
  stop(): Promise<void>;
  // Listens again on the same port.
  restart(): Promise<void>;
  // stop(), then restart() after `ms` of wall time; resolves when the server is back.
  outage(ms: number): Promise<void>;
  close(): Promise<void>;
}

interface DocState {
  source: Record<string, unknown>;
  version: number;
  seqNo: number;
  order: number;
}

interface IndexState {
  name: string;
  uuid: string;
  fields: FieldMap;
  // Declared type names ('integer') where they differ from the family the fake checks values against ('long').
  typeNames: Map<string, string>;
  dynamic: DynamicMode;
  replicas: number;
  settings: Record<string, unknown>;
  createdAt: number;
  seqNo: number;
  docs: Map<string, DocState>;
}

interface IndexTemplate {
  name: string;
  patterns: string[];
  priority: number;
  body: Record<string, unknown>;
}

const BUILD_HASH = '4fe44c255c3d0da06779b921e132cdc555ed9aff';
const BUILD_DATE = '2026-08-26T22:10:47.574903747Z';
const LUCENE_VERSION = '9.12.2';
const DEFAULT_MAX_CONTENT_LENGTH = 100 * 1024 * 1024;
// Far above any test body: the fake applies maxContentLength itself after decoding, as Elasticsearch does.
const TRANSPORT_BODY_LIMIT = 1024 * 1024 * 1024;

const BULK_QUERY_PARAMS: ReadonlySet<string> = new Set([
  'pipeline',
  'refresh',
  'routing',
  'timeout',
  'wait_for_active_shards',
  'require_alias',
  'require_data_stream',
  'list_executed_pipelines',
  'include_source_on_error',
  '_source',
  '_source_includes',
  '_source_excludes',
  'filter_path',
  'pretty',
  'human',
  'error_trace',
]);

const BULK_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/json',
  'application/x-ndjson',
  'application/vnd.elasticsearch+json',
  'application/vnd.elasticsearch+x-ndjson',
]);
const JSON_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/json',
  'application/vnd.elasticsearch+json',
]);

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

// Auto-generated ids look like Elasticsearch's: 20 URL-safe base64 characters.
function autoId(): string {
  return randomBytes(15).toString('base64url');
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function indexUuid(): string {
  return randomBytes(16).toString('base64url');
}

function globToRegex(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`);
}

// Declaring 'a.b.c' declares objects 'a' and 'a.b' too, as a nested `properties` tree would.
function withParents(entries: Array<[string, FieldType]>): FieldMap {
  const fields: FieldMap = new Map();
  for (const [path] of entries) {
    const segments = path.split('.');
    for (let i = 1; i < segments.length; i += 1) fields.set(segments.slice(0, i).join('.'), 'object');
  }
  for (const [path, type] of entries) fields.set(path, type);
  return fields;
}

function deepMerge(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function compatVersion(header: string | undefined): number | undefined {
  const match = header === undefined ? null : /compatible-with\s*=\s*(\d+)/i.exec(header);
  return match === null ? undefined : Number(match[1]);
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export async function startFakeElasticsearch(
  opts: FakeElasticsearchOptions = {},
): Promise<FakeElasticsearch> {
  const version = opts.version ?? '8.19.21';
  const clusterName = opts.clusterName ?? 'fake-elasticsearch';
  const clusterUuid = indexUuid();
  const maxContentLength = opts.maxContentLength ?? DEFAULT_MAX_CONTENT_LENGTH;
  const baseFields = withParents(Object.entries(opts.mappings ?? {}));
  const dynamic = opts.dynamic ?? true;
  const compressResponses = opts.compressResponses ?? true;

  const indices = new Map<string, IndexState>();
  const templates = new Map<string, IndexTemplate>();
  let pipelines: Set<string> | 'any' =
    opts.pipelines === undefined || opts.pipelines === 'any' ? 'any' : new Set(opts.pipelines);
  let requests: RecordedRequest[] = [];
  const records = new WeakMap<IncomingMessage, RecordedRequest>();
  const faults = new FaultBoard();
  let insertion = 0;
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  let stopped = false;
  let closed = false;
  // Resolves when the server stops, so requests held by a 'hang' fault are cut off like on a node going down.
  let down = deferred();
  const resetAfterProcessing = new WeakSet<IncomingMessage>();

  const server: Server = createServer();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const app: FastifyInstance = fastify({
    logger: false,
    bodyLimit: TRANSPORT_BODY_LIMIT,
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      server.on('request', handler);
      return server;
    },
  });

  // Elasticsearch reads every body itself, whatever its declared type; media types are checked per route below
  // so that a wrong Content-Type gets Elasticsearch's 406 rather than Fastify's 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: TRANSPORT_BODY_LIMIT },
    (_req, body, done) => {
      done(null, body);
    },
  );

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-elastic-product', 'Elasticsearch');
    const record: RecordedRequest = {
      method: req.method,
      url: req.url,
      path: req.url.split('?')[0] ?? req.url,
      status: null,
      bodyBytes: 0,
      decodedBytes: 0,
      contentEncoding: firstHeader(req.headers['content-encoding']),
      items: 0,
      itemStatuses: {},
      fault: undefined,
      receivedAt: realNow(),
    };
    requests.push(record);
    records.set(req.raw, record);
  });

  app.addHook('onResponse', async (req, reply) => {
    const record = records.get(req.raw);
    if (record !== undefined && reply.raw.writableFinished) record.status = reply.statusCode;
  });

  app.addHook('onSend', async (req, reply, payload) => {
    if (!compressResponses) return payload;
    const accepts = firstHeader(req.headers['accept-encoding']) ?? '';
    if (!/\bgzip\b/i.test(accepts)) return payload;
    if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) return payload;
    if (payload.length === 0) return payload;
    reply.header('content-encoding', 'gzip');
    return gzipSync(payload);
  });

  // Request-level faults, run before any route so they apply to every endpoint a scope covers.
  app.addHook('preHandler', async (req, reply) => {
    const record = records.get(req.raw);
    if (record !== undefined && Buffer.isBuffer(req.body)) record.bodyBytes = req.body.length;
    const isBulk = /\/_bulk$/.test(req.routeOptions.url ?? '');
    const latency = faults.take(['latency'], isBulk);
    if (latency !== undefined && latency.spec.kind === 'latency') {
      if (record !== undefined) record.fault = 'latency';
      await Promise.race([realSleep(latency.spec.ms, { unref: true }), down.promise]);
      if (stopped || closed) {
        return cutOff(req, reply);
      }
    }
    const held = faults.take(['hang'], isBulk);
    if (held !== undefined) {
      if (record !== undefined) record.fault = 'hang';
      await Promise.race([held.released(), down.promise]);
      if (stopped || closed) {
        return cutOff(req, reply);
      }
    }
    const reset = faults.take(['reset'], isBulk);
    if (reset !== undefined && reset.spec.kind === 'reset') {
      if (record !== undefined) record.fault = 'reset';
      if ((reset.spec.after ?? 'receive') === 'receive') {
        return cutOff(req, reply);
      }
      // Reset after processing: the bulk handler destroys the socket instead of answering.
      resetAfterProcessing.add(req.raw);
    }
    const status = faults.take(['status'], isBulk);
    if (status !== undefined && status.spec.kind === 'status') {
      if (record !== undefined) record.fault = 'status';
      const shaped = statusFaultBody(status.spec.status, record?.path ?? req.url);
      const body = status.spec.body ?? shaped.body;
      for (const [name, value] of Object.entries(shaped.headers)) reply.header(name, value);
      // A proxy's 502/504 does not come from Elasticsearch, so it carries no product header.
      if (status.spec.status === 502 || status.spec.status === 504) reply.removeHeader('x-elastic-product');
      if (typeof body === 'string') {
        reply
          .code(status.spec.status)
          .header('content-type', 'text/plain; charset=UTF-8')
          .send(Buffer.from(body));
      } else {
        sendJson(req, reply, status.spec.status, body);
      }
      return reply;
    }
    return undefined;
  });

  app.setErrorHandler(async (err: Error & { statusCode?: number }, req, reply) => {
    if (err.statusCode === 413) {
      sendTooLarge(req, reply);
      return;
    }
    sendJson(
      req,
      reply,
      err.statusCode ?? 500,
      requestError(err.statusCode ?? 500, { type: 'exception', reason: err.message }),
    );
  });

  app.setNotFoundHandler(async (req, reply) => {
    // Elasticsearch's answer for an unknown path has no `status` field.
    sendJson(req, reply, 400, { error: `no handler found for uri [${req.url}] and method [${req.method}]` });
  });

  // Ends the exchange without an answer, as a crashed node or a dropped connection does.
  function cutOff(req: FastifyRequest, reply: FastifyReply): FastifyReply {
    reply.hijack();
    req.raw.socket.destroy();
    return reply;
  }

  function responseContentType(req: FastifyRequest): string {
    const v = compatVersion(firstHeader(req.headers.accept));
    return v === undefined ? 'application/json' : `application/vnd.elasticsearch+json;compatible-with=${v}`;
  }

  function sendJson(req: FastifyRequest, reply: FastifyReply, status: number, body: unknown): void {
    const filter = (req.query as Record<string, string | undefined>).filter_path;
    const shaped = filter === undefined ? body : applyFilterPath(body, filter);
    // A Buffer, so Fastify adds no `; charset=utf-8` that Elasticsearch does not send.
    reply
      .code(status)
      .header('content-type', responseContentType(req))
      .send(Buffer.from(JSON.stringify(shaped)));
  }

  function sendError(req: FastifyRequest, reply: FastifyReply, error: EsErrorBody): void {
    sendJson(req, reply, error.status, error);
  }

  function sendTooLarge(req: FastifyRequest, reply: FastifyReply): void {
    // Netty's aggregator answers this before Elasticsearch sees the request: no body, no content type, no product
    // header, and the connection closed. Written raw because Fastify would add a content type.
    reply.hijack();
    reply.raw.writeHead(413, 'Request Entity Too Large', { 'content-length': '0', connection: 'close' });
    reply.raw.end();
    const record = records.get(req.raw);
    if (record !== undefined) record.status = 413;
  }

  // Media-type rules of Elasticsearch's REST layer, in its order: Accept version, Content-Type version, then both
  // or neither asking for compatibility. Returns the body to answer with, or undefined to go on.
  function checkMediaTypes(
    req: FastifyRequest,
    allowed: ReadonlySet<string>,
  ): { status: number; body: unknown } | undefined {
    const accept = firstHeader(req.headers.accept);
    const acceptVersion = compatVersion(accept);
    if (acceptVersion !== undefined && acceptVersion !== 7 && acceptVersion !== 8) {
      return {
        status: 400,
        body: mediaTypeError(
          `Accept version must be either version 8 or 7, but found ${acceptVersion}. Accept=${accept}`,
        ),
      };
    }
    const hasBody = Buffer.isBuffer(req.body) && req.body.length > 0;
    if (!hasBody) return undefined;
    const contentType = firstHeader(req.headers['content-type']) ?? '';
    const mediaType = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    if (!allowed.has(mediaType)) {
      return {
        status: 406,
        body: { error: `Content-Type header [${contentType}] is not supported`, status: 406 },
      };
    }
    const contentVersion = compatVersion(contentType);
    if (contentVersion !== undefined && contentVersion !== 7 && contentVersion !== 8) {
      return {
        status: 400,
        body: mediaTypeError(
          `Content-Type version must be either version 8 or 7, but found ${contentVersion}. Content-Type=${contentType}`,
        ),
      };
    }
    if ((contentVersion === undefined) !== (acceptVersion === undefined)) {
      const shownAccept = accept === undefined || accept === '*/*' ? 'null' : accept;
      return {
        status: 400,
        body: mediaTypeError(
          'A compatible version is required on both Content-Type and Accept headers if either one has requested a ' +
            `compatible version. Accept=${shownAccept}, Content-Type=${contentType}`,
        ),
      };
    }
    return undefined;
  }

  async function decodedBody(req: FastifyRequest): Promise<Buffer> {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const encoding = (firstHeader(req.headers['content-encoding']) ?? '').toLowerCase();
    if (encoding.includes('gzip')) return gunzipAsync(raw);
    if (encoding.includes('deflate')) return inflateAsync(raw);
    return raw;
  }

  // Reads a JSON request body for the non-bulk endpoints. Undefined for no body; an error body for bad JSON.
  function jsonBody(decoded: Buffer): { ok: true; value: unknown } | { ok: false; error: EsErrorBody } {
    if (decoded.length === 0) return { ok: true, value: undefined };
    try {
      return { ok: true, value: JSON.parse(decoded.toString('utf8')) };
    } catch (err) {
      return {
        ok: false,
        error: requestError(400, {
          type: 'x_content_parse_exception',
          reason: `[1:1] ${err instanceof Error ? err.message : String(err)}`,
        }),
      };
    }
  }

  // Common preamble for endpoints with a JSON body: decode, size limit, media types, parse.
  async function readJson(req: FastifyRequest, reply: FastifyReply): Promise<{ value: unknown } | undefined> {
    let decoded: Buffer;
    try {
      decoded = await decodedBody(req);
    } catch {
      sendError(
        req,
        reply,
        requestError(400, { type: 'parse_exception', reason: 'failed to decompress the body' }),
      );
      return undefined;
    }
    if (decoded.length > maxContentLength) {
      sendTooLarge(req, reply);
      return undefined;
    }
    const media = checkMediaTypes(req, JSON_MEDIA_TYPES);
    if (media !== undefined) {
      sendJson(req, reply, media.status, media.body);
      return undefined;
    }
    const parsed = jsonBody(decoded);
    if (!parsed.ok) {
      sendError(req, reply, parsed.error);
      return undefined;
    }
    return { value: parsed.value };
  }

  function matchingTemplate(name: string): IndexTemplate | undefined {
    let best: IndexTemplate | undefined;
    for (const template of templates.values()) {
      if (!template.patterns.some((p) => globToRegex(p).test(name))) continue;
      if (best === undefined || template.priority > best.priority) best = template;
    }
    return best;
  }

  function createIndex(name: string, body?: Record<string, unknown>): IndexState {
    const fields: FieldMap = new Map(baseFields);
    const typeNames = new Map<string, string>();
    let indexDynamic = dynamic;
    let replicas = 1;
    const settings: Record<string, unknown> = {};
    const apply = (source: unknown): void => {
      if (!isPlainObject(source)) return;
      const mapped = fieldsFromMappings(source.mappings);
      for (const [path, type] of mapped.fields) fields.set(path, type);
      for (const [path, name] of mapped.typeNames) typeNames.set(path, name);
      if (mapped.dynamic !== undefined) indexDynamic = mapped.dynamic;
      if (isPlainObject(source.settings)) {
        const flat = flattenSettings(source.settings);
        Object.assign(settings, flat);
        const r = flat['index.number_of_replicas'];
        if (r !== undefined) replicas = Number(r);
      }
    };
    apply(matchingTemplate(name)?.body.template);
    apply(body);
    const state: IndexState = {
      name,
      uuid: indexUuid(),
      fields,
      typeNames,
      dynamic: indexDynamic,
      replicas,
      settings,
      createdAt: realNow(),
      seqNo: 0,
      docs: new Map(),
    };
    indices.set(name, state);
    return state;
  }

  function flattenSettings(settings: Record<string, unknown>, prefix = ''): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(settings)) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      if (isPlainObject(value)) Object.assign(out, flattenSettings(value, path));
      else out[path.startsWith('index.') ? path : `index.${path}`] = value;
    }
    return out;
  }

  // Resolves an index expression (names, wildcards, comma lists, _all) to existing indices. A missing concrete
  // name is an error unless ignoreUnavailable; wildcards that match nothing are not.
  function resolve(
    expr: string | undefined,
    ignoreUnavailable = false,
  ): { ok: true; names: string[] } | { ok: false; missing: string } {
    if (expr === undefined || expr === '' || expr === '_all' || expr === '*')
      return { ok: true, names: [...indices.keys()] };
    const names: string[] = [];
    for (const part of expr.split(',')) {
      if (part.startsWith('-')) {
        const drop = globToRegex(part.slice(1));
        for (let i = names.length - 1; i >= 0; i -= 1) if (drop.test(names[i]!)) names.splice(i, 1);
        continue;
      }
      if (part.includes('*')) {
        const regex = globToRegex(part);
        for (const name of indices.keys()) if (regex.test(name) && !names.includes(name)) names.push(name);
        continue;
      }
      if (!indices.has(part)) {
        if (ignoreUnavailable) continue;
        return { ok: false, missing: part };
      }
      if (!names.includes(part)) names.push(part);
    }
    return { ok: true, names };
  }

  function allDocs(names: readonly string[]): StoredDoc[] {
    const out: Array<StoredDoc & { order: number }> = [];
    for (const name of names) {
      const state = indices.get(name);
      if (state === undefined) continue;
      for (const [id, doc] of state.docs) {
        out.push({
          index: name,
          id,
          source: doc.source,
          version: doc.version,
          seqNo: doc.seqNo,
          order: doc.order,
        });
      }
    }
    return out.sort((a, b) => a.order - b.order).map(({ order: _order, ...doc }) => doc);
  }

  function notifyWaiters(): void {
    for (const waiter of [...waiters]) waiter();
  }

  function shards(state: IndexState): { total: number; successful: number; failed: number } {
    return { total: state.replicas + 1, successful: 1, failed: 0 };
  }

  // --- _bulk -----------------------------------------------------------------------------------------------------

  async function handleBulk(
    req: FastifyRequest<{ Params: { index?: string } }>,
    reply: FastifyReply,
  ): Promise<void> {
    const started = performance.now();
    const record = records.get(req.raw);
    const query = req.query as Record<string, string | undefined>;
    const path = record?.path ?? req.url;

    let decoded: Buffer;
    try {
      decoded = await decodedBody(req);
    } catch {
      sendError(
        req,
        reply,
        requestError(400, { type: 'parse_exception', reason: 'failed to decompress the bulk body' }),
      );
      return;
    }
    if (record !== undefined) record.decodedBytes = decoded.length;
    if (decoded.length > maxContentLength) {
      sendTooLarge(req, reply);
      return;
    }
    const media = checkMediaTypes(req, BULK_MEDIA_TYPES);
    if (media !== undefined) {
      sendJson(req, reply, media.status, media.body);
      return;
    }
    const unknown = Object.keys(query).filter((key) => !BULK_QUERY_PARAMS.has(key));
    if (unknown.length > 0) {
      const list = unknown.map((k) => `[${k}]`).join(', ');
      const noun = unknown.length === 1 ? 'parameter' : 'parameters';
      sendError(req, reply, illegalArgument(`request [${path}] contains unrecognized ${noun}: ${list}`));
      return;
    }
    const refresh = query.refresh;
    if (refresh !== undefined && !['', 'true', 'false', 'wait_for'].includes(refresh)) {
      sendError(req, reply, illegalArgument(`Unknown value for refresh: [${refresh}].`));
      return;
    }
    const forcedRefresh = refresh === '' || refresh === 'true';

    const parsed = parseBulkBody(decoded.toString('utf8'), {
      index: req.params.index,
      pipeline: query.pipeline,
    });
    if (!parsed.ok) {
      sendError(req, reply, parsed.error);
      return;
    }
    const ops = parsed.ops;
    if (record !== undefined) record.items = ops.length;
    const perIndex = new Map<string, number>();
    for (const op of ops) perIndex.set(op.index, (perIndex.get(op.index) ?? 0) + 1);

    let usedPipeline = false;
    const items = ops.map((op) => {
      const pipeline = op.pipeline === '_none' ? undefined : op.pipeline;
      if (pipeline !== undefined) usedPipeline = true;
      const item = processOp(op, pipeline, perIndex.get(op.index) ?? 1, forcedRefresh);
      if (record !== undefined) {
        const status = Number(item[op.action]?.status);
        record.itemStatuses[status] = (record.itemStatuses[status] ?? 0) + 1;
      }
      return item;
    });
    notifyWaiters();

    if (resetAfterProcessing.has(req.raw)) {
      cutOff(req, reply);
      return;
    }
    const errors = items.some((item) => Object.values(item)[0]?.error !== undefined);
    const body: Record<string, unknown> = { errors, took: Math.round(performance.now() - started) };
    if (usedPipeline) body.ingest_took = 0;
    body.items = items;
    sendJson(req, reply, 200, body);
  }

  function processOp(
    op: BulkOp,
    pipeline: string | undefined,
    opsForIndex: number,
    forcedRefresh: boolean,
  ): Record<string, Record<string, unknown>> {
    const fail = (
      id: string | null,
      status: number,
      error: EsCause,
    ): Record<string, Record<string, unknown>> => ({
      [op.action]: { _index: op.index, _id: id, status, error },
    });
    const nameProblem = invalidIndexNameReason(op.index);
    if (nameProblem !== undefined) {
      return fail(op.id ?? null, 400, {
        type: 'invalid_index_name_exception',
        reason: `Invalid index name [${op.index}], ${nameProblem}`,
        index_uuid: '_na_',
        index: op.index,
      });
    }
    if (pipeline !== undefined && pipelines !== 'any' && !pipelines.has(pipeline)) {
      return fail(op.id ?? 'auto-generated', 400, {
        type: 'illegal_argument_exception',
        reason: `pipeline with id [${pipeline}] does not exist`,
      });
    }
    if (op.id === '') {
      return fail('', 400, {
        type: 'illegal_argument_exception',
        reason: 'if _id is specified it must not be empty',
      });
    }
    const state = indices.get(op.index) ?? createIndex(op.index);
    const id = op.id ?? autoId();
    // Shard-level rejection comes before the document is even parsed.
    const injected = faults.itemStatus(op.index);
    if (injected !== undefined) return fail(id, injected, itemFaultError(injected, op.index, opsForIndex));

    const ok = (doc: DocState, result: string, status: number, shardInfo = shards(state)) => ({
      [op.action]: {
        _index: op.index,
        _id: id,
        _version: doc.version,
        result,
        ...(forcedRefresh && result !== 'noop' ? { forced_refresh: true } : {}),
        _shards: shardInfo,
        _seq_no: doc.seqNo,
        _primary_term: 1,
        status,
      },
    });
    const existing = state.docs.get(id);

    if (op.action === 'delete') {
      const seqNo = state.seqNo++;
      if (existing === undefined) return ok({ source: {}, version: 1, seqNo, order: 0 }, 'not_found', 404);
      state.docs.delete(id);
      return ok({ ...existing, version: existing.version + 1, seqNo }, 'deleted', 200);
    }

    const source = op.source;
    if (source === undefined)
      return fail(id, 400, { type: 'illegal_argument_exception', reason: 'missing source' });
    if (!source.ok) return fail(id, 400, source.error);

    let next: Record<string, unknown>;
    if (op.action === 'update') {
      const body = source.value;
      if (body.script !== undefined) {
        return fail(id, 400, {
          type: 'illegal_argument_exception',
          reason: 'fake-elasticsearch runs no scripts',
        });
      }
      const doc = isPlainObject(body.doc) ? body.doc : undefined;
      if (existing !== undefined) {
        if (doc === undefined) {
          return fail(id, 400, {
            type: 'action_request_validation_exception',
            reason: 'Validation Failed: 1: script or doc is missing;',
          });
        }
        next = deepMerge(existing.source, doc);
        if (JSON.stringify(next) === JSON.stringify(existing.source)) return ok(existing, 'noop', 200);
      } else if (body.doc_as_upsert === true && doc !== undefined) {
        next = doc;
      } else if (isPlainObject(body.upsert)) {
        next = body.upsert;
      } else {
        return fail(id, 404, {
          type: 'document_missing_exception',
          reason: `[${id}]: document missing`,
          index_uuid: state.uuid,
          shard: '0',
          index: op.index,
        });
      }
    } else {
      next = source.value;
      if (op.action === 'create' && existing !== undefined) {
        return fail(id, 409, {
          type: 'version_conflict_engine_exception',
          reason: `[${id}]: version conflict, document already exists (current version [${existing.version}])`,
          index_uuid: state.uuid,
          shard: '0',
          index: op.index,
        });
      }
    }

    const mapped = mapDocument(state.fields, next, {
      dynamic: state.dynamic,
      typeNames: state.typeNames,
      id,
      rawLine: op.action === 'update' ? JSON.stringify(next) : source.raw,
    });
    if (!mapped.ok) return fail(id, 400, mapped.error);
    for (const [path, type] of mapped.added) state.fields.set(path, type);

    const doc: DocState = {
      source: next,
      version: existing === undefined ? 1 : existing.version + 1,
      seqNo: state.seqNo++,
      order: insertion++,
    };
    state.docs.set(id, doc);
    return existing === undefined ? ok(doc, 'created', 201) : ok(doc, 'updated', 200);
  }

  // --- routes ----------------------------------------------------------------------------------------------------

  app.route({ method: ['POST', 'PUT'], url: '/_bulk', handler: handleBulk });
  app.route({ method: ['POST', 'PUT'], url: '/:index/_bulk', handler: handleBulk });

  app.get('/', async (req, reply) => {
    sendJson(req, reply, 200, {
      name: 'fake-node',
      cluster_name: clusterName,
      cluster_uuid: clusterUuid,
      version: {
        number: version,
        build_flavor: 'default',
        build_type: 'tar',
        build_hash: BUILD_HASH,
        build_date: BUILD_DATE,
        build_snapshot: false,
        lucene_version: LUCENE_VERSION,
        minimum_wire_compatibility_version: '7.17.0',
        minimum_index_compatibility_version: '7.0.0',
      },
      tagline: 'You Know, for Search',
    });
  });

  const health = async (
    req: FastifyRequest<{ Params: { index?: string } }>,
    reply: FastifyReply,
  ): Promise<void> => {
    const resolved = resolve(req.params.index);
    if (!resolved.ok) {
      sendError(req, reply, indexNotFound(resolved.missing));
      return;
    }
    const states = resolved.names.map((n) => indices.get(n)!);
    const unassigned = states.reduce((sum, s) => sum + s.replicas, 0);
    const active = states.length;
    sendJson(req, reply, 200, {
      cluster_name: clusterName,
      status: unassigned > 0 ? 'yellow' : 'green',
      timed_out: false,
      number_of_nodes: 1,
      number_of_data_nodes: 1,
      active_primary_shards: active,
      active_shards: active,
      relocating_shards: 0,
      initializing_shards: 0,
      unassigned_shards: unassigned,
      unassigned_primary_shards: 0,
      delayed_unassigned_shards: 0,
      number_of_pending_tasks: 0,
      number_of_in_flight_fetch: 0,
      task_max_waiting_in_queue_millis: 0,
      active_shards_percent_as_number:
        active + unassigned === 0 ? 100 : (100 * active) / (active + unassigned),
    });
  };
  app.get('/_cluster/health', health);
  app.get('/_cluster/health/:index', health);

  app.put('/_index_template/:name', async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
    const body = await readJson(req, reply);
    if (body === undefined) return;
    const value = body.value;
    if (
      !isPlainObject(value) ||
      !(Array.isArray(value.index_patterns) || typeof value.index_patterns === 'string')
    ) {
      sendError(
        req,
        reply,
        requestError(400, {
          type: 'action_request_validation_exception',
          reason: 'Validation Failed: 1: index patterns are missing;',
        }),
      );
      return;
    }
    const patterns = ([] as unknown[]).concat(value.index_patterns).map(String);
    templates.set(req.params.name, {
      name: req.params.name,
      patterns,
      priority: typeof value.priority === 'number' ? value.priority : 0,
      body: value,
    });
    sendJson(req, reply, 200, { acknowledged: true });
  });

  app.get('/_index_template/:name', async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
    const regex = globToRegex(req.params.name);
    const found = [...templates.values()].filter((t) => regex.test(t.name));
    if (found.length === 0) {
      sendError(
        req,
        reply,
        requestError(404, {
          type: 'resource_not_found_exception',
          reason: `index template matching [${req.params.name}] not found`,
        }),
      );
      return;
    }
    sendJson(req, reply, 200, {
      index_templates: found.map((t) => ({ name: t.name, index_template: t.body })),
    });
  });

  app.delete('/_index_template/:name', async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
    if (!templates.delete(req.params.name)) {
      sendError(
        req,
        reply,
        requestError(404, {
          type: 'resource_not_found_exception',
          reason: `index_template [${req.params.name}] missing`,
        }),
      );
      return;
    }
    sendJson(req, reply, 200, { acknowledged: true });
  });

  app.put('/_ingest/pipeline/:id', async (req: FastifyRequest<{ Params: { id: string } }>, reply) => {
    const body = await readJson(req, reply);
    if (body === undefined) return;
    if (pipelines !== 'any') pipelines.add(req.params.id);
    sendJson(req, reply, 200, { acknowledged: true });
  });

  app.put('/:index', async (req: FastifyRequest<{ Params: { index: string } }>, reply) => {
    const name = req.params.index;
    const body = await readJson(req, reply);
    if (body === undefined) return;
    const problem = invalidIndexNameReason(name);
    if (problem !== undefined) {
      sendError(
        req,
        reply,
        requestError(400, {
          type: 'invalid_index_name_exception',
          reason: `Invalid index name [${name}], ${problem}`,
          index_uuid: '_na_',
          index: name,
        }),
      );
      return;
    }
    const existing = indices.get(name);
    if (existing !== undefined) {
      sendError(
        req,
        reply,
        requestError(400, {
          type: 'resource_already_exists_exception',
          reason: `index [${name}/${existing.uuid}] already exists`,
          index_uuid: existing.uuid,
          index: name,
        }),
      );
      return;
    }
    createIndex(name, isPlainObject(body.value) ? body.value : undefined);
    sendJson(req, reply, 200, { acknowledged: true, shards_acknowledged: true, index: name });
  });

  const describeIndex = (state: IndexState) => ({
    aliases: {},
    mappings: {
      ...(state.dynamic === true ? {} : { dynamic: String(state.dynamic) }),
      ...mappingsFromFields(state.fields, state.typeNames),
    },
    settings: {
      index: {
        number_of_shards: '1',
        number_of_replicas: String(state.replicas),
        provided_name: state.name,
        creation_date: String(state.createdAt),
        uuid: state.uuid,
        version: { created: '8537000' },
      },
    },
  });

  app.get('/:index', async (req: FastifyRequest<{ Params: { index: string } }>, reply) => {
    const resolved = resolve(req.params.index);
    if (!resolved.ok) {
      sendError(req, reply, indexNotFound(resolved.missing));
      return;
    }
    sendJson(
      req,
      reply,
      200,
      Object.fromEntries(resolved.names.map((n) => [n, describeIndex(indices.get(n)!)])),
    );
  });

  app.get('/:index/_mapping', async (req: FastifyRequest<{ Params: { index: string } }>, reply) => {
    const resolved = resolve(req.params.index);
    if (!resolved.ok) {
      sendError(req, reply, indexNotFound(resolved.missing));
      return;
    }
    sendJson(
      req,
      reply,
      200,
      Object.fromEntries(
        resolved.names.map((n) => [n, { mappings: describeIndex(indices.get(n)!).mappings }]),
      ),
    );
  });

  app.delete('/:index', async (req: FastifyRequest<{ Params: { index: string } }>, reply) => {
    const resolved = resolve(req.params.index);
    if (!resolved.ok) {
      sendError(req, reply, indexNotFound(resolved.missing));
      return;
    }
    for (const name of resolved.names) indices.delete(name);
    sendJson(req, reply, 200, { acknowledged: true });
  });

  const refresh = async (
    req: FastifyRequest<{ Params: { index?: string } }>,
    reply: FastifyReply,
  ): Promise<void> => {
    const resolved = resolve(req.params.index);
    if (!resolved.ok) {
      sendError(req, reply, indexNotFound(resolved.missing));
      return;
    }
    const states = resolved.names.map((n) => indices.get(n)!);
    const total = states.reduce((sum, s) => sum + s.replicas + 1, 0);
    sendJson(req, reply, 200, { _shards: { total, successful: states.length, failed: 0 } });
  };
  app.post('/_refresh', refresh);
  app.get('/_refresh', refresh);
  app.post('/:index/_refresh', refresh);
  app.get('/:index/_refresh', refresh);

  type SearchRequest = FastifyRequest<{
    Params: { index?: string };
    Querystring: Record<string, string | undefined>;
  }>;

  // A query the fake understands: match_all, term/match (exact equality on a dotted path), ids. Enough for tests
  // to read back what was shipped.
  function queryFilter(query: unknown): ((doc: StoredDoc) => boolean) | EsErrorBody {
    if (query === undefined) return () => true;
    if (!isPlainObject(query))
      return requestError(400, { type: 'parsing_exception', reason: '[query] malformed query' });
    const [kind, spec] = Object.entries(query)[0] ?? [];
    if (kind === 'match_all') return () => true;
    if ((kind === 'term' || kind === 'match') && isPlainObject(spec)) {
      const [field, raw] = Object.entries(spec)[0] ?? [];
      if (field === undefined)
        return requestError(400, { type: 'parsing_exception', reason: `[${kind}] query malformed` });
      const wanted = isPlainObject(raw) ? (raw.value ?? raw.query) : raw;
      return (doc) => valueAt(doc.source, field) === wanted;
    }
    if (kind === 'ids' && isPlainObject(spec) && Array.isArray(spec.values)) {
      const ids = new Set(spec.values.map(String));
      return (doc) => ids.has(doc.id);
    }
    return requestError(400, {
      type: 'parsing_exception',
      reason: `unknown query [${kind}]`,
      line: 1,
      col: 1,
    });
  }

  function valueAt(source: Record<string, unknown>, path: string): unknown {
    if (path in source) return source[path];
    let node: unknown = source;
    for (const segment of path.split('.')) {
      if (!isPlainObject(node)) return undefined;
      node = node[segment];
    }
    return node;
  }

  async function matchingDocs(
    req: SearchRequest,
    reply: FastifyReply,
  ): Promise<{ docs: StoredDoc[]; body: Record<string, unknown>; shards: number } | undefined> {
    const body = await readJson(req, reply);
    if (body === undefined) return undefined;
    const value = isPlainObject(body.value) ? body.value : {};
    const resolved = resolve(req.params.index, req.query.ignore_unavailable === 'true');
    if (!resolved.ok) {
      sendError(req, reply, indexNotFound(resolved.missing));
      return undefined;
    }
    const filter = queryFilter(value.query);
    if (typeof filter !== 'function') {
      sendError(req, reply, filter);
      return undefined;
    }
    return { docs: allDocs(resolved.names).filter(filter), body: value, shards: resolved.names.length };
  }

  const search = async (req: SearchRequest, reply: FastifyReply): Promise<void> => {
    const started = performance.now();
    const found = await matchingDocs(req, reply);
    if (found === undefined) return;
    const size = Number(found.body.size ?? req.query.size ?? 10);
    const from = Number(found.body.from ?? req.query.from ?? 0);
    const hits = found.docs.slice(from, from + size).map((doc) => ({
      _index: doc.index,
      _id: doc.id,
      _score: 1.0,
      _source: doc.source,
    }));
    sendJson(req, reply, 200, {
      took: Math.round(performance.now() - started),
      timed_out: false,
      _shards: { total: found.shards, successful: found.shards, skipped: 0, failed: 0 },
      hits: {
        total: { value: found.docs.length, relation: 'eq' },
        max_score: hits.length > 0 ? 1.0 : null,
        hits,
      },
    });
  };
  const count = async (req: SearchRequest, reply: FastifyReply): Promise<void> => {
    const found = await matchingDocs(req, reply);
    if (found === undefined) return;
    sendJson(req, reply, 200, {
      count: found.docs.length,
      _shards: { total: found.shards, successful: found.shards, skipped: 0, failed: 0 },
    });
  };
  for (const url of ['/_search', '/:index/_search'])
    app.route({ method: ['GET', 'POST'], url, handler: search });
  for (const url of ['/_count', '/:index/_count'])
    app.route({ method: ['GET', 'POST'], url, handler: count });

  app.get(
    '/:index/_doc/:id',
    async (req: FastifyRequest<{ Params: { index: string; id: string } }>, reply) => {
      const state = indices.get(req.params.index);
      if (state === undefined) {
        sendError(req, reply, indexNotFound(req.params.index));
        return;
      }
      const doc = state.docs.get(req.params.id);
      if (doc === undefined) {
        sendJson(req, reply, 404, { _index: state.name, _id: req.params.id, found: false });
        return;
      }
      sendJson(req, reply, 200, {
        _index: state.name,
        _id: req.params.id,
        _version: doc.version,
        _seq_no: doc.seqNo,
        _primary_term: 1,
        found: true,
        _source: doc.source,
      });
    },
  );

  // --- lifecycle -------------------------------------------------------------------------------------------------

  await app.ready();
  const listen = (port: number): Promise<number> =>
    new Promise((resolveListen, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen({ port, host: '127.0.0.1' }, () => {
        server.off('error', onError);
        resolveListen((server.address() as AddressInfo).port);
      });
    });
  const port = await listen(opts.port ?? 0);
  const url = `http://127.0.0.1:${port}`;

  const stopListening = (): Promise<void> =>
    new Promise((resolveStop) => {
      if (!server.listening) {
        resolveStop();
        return;
      }
      server.close(() => resolveStop());
      // A node that goes down takes its connections with it; keep-alive sockets must not linger.
      for (const socket of sockets) socket.destroy();
    });

  const fake: FakeElasticsearch = {
    url,
    port,
    get requests() {
      return requests;
    },
    docs(index) {
      const resolved = resolve(index, true);
      return resolved.ok ? allDocs(resolved.names) : [];
    },
    count(index) {
      return fake.docs(index).length;
    },
    indices() {
      return [...indices.keys()];
    },
    putMapping(index, fields) {
      const state = indices.get(index) ?? createIndex(index);
      for (const [path, type] of withParents(Object.entries(fields))) state.fields.set(path, type);
    },
    fault(spec) {
      return faults.add(spec);
    },
    clearFaults() {
      faults.clear();
    },
    waitForCount(target, waitOpts = {}) {
      const timeoutMs = waitOpts.timeoutMs ?? 10_000;
      return new Promise((resolveWait, reject) => {
        const check = (): void => {
          if (fake.count(waitOpts.index) < target) return;
          waiters.delete(check);
          realClearTimeout(timer);
          resolveWait();
        };
        // Real timers: the fake's clock is the wall clock even under vi.useFakeTimers().
        const timer = realSetTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `fake-elasticsearch: waited ${timeoutMs} ms for ${target} docs${waitOpts.index === undefined ? '' : ` in ${waitOpts.index}`}, have ${fake.count(waitOpts.index)}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    reset() {
      indices.clear();
      templates.clear();
      pipelines = opts.pipelines === undefined || opts.pipelines === 'any' ? 'any' : new Set(opts.pipelines);
      requests = [];
      faults.clear();
    },
    async stop() {
      stopped = true;
      down.resolve();
      await stopListening();
    },
    async restart() {
      if (closed) throw new Error('fake-elasticsearch: restart() after close()');
      if (server.listening) return;
      down = deferred();
      stopped = false;
      await listen(port);
    },
    async outage(ms) {
      await fake.stop();
      await realSleep(ms);
      await fake.restart();
    },
    async close() {
      if (closed) return;
      closed = true;
      down.resolve();
      faults.clear();
      await stopListening();
      await app.close();
    },
  };
  return fake;
}
