// Body buffers for the encoder, reused once the sink has acknowledged what was written in them.
//
// A body is one ArrayBuffer. Freeing each at acknowledgement (munmap) and allocating the next one
// (fresh pages, a page fault per 4 KiB written) cost the records worker ~15 % of its time, and
// leaving them to the garbage collector is not an option: buffers transferred from another thread
// do not make V8 start a GC, and after a 429 storm the main thread held 1.3 GB of acknowledged
// bodies before one ran (docs/PERFORMANCE.md, section 3). So an acknowledged body goes back to the
// thread that wrote it: transferred to its records worker, or detached from its views and kept in
// the main thread's pool. Either way nothing can read the old views any more: a body is never
// written while something else still sees it.
//
// One pool per thread (a module instance per isolate).

const MiB = 1024 * 1024;

/** Bodies this big and bigger are pooled, in whole MiB so that one fits the next chunks' estimates. */
export const POOLED_MIN_BYTES = 256 * 1024;

/** What a pool keeps at most; the rest is freed. */
const MAX_POOLED_BYTES = 16 * MiB;

/** A pool unused this long is emptied: an idle agent keeps no spare bodies. */
const IDLE_MS = 5000;

type Transferable = ArrayBuffer & { transfer?: (length?: number) => ArrayBuffer; detached?: boolean };

/** Frees an ArrayBuffer's memory now (detaching it and its views). */
export function freeArrayBuffer(ab: ArrayBuffer): void {
  const t = ab as Transferable;
  if (t.detached !== true) t.transfer?.(0);
}

/**
 * The same memory as a new ArrayBuffer, `ab` and its views detached: what was handed out can no
 * longer be read or written through old references. Undefined when the runtime cannot.
 */
export function detachedCopy(ab: ArrayBuffer): ArrayBuffer | undefined {
  const t = ab as Transferable;
  if (t.detached === true || t.transfer === undefined) return undefined;
  return t.transfer();
}

export class BodyPool {
  readonly #free: ArrayBuffer[] = [];
  #bytes = 0;
  #lastUseMs = 0;
  #timer: NodeJS.Timeout | undefined;

  /** bytes kept for reuse */
  get bytes(): number {
    return this.#bytes;
  }

  /** A buffer of at least `size` bytes: the smallest pooled one that fits, or a new one. */
  take(size: number): Buffer {
    this.#lastUseMs = Date.now();
    if (size < POOLED_MIN_BYTES) return Buffer.allocUnsafeSlow(size);
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const n = this.#free[i]!.byteLength;
      if (n >= size && (best === -1 || n < this.#free[best]!.byteLength)) best = i;
    }
    if (best === -1) return Buffer.allocUnsafeSlow(Math.ceil(size / MiB) * MiB);
    const ab = this.#free[best]!;
    this.#free[best] = this.#free[this.#free.length - 1]!;
    this.#free.pop();
    this.#bytes -= ab.byteLength;
    return Buffer.from(ab);
  }

  /** Keeps an ArrayBuffer nobody else can reach (transferred here, or a detachedCopy) for reuse. */
  put(ab: ArrayBuffer): void {
    if (ab.byteLength < POOLED_MIN_BYTES || this.#bytes + ab.byteLength > MAX_POOLED_BYTES) {
      freeArrayBuffer(ab);
      return;
    }
    this.#free.push(ab);
    this.#bytes += ab.byteLength;
    this.#lastUseMs = Date.now();
    this.#timer ??= setTimeout(() => this.#trimWhenIdle(), IDLE_MS).unref();
  }

  /** Frees every pooled buffer. */
  clear(): void {
    for (const ab of this.#free) freeArrayBuffer(ab);
    this.#free.length = 0;
    this.#bytes = 0;
  }

  #trimWhenIdle(): void {
    this.#timer = undefined;
    const idle = Date.now() - this.#lastUseMs;
    if (idle >= IDLE_MS) this.clear();
    else if (this.#free.length > 0)
      this.#timer = setTimeout(() => this.#trimWhenIdle(), IDLE_MS - idle).unref();
  }
}

/** This thread's pool. */
export const bodyPool = new BodyPool();

/**
 * Gives an acknowledged body's memory back to this thread's pool (large ones) or frees it (small
 * ones); `body` and every view of its ArrayBuffer are detached. The caller must own the whole
 * ArrayBuffer (FileProcessor's bodies do) and a buffer of Node's shared pool is never touched.
 */
export function recycleLocally(body: Buffer): void {
  const ab = body.buffer as ArrayBuffer;
  if (body.length === 0 || ab.byteLength <= Buffer.poolSize) return;
  if (ab.byteLength < POOLED_MIN_BYTES) {
    freeArrayBuffer(ab);
    return;
  }
  const moved = detachedCopy(ab);
  if (moved !== undefined) bodyPool.put(moved);
}
