// The one contract between the stages of the pipeline:
//
//   source (tail engine) -> parse -> enrich -> encode -> sink
//                 ^                                       |
//                 +------------ acknowledgements ---------+
//
// Chunks, not lines, cross stage boundaries: a read of one file becomes one RecordBatch holding
// pre-serialized JSON documents and their byte offsets. The sink acknowledges a whole batch once
// every document in it is delivered (or dead-lettered); the source turns batch acknowledgements into
// per-file checkpoints that only ever cover acknowledged bytes (see docs/DESIGN.md).

/** Input formats a file can be read as. `auto` is resolved per file from its first line. */
export type Format = 'cri' | 'docker' | 'json' | 'text';
export type FormatOption = Format | 'auto';

export type Stream = 'stdout' | 'stderr';

/**
 * Identity of a followed file: device + inode of the target (symlinks are followed) plus a
 * fingerprint of its first bytes, so that an inode reused after delete + create is a new file.
 */
export interface FileIdentity {
  dev: number;
  ino: number;
  /**
   * The file's stable id (see source/fingerprint.ts fileId): derived from device, inode and the
   * fingerprint of its first bytes when first seen; document ids are this plus the offset.
   */
  id: string;
}

/** What the pipeline knows about the file a batch came from; stable for the life of a followed file. */
export interface SourceFile {
  /** `${dev}:${ino}`: unique among the files open at one time */
  key: string;
  identity: FileIdentity;
  /** the path the file was found at (a symlink's own path, not its target) */
  path: string;
  /**
   * Per-file string fields by dotted name (e.g. `kubernetes.namespace`), for index name templates;
   * the documents already carry them.
   */
  fields?: Readonly<Record<string, string>> | undefined;
}

/**
 * One batch of documents from one file, in file order. `docs[i]` is a complete JSON object text
 * (no trailing newline) whose `log.offset` is `offsets[i]`.
 */
export interface RecordBatch {
  file: SourceFile;
  docs: string[];
  offsets: number[];
  /** total UTF-16 length of docs, a cheap size estimate for batching */
  chars: number;
  /**
   * Called by the sink exactly once, when every document of the batch is delivered or
   * dead-lettered. Never called for documents that were not.
   */
  ack(): void;
}

/** A sink accepts batches and acknowledges them when they are delivered. */
export interface Sink {
  /** Hand over a batch. The sink owns it until it calls `batch.ack()`. */
  write(batch: RecordBatch): void;
  /** Resolves once every batch written so far has been acknowledged. */
  flush(): Promise<void>;
  /** Stops accepting batches; resolves after flushing or when `deadline` (ms since epoch) passes. */
  close(deadline?: number): Promise<void>;
}

/**
 * Per-file fields added to every document of a file (enrichment). Returns a JSON object text
 * fragment of members, either '' or starting with ',' (e.g. `,"kubernetes":{...}`), serialized once
 * per file rather than once per line.
 */
export interface Enricher {
  fieldsFor(file: SourceFile): string;
}

/**
 * The backpressure point: bytes read but not yet acknowledged. Readers acquire before reading and
 * wait while the budget is spent; acknowledgements release.
 */
export interface Budget {
  readonly used: number;
  readonly limit: number;
  /** true while `used < limit` */
  hasRoom(): boolean;
  acquire(bytes: number): void;
  release(bytes: number): void;
  /** resolves when there is room (immediately if there is) */
  waitForRoom(): Promise<void>;
}

/** Runtime events worth counting; the agent backs this with prom-client, tests with a recorder. */
export interface SourceEvents {
  bytesRead(n: number): void;
  linesRead(n: number): void;
  parseError(kind: string): void;
  lineSplit(): void;
  fileOpened(path: string): void;
  fileClosed(path: string): void;
  rotated(path: string, kind: 'rename' | 'truncate' | 'delete'): void;
  /** unread bytes given up when a deleted file was released before being drained */
  skippedBytes(path: string, bytes: number): void;
  warn(message: string, context?: Record<string, unknown>): void;
}
