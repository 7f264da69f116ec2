import { errorMessage } from '../../errors.ts';
import type { RecordBatch, Sink } from '../../pipeline/types.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { SinkCounters } from '../counters.ts';
import { backoffMs } from './backoff.ts';
import { actionLine, deadLetterDocument, documentId, type IndexTemplate } from './encode.ts';
import { type BulkItemResult, bulkItems, classifyItem, classifyRequest } from './response.ts';

/** The one I/O seam of the output: send a bulk body, get the status and parsed body back. */
export interface BulkTransport {
  /** Resolves with the HTTP status and body; rejects only when there was no HTTP response. */
  bulk(body: string): Promise<{ status: number; body: unknown }>;
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
}

export type OutputState = 'idle' | 'ok' | 'retrying' | 'unauthorized';

interface Entry {
  batch: RecordBatch;
  remaining: number;
}

interface Item {
  entry: Entry;
  doc: string;
  index: string;
  id: string | undefined;
  /** a dead-letter document: if it is refused too, nothing more can be done */
  dlq: boolean;
}

/**
 * Ships batches to Elasticsearch with `_bulk` `create`: a request goes out at `batchDocs`
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
  #pending: Item[] = [];
  #pendingChars = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushDue = false;
  #flushing = 0;
  #closed = false;
  #aborted = false;
  #unacked = 0;
  #waiters: Array<() => void> = [];
  readonly #sleeps = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  #state: OutputState = 'idle';
  #lastError: string | undefined;

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
  }

  /** ok: the last request got through; retrying: connection/5xx/429 trouble; unauthorized: 401/403 */
  get state(): OutputState {
    return this.#state;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  write(batch: RecordBatch): void {
    if (this.#closed) return;
    const n = batch.docs.length;
    const entry: Entry = { batch, remaining: n };
    this.#unacked++;
    const { index, idMode, hostName } = this.#opts;
    const fileIndex = index.perFile ? index.resolve(batch.file, '', hostName) : undefined;
    for (let i = 0; i < n; i++) {
      const doc = batch.docs[i]!;
      this.#pending.push({
        entry,
        doc,
        index: fileIndex ?? index.resolve(batch.file, doc, hostName),
        id: idMode === 'deterministic' ? documentId(batch.file, batch.offsets[i]!) : undefined,
        dlq: false,
      });
    }
    this.#pendingChars += batch.chars;
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

  #pump(): void {
    const o = this.#opts;
    while (!this.#aborted && this.counters.inFlight < o.concurrency && this.#pending.length > 0) {
      const full = this.#pending.length >= o.batchDocs || this.#pendingChars >= o.batchBytes;
      if (!full && !this.#flushDue && this.#flushing === 0 && !this.#closed) return;
      const items = this.#take();
      void this.#run(items);
    }
    if (this.#pending.length === 0) {
      this.#flushDue = false;
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
    }
  }

  #take(): Item[] {
    const o = this.#opts;
    let n = 0;
    let chars = 0;
    while (n < this.#pending.length && n < o.batchDocs) {
      const len = this.#pending[n]!.doc.length;
      if (n > 0 && chars + len > o.batchBytes) break;
      chars += len;
      n++;
    }
    const items = this.#pending.slice(0, n);
    this.#pending = this.#pending.slice(n);
    this.#pendingChars -= chars;
    if (this.#pending.length === 0) {
      this.#pendingChars = 0;
      this.#flushDue = false;
    }
    return items;
  }

  async #run(items: Item[]): Promise<void> {
    this.counters.inFlight++;
    try {
      await this.#deliver(items);
    } catch (err) {
      // a bug, not an Elasticsearch fault: say so loudly; the items stay unacknowledged
      this.#log.error(`output: unexpected failure: ${errorMessage(err)}`);
    } finally {
      this.counters.inFlight--;
      this.#pump();
    }
  }

  /** Sends `items` until each is stored, a duplicate, dead-lettered, or the sink is aborted. */
  async #deliver(items: Item[]): Promise<void> {
    let work = items;
    let attempt = 0;
    let body: string | undefined;
    while (work.length > 0 && !this.#aborted) {
      body ??= encodeBody(work);
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
      this.counters.requestSeconds += Number(process.hrtime.bigint() - started) / 1e9;
      if (this.#aborted) return;

      if (status !== undefined && status >= 200 && status < 300) {
        const results = bulkItems(resBody, work.length);
        if (results === undefined) {
          this.#trouble('retrying', `bulk response with status ${status} did not list ${work.length} items`);
          this.counters.retried += work.length;
          await this.#sleep(
            backoffMs(attempt++, this.#opts.retryInitialMs, this.#opts.retryMaxMs, this.#random),
          );
          continue;
        }
        this.#recovered();
        const next = this.#settleItems(work, results);
        if (next.transient) {
          await this.#sleep(
            backoffMs(attempt++, this.#opts.retryInitialMs, this.#opts.retryMaxMs, this.#random),
          );
        } else {
          attempt = 0;
        }
        work = next.items;
        body = undefined;
        continue;
      }

      this.counters.requestFailures++;
      const outcome = classifyRequest(status);
      if (outcome === 'split') {
        await this.#split(work, status!, resBody);
        return;
      }
      if (outcome === 'auth') {
        this.#trouble(
          'unauthorized',
          `Elasticsearch refused the credentials (HTTP ${status}): ${reasonOf(resBody)}`,
        );
      } else {
        this.#trouble(
          'retrying',
          status === undefined
            ? `cannot reach Elasticsearch: ${failure}`
            : `bulk request failed with HTTP ${status}: ${reasonOf(resBody)}`,
        );
      }
      this.counters.retried += work.length;
      await this.#sleep(backoffMs(attempt++, this.#opts.retryInitialMs, this.#opts.retryMaxMs, this.#random));
    }
  }

  /** 413 (or a whole-request 400): halve until a single document is left, which is dead-lettered. */
  async #split(work: Item[], status: number, resBody: unknown): Promise<void> {
    if (work.length === 1) {
      const item = work[0]!;
      const error = {
        type: status === 413 ? 'request_entity_too_large' : 'bad_request',
        reason: reasonOf(resBody),
      };
      if (item.dlq) {
        this.#drop(item, status, error);
        return;
      }
      await this.#deliver([this.#toDeadLetter(item, status, error)]);
      return;
    }
    this.counters.splits++;
    const half = Math.ceil(work.length / 2);
    await this.#deliver(work.slice(0, half));
    await this.#deliver(work.slice(half));
  }

  /** Applies per-item results; returns what must be sent again and whether to back off first. */
  #settleItems(work: Item[], results: BulkItemResult[]): { items: Item[]; transient: boolean } {
    const again: Item[] = [];
    let transient = false;
    for (let i = 0; i < work.length; i++) {
      const item = work[i]!;
      const r = results[i]!;
      switch (classifyItem(r.status)) {
        case 'ok':
          if (!item.dlq) this.counters.sent++;
          this.#done(item);
          break;
        case 'duplicate':
          if (!item.dlq) this.counters.duplicates++;
          this.#done(item);
          break;
        case 'retry':
          this.counters.retried++;
          transient = true;
          again.push(item);
          break;
        default:
          if (item.dlq) this.#drop(item, r.status, r.error ?? {});
          else again.push(this.#toDeadLetter(item, r.status, r.error ?? {}));
      }
    }
    return { items: again, transient };
  }

  #toDeadLetter(
    item: Item,
    status: number,
    error: { type?: string | undefined; reason?: string | undefined },
  ): Item {
    return {
      entry: item.entry,
      doc: deadLetterDocument(item.doc, item.index, status, error),
      index: this.#opts.dlqIndex,
      id: item.id,
      dlq: true,
    };
  }

  #drop(item: Item, status: number, error: { type?: string | undefined; reason?: string | undefined }): void {
    this.counters.dropped++;
    this.#log.error(
      `output: dead-letter index ${this.#opts.dlqIndex} refused a document (HTTP ${status} ${error.type ?? ''}: ${error.reason ?? ''}); it is dropped`,
      { index: item.index, id: item.id },
    );
    this.#done(item);
  }

  #done(item: Item): void {
    if (item.dlq) this.counters.deadLettered++;
    this.counters.queued--;
    const entry = item.entry;
    if (--entry.remaining === 0) {
      entry.batch.ack();
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
    const message = raw.replace(/\/\/[^/@\s]+@/g, '//***@');
    this.#lastError = message;
    if (this.#state === state) return;
    this.#state = state;
    if (state === 'unauthorized') this.#log.error(`output: ${message}; retrying with backoff`);
    else this.#log.warn(`output: ${message}; retrying with backoff`);
  }

  #recovered(): void {
    if (this.#state === 'retrying' || this.#state === 'unauthorized') {
      this.#log.info('output: Elasticsearch accepts requests again');
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

function encodeBody(items: Item[]): string {
  let body = '';
  for (const item of items) body += `${actionLine(item.index, item.id)}${item.doc}\n`;
  return body;
}

function reasonOf(body: unknown): string {
  if (typeof body === 'string') return body.slice(0, 200);
  const err = (body as { error?: { type?: string; reason?: string } | string } | undefined)?.error;
  if (typeof err === 'string') return err;
  if (err !== undefined) return `${err.type ?? ''}${err.reason ? `: ${err.reason}` : ''}`;
  return '';
}
