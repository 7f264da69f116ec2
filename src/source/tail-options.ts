import type { Budget, Enricher, FormatOption, Sink, SourceEvents } from '../pipeline/types.ts';
import type { Transforms } from '../transform/types.ts';
import type { FileWorkFactory } from '../worker/file-work.ts';

export interface TailerOptions {
  patterns: string[];
  format: FormatOption;
  maxLineBytes: number;
  /** bytes per read; at least maxLineBytes + 1 so that a line of the maximum length fits */
  readChunkBytes: number;
  /** files that exist at start and have no checkpoint start at their end (tail -F) instead of 0 */
  startAtEnd: boolean;
  /** read the files found at start to their current end, then stop (see `run()`) */
  once: boolean;
  pollIntervalMs: number;
  scanIntervalMs: number;
  /** a rotated-away file is kept open this long after it was last seen growing, for late writes */
  rotateGraceMs: number;
  /** a deleted file that still has unread bytes is released after this long; the rest is counted as skipped */
  deletedMaxMs: number;
  maxOpenFiles: number;
  hostName: string;
  /** use file-system notifications (chokidar) on top of polling */
  watch: boolean;
  readers: number;
  positionsFile: string | undefined;
  checkpointIntervalMs: number;
  /** a checkpoint entry whose file has not been seen for this long is forgotten */
  forgetAfterMs: number;
  /** paths matched by the patterns but not to be read (e.g. gzipped rotated files) */
  skipPath?: ((path: string) => boolean) | undefined;
}

export interface TailerDeps {
  sink: Sink;
  budget: Budget;
  events: SourceEvents;
  enricher?: Enricher | undefined;
  /** multiline, parsers, filters, limits, throttling; without it messages that are JSON objects become fields */
  transforms?: Transforms | undefined;
  /** where files are processed: worker threads (worker/pool.ts); default: this thread */
  work?: FileWorkFactory | undefined;
}
