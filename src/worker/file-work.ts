// The tail engine's view of a file's processing (split, parse, group, encode): either in the main
// thread (LocalFileWork) or pinned to a worker thread (worker/pool.ts). Either way one file's chunks
// are processed one at a time, in order, by one FileProcessor, so ordering and checkpoints are the
// same; only where the CPU time is spent differs.
import type { DocumentContext } from '../encode/document.ts';
import { recycleLocally } from '../parse/body-pool.ts';
import {
  FileProcessor,
  type ProcessorEvents,
  type ProcessorOptions,
  type ProcessResult,
} from '../parse/file-processor.ts';
import type { Format } from '../pipeline/types.ts';
import type { ContinuationState } from '../source/ack-tracker.ts';
import type { TransformMeta, Transforms } from '../transform/types.ts';

/** A processed chunk, and the read buffer back for the next read (a worker transfers it). */
export interface WorkResult extends ProcessResult {
  buffer: Buffer;
}

export interface FileWork {
  /** the file's format once detected or chosen */
  readonly format: Format | undefined;
  /** a multiline group waits for more lines (as of the last processed chunk) */
  readonly hasPendingGroups: boolean;
  setContext(ctx: DocumentContext): void;
  setFormat(format: Format): void;
  /** what enrichment said: chooses the file's multiline rule and parser (transform/resolve.ts) */
  setMeta(meta: TransformMeta | undefined): void;
  reset(): void;
  /**
   * Processes `buf[0, len)` (file bytes from `base`); see FileProcessor.process. The caller must
   * not touch `buf` until the result gives a buffer back.
   */
  process(buf: Buffer, len: number, base: number, final: boolean, flushGroups: boolean): Promise<WorkResult>;
  /**
   * A body this work gave out was acknowledged: its memory goes back to the thread that wrote it
   * (parse/body-pool.ts). `body` and its views are detached; may be called after close().
   */
  recycle(body: Buffer): void;
  /** the file is no longer followed */
  close(): void;
}

export interface FileWorkInit {
  path: string;
  ctx: DocumentContext;
  opts: ProcessorOptions;
  resume: { format?: Format | undefined; continuation?: ContinuationState | undefined };
}

/** Makes a FileWork per followed file. */
export interface FileWorkFactory {
  create(init: FileWorkInit): FileWork;
  close(): Promise<void>;
}

/** In the main thread: a FileProcessor called directly. */
export class LocalFileWork implements FileWork {
  readonly #processor: FileProcessor;
  readonly #path: string;
  readonly #transforms: Transforms | undefined;

  constructor(init: FileWorkInit, events: ProcessorEvents, transforms: Transforms | undefined) {
    this.#processor = new FileProcessor(init.ctx, init.opts, events, init.resume);
    this.#path = init.path;
    this.#transforms = transforms;
    if (transforms !== undefined) this.#processor.transform = transforms.forFile(init.path, undefined);
  }

  get format(): Format | undefined {
    return this.#processor.format;
  }

  get hasPendingGroups(): boolean {
    return this.#processor.hasPendingGroups;
  }

  setContext(ctx: DocumentContext): void {
    this.#processor.context = ctx;
  }

  setFormat(format: Format): void {
    this.#processor.setFormat(format);
  }

  setMeta(meta: TransformMeta | undefined): void {
    if (this.#transforms !== undefined)
      this.#processor.transform = this.#transforms.forFile(this.#path, meta);
  }

  reset(): void {
    this.#processor.reset();
  }

  process(buf: Buffer, len: number, base: number, final: boolean, flushGroups: boolean): Promise<WorkResult> {
    const res = this.#processor.process(buf, len, base, final, flushGroups);
    return Promise.resolve({ ...res, buffer: buf });
  }

  recycle(body: Buffer): void {
    recycleLocally(body);
  }

  close(): void {}
}

export function localFileWork(events: ProcessorEvents, transforms: Transforms | undefined): FileWorkFactory {
  return {
    create: (init) => new LocalFileWork(init, events, transforms),
    close: async () => {},
  };
}
