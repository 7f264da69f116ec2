// Records worker threads (`--workers N`): each followed file is pinned to one worker (by its
// container directory, so a container's files share one rate limit), which holds its FileProcessor.
// The main thread keeps file I/O, acknowledgements and checkpoints. Chunks go to the worker and
// NDJSON bodies come back as transferred ArrayBuffers.
//
// A worker is an isolate of ~18 MiB: it is started with the first chunk for it and ended after
// `idleMs` without work, once every file of it can be resumed exactly from what the main thread
// knows (its last result ended on a checkpoint-safe offset, no multiline group pending: the same
// state a restart from a checkpoint resumes). The next chunk starts it again and reopens those
// files with that state. A quiet node then holds no worker (docs/PERFORMANCE.md, section 4).
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { DocumentContext } from '../encode/document.ts';
import { freeArrayBuffer, POOLED_MIN_BYTES } from '../parse/body-pool.ts';
import type { Format, SourceEvents } from '../pipeline/types.ts';
import type { ContinuationState } from '../source/ack-tracker.ts';
import type { RecordOptions } from '../transform/resolve.ts';
import type { TransformMeta } from '../transform/types.ts';
import type { FileWork, FileWorkFactory, FileWorkInit, WorkResult } from './file-work.ts';
import type { FromWorker, ToWorker, WorkerData } from './protocol.ts';

const EMPTY = Buffer.alloc(0);

/** Heap of one records worker (see the constructor). */
const WORKER_OLD_SPACE_MB = 128;
/** Young generation of one records worker: records are short-lived, a chunk's worth at a time. */
const WORKER_YOUNG_SPACE_MB = 6;

/** A worker with nothing to do for this long is ended (option workerIdleMs). */
export const DEFAULT_WORKER_IDLE_MS = 30_000;

interface Pending {
  base: number;
  resolve(res: WorkResult): void;
  reject(err: Error): void;
}

interface Thread {
  index: number;
  /** undefined while stopped */
  worker: Worker | undefined;
  pending: Map<number, Pending>;
  files: Map<number, WorkerFileWork>;
  lastUsedMs: number;
}

export interface WorkerPoolOptions {
  workers: number;
  records: RecordOptions | undefined;
  events: SourceEvents;
  throttled?:
    | ((namespace: string, action: 'drop' | 'pause', lines: number, bytes: number) => void)
    | undefined;
  /** a worker died: a bug; the process cannot go on without the files' processors */
  onFatal(err: Error): void;
  /** a worker with nothing to do for this long is ended (default DEFAULT_WORKER_IDLE_MS) */
  idleMs?: number | undefined;
  /** a worker started or ended (metrics) */
  onWorker?: ((change: 'started' | 'stopped') => void) | undefined;
}

/** The worker script next to this module (`.ts` when running from source, `.js` when built). */
function workerUrl(): URL {
  return new URL(
    import.meta.url.endsWith('.ts') ? './records-worker.ts' : './records-worker.js',
    import.meta.url,
  );
}

export class WorkerPool implements FileWorkFactory {
  readonly #threads: Thread[] = [];
  readonly #opts: WorkerPoolOptions;
  #nextId = 1;
  #seq = 0;
  #closing = false;

  readonly #idleMs: number;
  readonly #idleTimer: NodeJS.Timeout;

  constructor(opts: WorkerPoolOptions) {
    this.#opts = opts;
    this.#idleMs = opts.idleMs ?? DEFAULT_WORKER_IDLE_MS;
    for (let i = 0; i < opts.workers; i++) {
      this.#threads.push({
        index: i,
        worker: undefined,
        pending: new Map(),
        files: new Map(),
        lastUsedMs: 0,
      });
    }
    // checked at a quarter of the idle time, at most every 10 s: a timer that never keeps the
    // process alive and wakes an idle agent rarely
    this.#idleTimer = setInterval(() => this.#stopIdle(), Math.min(10_000, Math.max(50, this.#idleMs / 4)));
    this.#idleTimer.unref();
  }

  #start(thread: Thread): Worker {
    const data: WorkerData = { records: this.#opts.records };
    const worker = new Worker(workerUrl(), {
      workerData: data,
      name: `logferry-records-${thread.index}`,
      // A worker is an isolate with its own heap, which V8 would size from the machine, not from
      // the process's --max-old-space-size: cap it. Its live data is one chunk's records plus each
      // file's pending partial line and multiline group.
      resourceLimits: {
        maxOldGenerationSizeMb: WORKER_OLD_SPACE_MB,
        maxYoungGenerationSizeMb: WORKER_YOUNG_SPACE_MB,
      },
    });
    // events of a worker ended as idle are not this thread's any more
    const current = () => thread.worker === worker;
    worker.on('message', (msg: FromWorker) => {
      if (current()) this.#onMessage(thread, msg);
    });
    worker.on('error', (err) => {
      if (current()) this.#fail(thread, err);
    });
    worker.on('exit', (code) => {
      if (!this.#closing && current())
        this.#fail(thread, new Error(`records worker exited with code ${code}`));
    });
    // idle workers must not keep a finished process alive
    worker.unref();
    thread.worker = worker;
    // the files pinned to it, as the main thread knows them (#stopIdle ended the last worker only
    // when that is all their processors held)
    for (const work of thread.files.values()) worker.postMessage(work.openMessage());
    this.#opts.onWorker?.('started');
    return worker;
  }

  /** Ends the workers that had nothing to do for idleMs and whose files can be reopened exactly. */
  #stopIdle(): void {
    const now = Date.now();
    for (const thread of this.#threads) {
      const worker = thread.worker;
      if (worker === undefined || thread.pending.size > 0 || now - thread.lastUsedMs < this.#idleMs) continue;
      let resumable = true;
      for (const work of thread.files.values()) resumable &&= work.resumable;
      if (!resumable) continue;
      thread.worker = undefined;
      void worker.terminate();
      this.#opts.onWorker?.('stopped');
    }
  }

  create(init: FileWorkInit): FileWork {
    const thread = this.#threads[hash(dirname(init.path)) % this.#threads.length]!;
    const work = new WorkerFileWork(this, thread, this.#nextId++, init);
    thread.files.set(work.id, work);
    this.post(thread, work.openMessage());
    return work;
  }

  /** To the thread's worker if it runs; a stopped one gets the file's state when it starts. */
  post(thread: Thread, msg: ToWorker, transfer?: ArrayBuffer[]): void {
    thread.worker?.postMessage(msg, transfer);
  }

  submit(
    thread: Thread,
    id: number,
    buf: Buffer,
    len: number,
    base: number,
    final: boolean,
    flush: boolean,
  ): Promise<WorkResult> {
    const seq = ++this.#seq;
    const worker = thread.worker ?? this.#start(thread);
    thread.lastUsedMs = Date.now();
    const ab = buf.buffer as ArrayBuffer;
    if (buf.byteOffset !== 0 || buf.length !== ab.byteLength) {
      throw new Error(
        'records worker: a read buffer must own its whole ArrayBuffer (Buffer.allocUnsafeSlow)',
      );
    }
    // referenced while a chunk is in a worker, so a pending result keeps the process alive
    if (thread.pending.size === 0) worker.ref();
    return new Promise<WorkResult>((resolve, reject) => {
      thread.pending.set(seq, { base, resolve, reject });
      worker.postMessage({ t: 'process', id, seq, buf: ab, len, base, final, flush } satisfies ToWorker, [
        ab,
      ]);
    });
  }

  #onMessage(thread: Thread, msg: FromWorker): void {
    const pending = thread.pending.get(msg.seq);
    if (pending === undefined) return;
    thread.pending.delete(msg.seq);
    thread.lastUsedMs = Date.now();
    if (thread.pending.size === 0) thread.worker?.unref();
    const buffer = Buffer.from(msg.buf, 0, msg.buf.byteLength);
    const work = thread.files.get(msg.id);
    if (msg.t === 'error') {
      if (work !== undefined) work.resumable = false;
      pending.reject(new Error(msg.message));
      return;
    }
    if (work !== undefined) {
      work.format = msg.format;
      work.hasPendingGroups = msg.pendingGroups;
      work.continuation = msg.continuation;
      // the processor holds nothing beyond `continuation` when the next read starts where a
      // restart from its checkpoint would
      work.resumable = !msg.pendingGroups && msg.safeEnd === pending.base + msg.consumed;
    }
    const ev = msg.events;
    const events = this.#opts.events;
    if (ev.lines > 0) events.linesRead(ev.lines);
    for (const [kind, n] of Object.entries(ev.parseErrors))
      for (let i = 0; i < n; i++) events.parseError(kind);
    for (let i = 0; i < ev.splits; i++) events.lineSplit();
    if (ev.filtered > 0) events.recordsFiltered(ev.filtered);
    if (ev.truncated > 0) events.recordsTruncated(ev.truncated);
    for (const [ns, action, lines, bytes] of ev.throttled) this.#opts.throttled?.(ns, action, lines, bytes);
    pending.resolve({
      body: msg.body === undefined ? EMPTY : Buffer.from(msg.body.buffer, msg.body.offset, msg.body.length),
      ends: msg.ends,
      offsets: msg.offsets,
      framed: msg.framed,
      consumed: msg.consumed,
      safeEnd: msg.safeEnd,
      continuation: msg.continuation,
      buffer,
    });
  }

  #fail(thread: Thread, err: Error): void {
    if (this.#closing) return;
    for (const p of thread.pending.values()) p.reject(err);
    thread.pending.clear();
    this.#opts.onFatal(err);
  }

  /** An acknowledged body back to the worker that wrote it; small ones are freed here. */
  recycle(thread: Thread, body: Buffer): void {
    const ab = body.buffer as ArrayBuffer;
    if (body.length === 0 || ab.byteLength <= Buffer.poolSize) return;
    if (ab.byteLength < POOLED_MIN_BYTES || this.#closing || thread.worker === undefined) {
      freeArrayBuffer(ab);
      return;
    }
    this.post(thread, { t: 'recycle', buf: ab }, [ab]);
  }

  forget(thread: Thread, id: number): void {
    thread.files.delete(id);
    this.post(thread, { t: 'close', id });
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#idleTimer);
    await Promise.all(this.#threads.map((t) => t.worker?.terminate()));
  }
}

class WorkerFileWork implements FileWork {
  readonly id: number;
  readonly #pool: WorkerPool;
  readonly #thread: Thread;
  readonly #path: string;
  readonly #opts: FileWorkInit['opts'];
  #ctx: DocumentContext;
  #meta: TransformMeta | undefined;
  format: Format | undefined;
  hasPendingGroups = false;
  /** the continuation of the last result (what a reopened processor resumes with) */
  continuation: ContinuationState | undefined;
  /** the worker's processor holds nothing the main thread does not know (see WorkerPool) */
  resumable = true;

  constructor(pool: WorkerPool, thread: Thread, id: number, init: FileWorkInit) {
    this.#pool = pool;
    this.#thread = thread;
    this.id = id;
    this.#path = init.path;
    this.#opts = init.opts;
    this.#ctx = init.ctx;
    this.format = init.resume.format;
    this.continuation = init.resume.continuation;
  }

  /** What opens this file in a (new) worker: as created, or as the last result left it. */
  openMessage(): ToWorker {
    return {
      t: 'open',
      id: this.id,
      path: this.#path,
      ctx: this.#ctx,
      opts: this.#opts,
      resume: { format: this.format, continuation: this.continuation },
      meta: this.#meta,
    };
  }

  setContext(ctx: DocumentContext): void {
    this.#ctx = ctx;
    this.#pool.post(this.#thread, { t: 'ctx', id: this.id, ctx });
  }

  setFormat(format: Format): void {
    this.format = format;
    this.#pool.post(this.#thread, { t: 'format', id: this.id, format });
  }

  setMeta(meta: TransformMeta | undefined): void {
    this.#meta = plainMeta(meta);
    this.#pool.post(this.#thread, { t: 'meta', id: this.id, meta: this.#meta });
  }

  reset(): void {
    this.hasPendingGroups = false;
    this.continuation = undefined;
    this.resumable = true;
    this.#pool.post(this.#thread, { t: 'reset', id: this.id });
  }

  process(buf: Buffer, len: number, base: number, final: boolean, flushGroups: boolean): Promise<WorkResult> {
    return this.#pool.submit(this.#thread, this.id, buf, len, base, final, flushGroups);
  }

  recycle(body: Buffer): void {
    this.#pool.recycle(this.#thread, body);
  }

  close(): void {
    this.#pool.forget(this.#thread, this.id);
  }
}

/** Only what the transforms read: FileMetadata also carries functions-free but large fields. */
function plainMeta(meta: TransformMeta | undefined): TransformMeta | undefined {
  if (meta === undefined) return undefined;
  return { parser: meta.parser, multiline: meta.multiline, fields: meta.fields };
}

/** FNV-1a: a stable spread of container directories over the workers. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
