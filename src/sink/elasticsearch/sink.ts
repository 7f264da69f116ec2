import { ACTION_ID_END } from '../../encode/document.ts';
import { errorMessage, redactCredentials } from '../../errors.ts';
import type { DocumentAction, RecordBatch, Sink, SourceFile } from '../../pipeline/types.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { SinkCounters } from '../counters.ts';
import {
  checkServer,
  identifyServer,
  type OutputKind,
  type RootResponse,
  type ServerVerdict,
} from '../server-kind.ts';
import { backoffMs } from './backoff.ts';
import { actionLine, deadLetterDocument, documentId, type IndexTemplate } from './encode.ts';
import { type BulkItemResult, bulkItems, classifyItem, classifyRequest } from './response.ts';

/**
 * The one I/O seam of the output: send a bulk body, get the status and parsed body back. The
 * Elasticsearch and OpenSearch outputs are this sink over two adapters of this interface.
 */
export interface BulkTransport {
  /** Resolves with the HTTP status and body; rejects only when there was no HTTP response. */
  bulk(body: Buffer): Promise<{ status: number; body: unknown }>;
  /**
   * `GET /` on a node, to learn which kind of server it is (server-kind.ts); never rejects. Without it
   * the server is taken to be the right one.
   */
  identify?(): Promise<{ url: string; response: RootResponse }>;
  close(): Promise<void>;
}

export interface ElasticsearchSinkOptions {
  index: IndexTemplate;
  dlqIndex: string;
  /** deterministic: `_id` from file id + offset, exactly once; auto: Elasticsearch ids, at least once */
  idMode: 'deterministic' | 'auto';
  batchDocs: number;
  batchBytes: number;
  flushMs: number;
  concurrency: number;
  retryInitialMs: number;
  retryMaxMs: number;
  hostName?: string | undefined;
  /** the ingest pipeline requests go through (dead letters bypass it) */
  pipeline?: string | undefined;
  /** the product the output ships to, for the server check and the log lines (default elasticsearch) */
  kind?: OutputKind | undefined;
}

/** wrong-server: `GET /` found another product; no bulk is sent, the check is repeated slowly */
export type OutputState = 'idle' | 'ok' | 'retrying' | 'unauthorized' | 'wrong-server';

const PRODUCT_NAME: Record<OutputKind, string> = { elasticsearch: 'Elasticsearch', opensearch: 'OpenSearch' };

/** A record batch in the output, or a dead-letter document standing in for one of its documents. */
interface Entry {
  batch: RecordBatch;
  remaining: number;
  /** the index, when it depends only on the file */
  index: string | undefined;
  /** set on a dead-letter entry: the entry whose document it replaces, and that document's id/index */
  owner: Entry | undefined;
  id: string | undefined;
}

/** Documents `[from, to)` of an entry's batch. */
interface Span {
  entry: Entry;
  from: number;
  to: number;
}

/**
 * Documents to send, in order, as spans of batches: nothing per document, so what waits in the
 * output is the batches' NDJSON bytes, and a request of 5,000 documents from a few batches is a few
 * spans (a per-document array had the main thread promote and mark tens of MB per million).
 */
type Work = Span[];

function countOf(work: Work): number {
  let n = 0;
  for (const s of work) n += s.to - s.from;
  return n;
}

/** Appends document `i` of `entry`, extending the last span when it is the next one. */
function pushDoc(work: Work, entry: Entry, i: number): void {
  const last = work[work.length - 1];
  if (last !== undefined && last.entry === entry && last.to === i) last.to++;
  else work.push({ entry, from: i, to: i + 1 });
}

/**
 * Ships batches to Elasticsearch or OpenSearch (`kind`) with `_bulk` `create`: a request goes out at `batchDocs`
 * documents, `batchBytes` characters or `flushMs` after the first queued document; up to
 * `concurrency` requests are in flight. Each request retries until every one of its documents is
 * stored or dead-lettered: whole-request failures are retried with the same body, per-item 429/5xx
 * only those items, 413 splits. A record batch is acknowledged when all its documents are done.
 * Memory is bounded by the pipeline's byte budget: only what was read and not acknowledged is here.
 */
export class ElasticsearchSink implements Sink {
  readonly counters = new SinkCounters();
  readonly #opts: ElasticsearchSinkOptions;
  readonly #transport: BulkTransport;
  readonly #log: Logger;
  readonly #random: () => number;
  /** spans waiting to be sent, from `#pendingHead` on */
  #pending: Work = [];
  #pendingHead = 0;
  #pendingDocs = 0;
  #pendingBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushDue = false;
  #flushing = 0;
  #closed = false;
  #aborted = false;
  #unacked = 0;
  #waiters: Array<() => void> = [];
  readonly #sleeps = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  #state: OutputState = 'idle';
  /** body buffers of finished requests, for the next ones (see #recycle); emptied when idle */
  readonly #spareBodies: Buffer[] = [];
  readonly #bodyOwners = new WeakMap<Buffer, Buffer>();
  #lastError: string | undefined;
  /** GET / found the right kind of server since the last connection failure */
  #verified = false;
  #verifying: Promise<ServerVerdict> | undefined;
  readonly #product: string;

  constructor(
    opts: ElasticsearchSinkOptions,
    transport: BulkTransport,
    log: Logger,
    random: () => number = Math.random,
  ) {
    this.#opts = opts;
    this.#transport = transport;
    this.#log = log;
    this.#random = random;
    this.#product = PRODUCT_NAME[opts.kind ?? 'elasticsearch'];
    if (transport.identify === undefined) this.#verified = true;
  }

  /**
   * Asks the server what it is (`GET /`) unless that is known. A wrong kind of server is logged once
   * (state wrong-server: not ready) and no bulk is sent to it; an unreachable one is retried as usual.
   */
  checkServer(opts: { quiet?: boolean } = {}): Promise<ServerVerdict> {
    if (this.#verified) return Promise.resolve({ ok: true, found: this.#product });
    this.#verifying ??= this.#identify(opts.quiet === true).finally(() => {
      this.#verifying = undefined;
    });
    return this.#verifying;
  }

  /** quiet: a wrong server is only returned (`tail` turns it into a usage error) */
  async #identify(quiet: boolean): Promise<ServerVerdict> {
    const { url, response } = await this.#transport.identify!();
    const verdict = checkServer(
      identifyServer(response),
      this.#opts.kind ?? 'elasticsearch',
      redactCredentials(url),
    );
    if (verdict.ok) {
      this.#verified = true;
      if (this.#state === 'wrong-server') this.#recovered();
    } else if (verdict.permanent) {
      this.counters.wrongServer++;
      if (quiet) return verdict;
      this.#trouble('wrong-server', verdict.message);
    } else {
      this.#trouble('retrying', verdict.message);
    }
    return verdict;
  }

  /** ok: the last request got through; retrying: connection/5xx/429 trouble; unauthorized: 401/403 */
  get state(): OutputState {
    return this.#state;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /**
   * The bulk action line, for the encoder to write before each document, when it depends only on
   * the file (an index without a date; not for dead letters, which are built here): the main thread
   * then copies whole runs of a batch into a bulk body instead of building a line per document.
   */
  frame(file: SourceFile): DocumentAction | undefined {
    const { index, hostName, idMode } = this.#opts;
    if (!index.perFile) return undefined;
    const name = index.resolve(file, undefined, hostName);
    if (idMode === 'auto') return { head: actionLine(name, undefined), withOffset: false };
    const line = actionLine(name, documentId(file, 0));
    // everything before the offset's digits: the id is the file's id, '-' and the offset
    return { head: line.slice(0, line.length - ACTION_ID_END.length - 1), withOffset: true };
  }

  write(batch: RecordBatch): void {
    if (this.#closed) return;
    const n = batch.ends.length;
    const { index, hostName } = this.#opts;
    const entry: Entry = {
      batch,
      remaining: n,
      index: index.perFile ? index.resolve(batch.file, undefined, hostName) : undefined,
      owner: undefined,
      id: undefined,
    };
    this.#unacked++;
    this.#pending.push({ entry, from: 0, to: n });
    this.#pendingDocs += n;
    this.#pendingBytes += batch.body.length;
    this.counters.queued += n;
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#flushDue = true;
        this.#pump();
      }, this.#opts.flushMs);
    }
    this.#pump();
  }

  async flush(): Promise<void> {
    if (this.#unacked === 0) return;
    this.#flushing++;
    this.#pump();
    try {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    } finally {
      this.#flushing--;
    }
  }

  /**
   * Delivers what it can until `deadline`; then stops retrying. Batches not delivered by then are
   * never acknowledged, so their checkpoints stay behind them and a restart sends them again.
   */
  async close(deadline?: number): Promise<void> {
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    const flushed = this.flush();
    if (deadline !== undefined) {
      await Promise.race([
        flushed,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        }),
      ]);
      clearTimeout(timer);
    } else {
      await flushed;
    }
    this.#abort();
    await this.#transport.close();
  }

  #abort(): void {
    this.#aborted = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const s of this.#sleeps) {
      clearTimeout(s.timer);
      s.resolve();
    }
    this.#sleeps.clear();
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w();
  }

  #pendingCount(): number {
    return this.#pendingDocs;
  }

  #pump(): void {
    const o = this.#opts;
    while (!this.#aborted && this.counters.inFlight < o.concurrency && this.#pendingCount() > 0) {
      const full = this.#pendingCount() >= o.batchDocs || this.#pendingBytes >= o.batchBytes;
      if (!full && !this.#flushDue && this.#flushing === 0 && !this.#closed) return;
      void this.#run(this.#take());
    }
    if (this.#pendingCount() === 0) {
      // nothing waits: spare bodies would only hold memory
      if (this.counters.inFlight === 0) this.#spareBodies.length = 0;
      this.#flushDue = false;
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
    }
  }

  /** The next request's documents: up to batchDocs documents and batchBytes bytes (at least one). */
  #take(): Work {
    const o = this.#opts;
    const p = this.#pending;
    const work: Work = [];
    let docs = 0;
    let bytes = 0;
    while (this.#pendingHead < p.length && docs < o.batchDocs) {
      const span = p[this.#pendingHead]!;
      const ends = span.entry.batch.ends;
      const start = span.from === 0 ? 0 : ends[span.from - 1]!;
      // as many of the span's documents as the limits allow
      const maxTo = Math.min(span.to, span.from + (o.batchDocs - docs));
      let to = maxTo;
      if (ends[to - 1]! - start > o.batchBytes - bytes) {
        to = span.from;
        while (to < maxTo && ends[to]! - start <= o.batchBytes - bytes) to++;
        // a first document bigger than the limit goes alone
        if (to === span.from && docs === 0) to = span.from + 1;
      }
      if (to === span.from) break;
      work.push({ entry: span.entry, from: span.from, to });
      docs += to - span.from;
      bytes += ends[to - 1]! - start;
      if (to === span.to) this.#pendingHead++;
      else {
        span.from = to;
        break;
      }
    }
    this.#pendingDocs -= docs;
    this.#pendingBytes -= bytes;
    if (this.#pendingHead === p.length) {
      this.#pending = [];
      this.#pendingHead = 0;
      this.#pendingBytes = 0;
      this.#flushDue = false;
    } else if (this.#pendingHead > 4096) {
      this.#pending = p.slice(this.#pendingHead);
      this.#pendingHead = 0;
    }
    return work;
  }

  async #run(work: Work): Promise<void> {
    this.counters.inFlight++;
    try {
      await this.#deliver(work);
    } catch (err) {
      // a bug, not an Elasticsearch fault: say so loudly; the items stay unacknowledged
      this.#log.error(`output: unexpected failure: ${errorMessage(err)}`);
    } finally {
      this.counters.inFlight--;
      this.#pump();
    }
  }

  /** Sends `work` until each document is stored, a duplicate, dead-lettered, or the sink is aborted. */
  async #deliver(initial: Work): Promise<void> {
    let work = initial;
    let attempt = 0;
    let body: Buffer | undefined;
    while (work.length > 0 && !this.#aborted) {
      if (!this.#verified) {
        const verdict = await this.checkServer();
        if (this.#aborted) return;
        if (!verdict.ok) {
          // a request that cannot succeed is not sent; the check is repeated at the backoff's cap
          this.counters.retried += countOf(work);
          if (verdict.permanent) await this.#sleep(this.#opts.retryMaxMs);
          else await this.#backoff(attempt++);
          continue;
        }
      }
      body ??= this.#encodeBody(work, this.#bodyBuffer());
      const started = process.hrtime.bigint();
      let status: number | undefined;
      let resBody: unknown;
      let failure: string | undefined;
      try {
        const res = await this.#transport.bulk(body);
        status = res.status;
        resBody = res.body;
      } catch (err) {
        failure = errorMessage(err);
      }
      this.counters.requests++;
      this.counters.bytesSent += body.length;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.counters.requestSeconds += seconds;
      this.counters.observeRequest?.(seconds);
      if (this.#aborted) return;

      if (status !== undefined && status >= 200 && status < 300) {
        const count = countOf(work);
        const results = bulkItems(resBody, count);
        if (results === undefined) {
          this.#trouble('retrying', `bulk response with status ${status} did not list ${count} items`);
          this.counters.retried += count;
          await this.#backoff(attempt++);
          continue;
        }
        this.#recovered();
        // a 2xx answer comes after Elasticsearch read the whole body: its memory can be reused
        this.#recycle(body);
        const next = this.#settleItems(work, results);
        if (next.transient) await this.#backoff(attempt++);
        else attempt = 0;
        work = next.work;
        body = undefined;
        continue;
      }

      this.counters.requestFailures++;
      // no answer, or one no bulk endpoint gives (404/405/406: another server took the address):
      // ask what the server is before the next attempt
      if (status === undefined || status === 404 || status === 405 || status === 406)
        this.#verified = this.#transport.identify === undefined;
      const outcome = classifyRequest(status);
      if (outcome === 'split') {
        await this.#split(work, status!, resBody);
        return;
      }
      if (outcome === 'auth') {
        this.#trouble(
          'unauthorized',
          `${this.#product} refused the credentials (HTTP ${status}): ${reasonOf(resBody)}`,
        );
      } else {
        this.#trouble(
          'retrying',
          status === undefined
            ? `cannot reach ${this.#product}: ${failure}`
            : `bulk request failed with HTTP ${status}: ${reasonOf(resBody)}`,
        );
      }
      this.counters.retried += countOf(work);
      await this.#backoff(attempt++);
    }
  }

  #backoff(attempt: number): Promise<void> {
    return this.#sleep(backoffMs(attempt, this.#opts.retryInitialMs, this.#opts.retryMaxMs, this.#random));
  }

  /** 413 (or a whole-request 400): halve until a single document is left, which is dead-lettered. */
  async #split(work: Work, status: number, resBody: unknown): Promise<void> {
    const n = countOf(work);
    if (n === 1) {
      const { entry, from } = work[0]!;
      const error = {
        type: status === 413 ? 'request_entity_too_large' : 'bad_request',
        reason: reasonOf(resBody),
      };
      if (entry.owner !== undefined) {
        this.#drop(entry, status, error);
        return;
      }
      await this.#deliver(this.#toDeadLetter(entry, from, status, error));
      return;
    }
    this.counters.splits++;
    const first: Work = [];
    const second: Work = [];
    let left = Math.ceil(n / 2);
    for (const s of work) {
      const take = Math.min(left, s.to - s.from);
      if (take > 0) first.push({ entry: s.entry, from: s.from, to: s.from + take });
      if (take < s.to - s.from) second.push({ entry: s.entry, from: s.from + take, to: s.to });
      left -= take;
    }
    await this.#deliver(first);
    await this.#deliver(second);
  }

  /** Applies per-item results; returns what must be sent again and whether to back off first. */
  #settleItems(work: Work, results: BulkItemResult[]): { work: Work; transient: boolean } {
    const again: Work = [];
    let transient = false;
    let k = 0;
    for (const { entry, from, to } of work) {
      const dlq = entry.owner !== undefined;
      for (let i = from; i < to; i++) {
        const r = results[k++]!;
        switch (classifyItem(r.status)) {
          case 'ok':
            if (!dlq) this.counters.sent++;
            this.#done(entry);
            break;
          case 'duplicate':
            if (!dlq) this.counters.duplicates++;
            this.#done(entry);
            break;
          case 'retry':
            this.counters.retried++;
            transient = true;
            pushDoc(again, entry, i);
            break;
          default:
            if (dlq) this.#drop(entry, r.status, r.error ?? {});
            else again.push(...this.#toDeadLetter(entry, i, r.status, r.error ?? {}));
        }
      }
    }
    return { work: again, transient };
  }

  #indexOf(entry: Entry, i: number): string {
    if (entry.index !== undefined) return entry.index;
    return this.#opts.index.resolve(entry.batch.file, timestampText(entry.batch, i), this.#opts.hostName);
  }

  #idOf(entry: Entry, i: number): string | undefined {
    if (entry.owner !== undefined) return entry.id;
    return this.#opts.idMode === 'deterministic'
      ? documentId(entry.batch.file, entry.batch.offsets[i]!)
      : undefined;
  }

  /** A spare body buffer, if one is left from an earlier request. */
  #bodyBuffer(): Buffer | undefined {
    return this.#spareBodies.pop();
  }

  /**
   * Keeps a sent body's memory for the next request. A new ArrayBuffer per request (1 GB of them
   * per million documents with pod metadata) made V8 run a full GC for every 64 MB of them (its
   * external memory limit): most of the main thread's GC time (docs/PERFORMANCE.md, section 3).
   */
  #recycle(body: Buffer): void {
    const full = this.#bodyOwners.get(body);
    if (full === undefined || this.#spareBodies.length >= this.#opts.concurrency) return;
    if (full.length > 2 * (this.#opts.batchBytes + SPARE_ROOM)) return;
    this.#spareBodies.push(full);
  }

  /**
   * One bulk body: an action line and the document's bytes per item, in `into` when it is big
   * enough, else in a new buffer. A framed batch's items already hold their action lines: a run of
   * consecutive items is one copy.
   */
  #encodeBody(work: Work, into: Buffer | undefined): Buffer {
    let actions: string[] | undefined;
    let total = 0;
    for (const { entry, from, to } of work) {
      const ends = entry.batch.ends;
      total += ends[to - 1]! - (from === 0 ? 0 : ends[from - 1]!);
      if (entry.batch.framed === true) continue;
      const dlq = entry.owner !== undefined;
      for (let i = from; i < to; i++) {
        const action = actionLine(
          this.#indexOf(entry, i),
          this.#idOf(entry, i),
          dlq && this.#opts.pipeline !== undefined,
        );
        actions ??= [];
        actions.push(action);
        total += Buffer.byteLength(action);
      }
    }
    const full =
      into !== undefined && into.length >= total
        ? into
        : Buffer.allocUnsafeSlow(Math.max(total, this.#opts.batchBytes + SPARE_ROOM));
    const body = full.subarray(0, total);
    this.#bodyOwners.set(body, full);
    let pos = 0;
    let a = 0;
    for (const { entry, from, to } of work) {
      const { body: src, ends } = entry.batch;
      if (entry.batch.framed === true) {
        pos += src.copy(body, pos, from === 0 ? 0 : ends[from - 1]!, ends[to - 1]!);
        continue;
      }
      for (let i = from; i < to; i++) {
        pos += body.write(actions![a++]!, pos);
        pos += src.copy(body, pos, i === 0 ? 0 : ends[i - 1]!, ends[i]!);
      }
    }
    return body;
  }

  /** A dead-letter document replacing document `i` of `entry`, as a one-document Work. */
  #toDeadLetter(
    entry: Entry,
    i: number,
    status: number,
    error: { type?: string | undefined; reason?: string | undefined },
  ): Work {
    const { body, ends, framed } = entry.batch;
    let start = i === 0 ? 0 : ends[i - 1]!;
    // a framed item starts with its action line
    if (framed === true) start = body.indexOf(0x0a, start) + 1;
    const doc = body.toString('utf8', start, ends[i]! - 1);
    const dlqBody = Buffer.from(`${deadLetterDocument(doc, this.#indexOf(entry, i), status, error)}\n`);
    const dlq: Entry = {
      batch: {
        file: entry.batch.file,
        body: dlqBody,
        ends: [dlqBody.length],
        offsets: [entry.batch.offsets[i]!],
        ack: () => {},
      },
      remaining: 1,
      index: this.#opts.dlqIndex,
      owner: entry,
      id: this.#idOf(entry, i),
    };
    return [{ entry: dlq, from: 0, to: 1 }];
  }

  #drop(
    entry: Entry,
    status: number,
    error: { type?: string | undefined; reason?: string | undefined },
  ): void {
    this.counters.dropped++;
    this.#log.error(
      `output: dead-letter index ${this.#opts.dlqIndex} refused a document (HTTP ${status} ${error.type ?? ''}: ${error.reason ?? ''}); it is dropped`,
      { path: entry.batch.file.path, id: entry.id },
    );
    this.#done(entry);
  }

  #done(entry: Entry): void {
    let e = entry;
    if (e.owner !== undefined) {
      this.counters.deadLettered++;
      e = e.owner;
    }
    this.counters.queued--;
    if (--e.remaining === 0) {
      e.batch.ack();
      if (--this.#unacked === 0) {
        const ws = this.#waiters;
        this.#waiters = [];
        for (const w of ws) w();
      }
    }
  }

  /** A fault is logged once when the state changes, not once per retry. */
  #trouble(state: OutputState, raw: string): void {
    // connection errors can quote a node URL: never let credentials in one reach a log
    const message = redactCredentials(raw);
    this.#lastError = message;
    if (this.#state === state) return;
    this.#state = state;
    if (state === 'wrong-server')
      this.#log.error(`output: ${message}; nothing is sent there until GET / finds ${this.#product}`);
    else if (state === 'unauthorized') this.#log.error(`output: ${message}; retrying with backoff`);
    else this.#log.warn(`output: ${message}; retrying with backoff`);
  }

  #recovered(): void {
    if (this.#state === 'retrying' || this.#state === 'unauthorized' || this.#state === 'wrong-server') {
      this.#log.info(`output: ${this.#product} accepts requests again`);
    }
    this.#state = 'ok';
    this.#lastError = undefined;
  }

  #sleep(ms: number): Promise<void> {
    if (this.#aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const s = {
        timer: setTimeout(() => {
          this.#sleeps.delete(s);
          resolve();
        }, ms),
        resolve,
      };
      this.#sleeps.add(s);
    });
  }
}

/** A body buffer has room for a full batch plus this, so one sized for a batch fits most requests. */
const SPARE_ROOM = 256 * 1024;

const TS_PREFIX = '{"@timestamp":"'.length;

/** The document's @timestamp text (documents start with it; see encode/document.ts). */
function timestampText(batch: RecordBatch, i: number): string | undefined {
  const start = (i === 0 ? 0 : batch.ends[i - 1]!) + TS_PREFIX;
  const end = batch.body.indexOf(0x22, start);
  return end === -1 || end - start > 64 ? undefined : batch.body.toString('latin1', start, end);
}

function reasonOf(body: unknown): string {
  if (typeof body === 'string') return body.slice(0, 200);
  const err = (body as { error?: { type?: string; reason?: string } | string } | undefined)?.error;
  if (typeof err === 'string') return err;
  if (err !== undefined) return `${err.type ?? ''}${err.reason ? `: ${err.reason}` : ''}`;
  return '';
}
