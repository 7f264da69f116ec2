import type { FileHandle } from 'node:fs/promises';
import type { DocumentContext } from '../encode/document.ts';
import type { FileMetadata, SourceFile } from '../pipeline/types.ts';
import type { FileWork, FileWorkFactory } from '../worker/file-work.ts';
import type { AckTracker, ContinuationState } from './ack-tracker.ts';
import type { CheckpointEntry } from './checkpointer.ts';
import type { Fingerprint } from './fingerprint.ts';
import type { FileRegistry } from './registry.ts';
import type { TailerDeps, TailerOptions } from './tail-options.ts';

export type FileState = 'active' | 'parked' | 'gone' | 'closing';

/** One followed file: its identity, where reading stands, and what it holds of the budget. */
export interface Tracked {
  /** the registry's key: the file id (`source.identity.id`), unique among every file ever known */
  key: string;
  source: SourceFile;
  fh: FileHandle | undefined;
  /** bytes before this offset are consumed (turned into records or held as pending partials) */
  readPos: number;
  /** bytes looked at so far: readPos plus an unconsumed incomplete last line */
  seen: number;
  size: number;
  /** splitting, parsing, encoding: here or in a worker thread */
  work: FileWork;
  tracker: AckTracker;
  /** budget bytes this file holds for its current tracker */
  held: number;
  verify: Fingerprint;
  /** the inode's birth time (0: not reported), kept in the checkpoint to tell a reused inode apart */
  birthMs: number;
  state: FileState;
  deleted: boolean;
  goneSinceMs: number;
  lastGrowthMs: number;
  queued: boolean;
  busy: boolean;
  /** asked to read while a reader had it */
  again: boolean;
  truncated: boolean;
  finalizing: boolean;
  /** once mode: read to the end */
  eof: boolean;
  /** enrichment: waiting for the first answer / the answer was provisional */
  describing: boolean;
  /** enrichment answered once (or there is none): the file may be read */
  ready: boolean;
  metaComplete: boolean;
  lastDescribeMs: number;
  /** what enrichment said, for the transforms (undefined without enrichment) */
  meta: FileMetadata | undefined;
  /** emit pending multiline groups at the next read if it finds nothing new */
  flushDue: boolean;
  /** throttled (pause mode): not read before this time */
  pausedUntil: number;
}

export interface FileStatus {
  path: string;
  state: FileState;
  committed: number;
  readPos: number;
  size: number;
  lag: number;
  pendingBatches: number;
}

/** What the source stage's parts (opening, reading, rotation, gz recovery) share with the tailer. */
export interface TailContext {
  readonly opts: TailerOptions;
  readonly deps: TailerDeps;
  readonly registry: FileRegistry;
  stopped(): boolean;
  /** asks for a read of the file (once enrichment answered and it is not throttled) */
  enqueue(f: Tracked): void;
  /** positions moved: the next checkpoint interval writes them */
  markDirty(): void;
  /** writes the positions now (a new file's identity, before any of its documents is sent) */
  saveNow(): Promise<void>;
  /** when the previous run last wrote the positions this run started from; undefined on a first run */
  previousSaveMs(): number | undefined;
  /** a warning said once per key (a path, or a path and a concern), not at every retry */
  warnOnce(key: string, message: string): void;
  /** a closing file leaves once everything read from it is acknowledged */
  maybeRelease(f: Tracked): void;
  scanSoon(): void;
  /** something the once mode waits for may have ended: check whether all is read */
  idleMaybe(): void;
  /** a matched file cannot be opened or read: said once with its path, counted, retried by scans */
  unreadable(path: string, err: unknown): void;
  /** the file was opened: a later failure is news again */
  readable(path: string): void;
  /** throttled (pause mode): read again after `ms` */
  pause(f: Tracked, ms: number): void;
  readonly work: FileWorkFactory;
  /** how a file's documents are written: its path, the pod's members, the sink's action line */
  contextFor(source: SourceFile, fragment: string): DocumentContext;
  /** an ack tracker whose commits mark the positions dirty while it is the file's current one */
  newTracker(f: Tracked, start: number, continuation: ContinuationState | undefined): AckTracker;
}

/**
 * Whether two birth times can be the same inode's: where the file system reports them (statx
 * btime, sub-millisecond), a reused inode number has another; where it does not (0), only the
 * fingerprint can tell.
 */
export function sameBirth(a: number, b: number): boolean {
  return a === 0 || b === 0 || a === b;
}

export function inodeKey(dev: number, ino: number): string {
  return `${dev}:${ino}`;
}

/** The checkpoint of a followed file as it stands: what is acknowledged, and how to know it again. */
export function entryOf(f: Tracked, now: number): CheckpointEntry {
  const { identity } = f.source;
  return {
    path: f.source.path,
    dev: identity.dev,
    ino: identity.ino,
    id: identity.id,
    fingerprint: f.verify.fingerprint,
    fingerprintBytes: f.verify.fingerprintBytes,
    offset: f.tracker.committed,
    format: f.work.format,
    continuation: f.tracker.continuation,
    seenMs: now,
    ...(f.birthMs > 0 ? { birthMs: f.birthMs } : {}),
  };
}
