// A minimal, fast fake Elasticsearch for the agent benchmarks: node:http on 127.0.0.1 (port 0), in
// the runner's process. It answers what @elastic/elasticsearch 8.x and logferry call (`GET /`,
// `HEAD /`, `POST /_bulk` and `/<index>/_bulk`, plus the template calls of --manage-templates),
// keeps no documents, only counts them:
//
// - every `_id` of a `create`/`index` action goes into a Set: a `create` of an id already stored gets
//   a per-item 409 (version_conflict_engine_exception) as Elasticsearch answers, which logferry
//   counts as already delivered; the bench reports those as duplicates;
// - every source line is checked cheaply (starts with `{`, ends with `}`), and one in `parseEvery`
//   is JSON.parse'd (all of them with parseEvery 1); a failure is counted, the item gets a 400;
//   a parsed document without `kubernetes.labels` is counted;
// - with `fields` on, documents with a `json` object, a `partial` flag and pod labels are counted
//   exactly, with byte searches over every document (about 3× the cost of the rest: used for a
//   checked run, not for the timed ones);
// - `storm(ms)`: every request gets a whole-request 429 (es_rejected_execution_exception) for that
//   long, from the first bulk request after the call (the body is still read);
// - gzip request bodies are inflated (output.compression is off by default).
//
// The test suite's fake (test/fakes/fake-elasticsearch.ts) stores and maps every document and is
// far too slow to benchmark against; this one is built to cost a small fraction of the agent's CPU,
// and `cpuSeconds` (this process's CPU while serving) is reported so that can be checked.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface CountingMode {
  /** JSON.parse one source line in this many (1: every one); the others get the cheap check only */
  parseEvery: number;
  /** count documents with a json object, a partial flag and pod labels, exactly (slower) */
  fields: boolean;
}

/** For timed runs: about 1 µs of CPU per document. */
export const LEAN: CountingMode = { parseEvery: 64, fields: false };
/** For a checked run: every document parsed and its fields counted. */
export const CHECKED: CountingMode = { parseEvery: 1, fields: true };

export interface CountingEsStats {
  /** bulk requests answered 200, and refused with 429 */
  bulkRequests: number;
  rejectedRequests: number;
  /** request bytes as received (gzip or not) and after gunzip */
  bytesReceived: number;
  bytesDecoded: number;
  /** items with a new id (201), already-stored ids (409), and invalid source lines (400) */
  stored: number;
  duplicates: number;
  invalid: number;
  /** source lines JSON.parse'd, and those of them without kubernetes.labels */
  parsed: number;
  parsedWithoutLabels: number;
  /** whether the next three were counted (CountingMode.fields) */
  fieldsCounted: boolean;
  /** stored documents with a `json` object, a `partial` flag, pod labels */
  withJson: number;
  withPartial: number;
  withLabels: number;
  /** requests to anything else than the known endpoints, as `METHOD path` */
  unexpected: string[];
  /** wall ms of the first and the latest stored document (performance.now()) */
  firstStoredMs: number | undefined;
  lastStoredMs: number | undefined;
  /** CPU seconds (user + system) this process spent in the request handlers */
  cpuSeconds: number;
}

export interface CountingEs {
  readonly url: string;
  readonly stats: CountingEsStats;
  /** distinct ids stored */
  readonly uniqueIds: number;
  /** from the next bulk request on, answer 429 to everything for `ms`; resolves when the storm ends */
  storm(ms: number): Promise<void>;
  /** whether a storm is scheduled or running */
  readonly storming: boolean;
  /** performance.now() when the last storm began (its first 429) */
  readonly stormStartedMs: number | undefined;
  /** forget ids and counts (between runs), and count with this mode from now on */
  reset(mode?: CountingMode): void;
  close(): Promise<void>;
}

const NEEDLE_JSON = Buffer.from(',"json":{');
const NEEDLE_PARTIAL = Buffer.from('"partial"');
const NEEDLE_LABELS = Buffer.from('"labels":{');

const ROOT_INFO = JSON.stringify({
  name: 'bench-es',
  cluster_name: 'bench',
  cluster_uuid: 'bench-cluster-uuid-000000',
  version: {
    number: '8.19.21',
    build_flavor: 'default',
    build_type: 'tar',
    build_hash: '0000000000000000000000000000000000000000',
    build_date: '2026-01-01T00:00:00.000Z',
    build_snapshot: false,
    lucene_version: '9.12.2',
    minimum_wire_compatibility_version: '7.17.0',
    minimum_index_compatibility_version: '7.0.0',
  },
  tagline: 'You Know, for Search',
});

const REJECTED = JSON.stringify({
  error: {
    root_cause: [{ type: 'es_rejected_execution_exception', reason: 'rejected execution (bench storm)' }],
    type: 'es_rejected_execution_exception',
    reason: 'rejected execution of bulk on EsThreadPoolExecutor[name = bench-es/write] (bench storm)',
  },
  status: 429,
});

function emptyStats(): CountingEsStats {
  return {
    bulkRequests: 0,
    rejectedRequests: 0,
    bytesReceived: 0,
    bytesDecoded: 0,
    stored: 0,
    duplicates: 0,
    invalid: 0,
    parsed: 0,
    parsedWithoutLabels: 0,
    fieldsCounted: false,
    withJson: 0,
    withPartial: 0,
    withLabels: 0,
    unexpected: [],
    firstStoredMs: undefined,
    lastStoredMs: undefined,
    cpuSeconds: 0,
  };
}

const ID_NEEDLE = Buffer.from('"_id":"');
const ID_TAIL = Buffer.from('"}}');

/**
 * The `_id` of an action line `{"create":{"_index":"...","_id":"<id>"}}` as logferry writes it:
 * found backwards from the line's end with single-byte searches (a multi-byte search over every
 * line costs as much as the rest of the counting); other layouts get a search within the line.
 */
function actionId(body: Buffer, start: number, end: number): string | undefined {
  if (end - start > ID_TAIL.length && body.compare(ID_TAIL, 0, 3, end - 3, end) === 0) {
    const open = body.lastIndexOf(0x22, end - 4);
    if (open > start + 6 && body.compare(ID_NEEDLE, 0, ID_NEEDLE.length, open - 6, open + 1) === 0) {
      return body.toString('latin1', open + 1, end - 3);
    }
  }
  const at = body.subarray(start, end).indexOf(ID_NEEDLE);
  if (at === -1) return undefined;
  const from = start + at + ID_NEEDLE.length;
  return body.toString('latin1', from, body.indexOf(0x22, from));
}
const INDEX_NEEDLE = Buffer.from('"_index":"');
const CREATED = '{"create":{"status":201}}';

/**
 * The bulk bookkeeping, apart from HTTP: `process(body)` counts and answers one NDJSON body. With
 * `fields`, one pass over the body per counted field, each search resuming where its last match
 * was, so the cost stays linear in the body whatever it holds.
 */
export class BulkCounter {
  stats: CountingEsStats = emptyStats();
  ids = new Set<string>();
  #mode: CountingMode;
  #sourceLines = 0;

  constructor(mode: CountingMode = LEAN) {
    this.#mode = mode;
    this.stats.fieldsCounted = mode.fields;
  }

  reset(mode: CountingMode = this.#mode): void {
    this.#mode = mode;
    this.stats = emptyStats();
    this.stats.fieldsCounted = mode.fields;
    this.ids = new Set();
    this.#sourceLines = 0;
  }

  /** Per-item results for one bulk body: the response text. `filtered`: only status and error. */
  process(body: Buffer, filtered: boolean): string {
    const stats = this.stats;
    const ids = this.ids;
    const len = body.length;
    const items: string[] = [];
    let errors = false;
    let stored = 0;
    // the next match of each needle at or after the current line, len when there is none
    const next = { json: -1, partial: -1, labels: -1 };
    const fields = this.#mode.fields;
    const find = (key: keyof typeof next, needle: Buffer, from: number): number => {
      if (next[key] < from) {
        const at = body.indexOf(needle, from);
        next[key] = at === -1 ? len : at;
      }
      return next[key];
    };
    let pos = 0;
    while (pos < len) {
      const aEnd = body.indexOf(10, pos);
      if (aEnd === -1) break;
      if (aEnd === pos) {
        pos++;
        continue;
      }
      const sStart = aEnd + 1;
      let sEnd = body.indexOf(10, sStart);
      if (sEnd === -1) sEnd = len;
      const aStart = pos;
      pos = sEnd + 1;
      // {"create":  or  {"index":
      const opChar = body[aStart + 2];
      const op =
        body[aStart + 1] !== 0x22
          ? 'other'
          : opChar === 0x63
            ? 'create'
            : opChar === 0x69
              ? 'index'
              : 'other';
      const id = actionId(body, aStart, aEnd);
      let head = '';
      if (!filtered) {
        const ix = body.indexOf(INDEX_NEEDLE, aStart);
        const index =
          ix !== -1 && ix < aEnd
            ? body.toString('latin1', ix + INDEX_NEEDLE.length, body.indexOf(0x22, ix + INDEX_NEEDLE.length))
            : '';
        head = `"_index":"${index}",${id === undefined ? '' : `"_id":"${id}",`}`;
      }
      let ok = sEnd > sStart && body[sStart] === 0x7b && body[sEnd - 1] === 0x7d && op !== 'other';
      if (ok && ++this.#sourceLines % this.#mode.parseEvery === 0) {
        stats.parsed++;
        try {
          const v: unknown = JSON.parse(body.toString('utf8', sStart, sEnd));
          ok = typeof v === 'object' && v !== null && !Array.isArray(v);
          const k = ok ? (v as { kubernetes?: { labels?: unknown } }).kubernetes : undefined;
          if (ok && (typeof k?.labels !== 'object' || k.labels === null)) stats.parsedWithoutLabels++;
        } catch {
          ok = false;
        }
      }
      const verb = op === 'index' ? 'index' : 'create';
      if (!ok) {
        stats.invalid++;
        errors = true;
        items.push(
          `{"${verb}":{${head}"status":400,"error":{"type":"document_parsing_exception","reason":"bench-es: not a JSON object"}}}`,
        );
        continue;
      }
      const key = id ?? `auto-${ids.size}`;
      if (ids.has(key)) {
        stats.duplicates++;
        if (op === 'create') {
          errors = true;
          items.push(
            `{"create":{${head}"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[${key}]: version conflict, document already exists (current version [1])"}}}`,
          );
        } else {
          // `index` of an existing id overwrites it: still a duplicate delivery for the bench
          items.push(`{"index":{${head}"status":200}}`);
        }
        continue;
      }
      ids.add(key);
      stored++;
      if (fields) {
        if (find('json', NEEDLE_JSON, sStart) < sEnd) stats.withJson++;
        if (find('partial', NEEDLE_PARTIAL, sStart) < sEnd) stats.withPartial++;
        if (find('labels', NEEDLE_LABELS, sStart) < sEnd) stats.withLabels++;
      }
      items.push(filtered && op === 'create' ? CREATED : `{"${verb}":{${head}"status":201}}`);
    }
    if (stored > 0) {
      stats.stored += stored;
      const now = performance.now();
      stats.firstStoredMs ??= now;
      stats.lastStoredMs = now;
    }
    return filtered
      ? `{"errors":${errors},"items":[${items.join(',')}]}`
      : `{"errors":${errors},"took":1,"items":[${items.join(',')}]}`;
  }
}

export async function startCountingEs(mode: CountingMode = LEAN): Promise<CountingEs> {
  const counter = new BulkCounter(mode);
  /** the storm: its length, armed until the next bulk request; then its end time */
  let stormMs: number | undefined;
  let stormUntil: number | undefined;
  let stormEnded: (() => void) | undefined;
  let stormTimer: NodeJS.Timeout | undefined;
  let stormStartedMs: number | undefined;

  const compatible = (req: IncomingMessage): string => {
    const accept = req.headers.accept ?? '';
    const m = /compatible-with=(\d+)/.exec(accept);
    return m === null ? 'application/json' : `application/vnd.elasticsearch+json;compatible-with=${m[1]}`;
  };

  const send = (req: IncomingMessage, res: ServerResponse, status: number, body: string): void => {
    const buf = Buffer.from(body);
    res.writeHead(status, {
      'x-elastic-product': 'Elasticsearch',
      'content-type': compatible(req),
      'content-length': buf.length,
    });
    res.end(req.method === 'HEAD' ? undefined : buf);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: Buffer): void => {
    const c0 = process.cpuUsage();
    const stats = counter.stats;
    try {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      stats.bytesReceived += raw.length;
      const isBulk = path === '/_bulk' || path.endsWith('/_bulk');
      if (isBulk && stormMs !== undefined && stormUntil === undefined) {
        stormStartedMs = performance.now();
        stormUntil = stormStartedMs + stormMs;
        stormTimer = setTimeout(() => {
          stormMs = undefined;
          stormUntil = undefined;
          stormEnded?.();
        }, stormMs);
      }
      if (stormUntil !== undefined && performance.now() < stormUntil) {
        stats.rejectedRequests++;
        send(req, res, 429, REJECTED);
        return;
      }
      if (isBulk && (req.method === 'POST' || req.method === 'PUT')) {
        const encoding = req.headers['content-encoding'] ?? '';
        const body = encoding.includes('gzip') ? gunzipSync(raw) : raw;
        stats.bytesDecoded += body.length;
        stats.bulkRequests++;
        // logferry asks for filter_path=errors,items.*.status,items.*.error.*: leave out _index/_id then
        const filter = q === -1 ? undefined : new URLSearchParams(url.slice(q + 1)).get('filter_path');
        send(
          req,
          res,
          200,
          counter.process(body, filter !== null && filter !== undefined && !filter.includes('_id')),
        );
        return;
      }
      if (path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
        send(req, res, 200, ROOT_INFO);
        return;
      }
      if (path === '/_data_stream' && req.method === 'GET') {
        send(req, res, 200, '{"data_streams":[]}');
        return;
      }
      if (path.startsWith('/_index_template/') && (req.method === 'PUT' || req.method === 'POST')) {
        send(req, res, 200, '{"acknowledged":true}');
        return;
      }
      stats.unexpected.push(`${req.method} ${path}`);
      send(
        req,
        res,
        400,
        JSON.stringify({ error: `no handler found for uri [${url}] and method [${req.method}]` }),
      );
    } finally {
      const c = process.cpuUsage(c0);
      stats.cpuSeconds += (c.user + c.system) / 1e6;
    }
  };

  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    get stats() {
      return counter.stats;
    },
    get uniqueIds() {
      return counter.ids.size;
    },
    get storming() {
      return stormMs !== undefined;
    },
    get stormStartedMs() {
      return stormStartedMs;
    },
    storm(ms: number): Promise<void> {
      stormMs = ms;
      stormUntil = undefined;
      return new Promise<void>((resolve) => {
        stormEnded = resolve;
      });
    },
    reset(next?: CountingMode) {
      counter.reset(next);
    },
    async close() {
      if (stormTimer !== undefined) clearTimeout(stormTimer);
      stormEnded?.();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
