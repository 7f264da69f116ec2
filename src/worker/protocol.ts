// Messages between the tail engine (main thread) and a records worker (worker/records-worker.ts).
// Chunks and bodies cross as transferred ArrayBuffers: no copy, no structured clone of strings.
import type { DocumentContext } from '../encode/document.ts';
import type { ProcessorOptions } from '../parse/file-processor.ts';
import type { Format } from '../pipeline/types.ts';
import type { ContinuationState } from '../source/ack-tracker.ts';
import type { RecordOptions } from '../transform/resolve.ts';
import type { TransformMeta } from '../transform/types.ts';

export interface WorkerData {
  /** the record options; undefined: messages that are JSON objects become fields, nothing else */
  records: RecordOptions | undefined;
}

export type ToWorker =
  | {
      t: 'open';
      id: number;
      path: string;
      ctx: DocumentContext;
      opts: ProcessorOptions;
      resume: { format?: Format | undefined; continuation?: ContinuationState | undefined };
      /** what enrichment said, when reopened in a restarted worker */
      meta?: TransformMeta | undefined;
    }
  | { t: 'ctx'; id: number; ctx: DocumentContext }
  | { t: 'format'; id: number; format: Format }
  | { t: 'meta'; id: number; meta: TransformMeta | undefined }
  | { t: 'reset'; id: number }
  /** an acknowledged body's ArrayBuffer, transferred back for reuse (parse/body-pool.ts) */
  | { t: 'recycle'; buf: ArrayBuffer }
  | { t: 'close'; id: number }
  | {
      t: 'process';
      id: number;
      seq: number;
      /** the chunk's buffer, transferred; given back with the result */
      buf: ArrayBuffer;
      len: number;
      base: number;
      final: boolean;
      flush: boolean;
    };

/** What the worker's processors counted while producing one result. */
export interface WorkerEvents {
  lines: number;
  /** parse errors by format */
  parseErrors: Record<string, number>;
  splits: number;
  filtered: number;
  truncated: number;
  /** [namespace, action, lines, bytes] */
  throttled: [string, 'drop' | 'pause', number, number][];
}

export type FromWorker =
  | {
      t: 'result';
      id: number;
      seq: number;
      buf: ArrayBuffer;
      /** the NDJSON body: its own ArrayBuffer (transferred) and the range in it; undefined when empty */
      body: { buffer: ArrayBuffer; offset: number; length: number } | undefined;
      ends: number[];
      offsets: number[];
      framed: boolean;
      consumed: number;
      safeEnd: number;
      continuation: ContinuationState | undefined;
      format: Format | undefined;
      pendingGroups: boolean;
      events: WorkerEvents;
    }
  | { t: 'error'; id: number; seq: number; message: string; buf: ArrayBuffer };
