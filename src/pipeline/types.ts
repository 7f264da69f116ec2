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
  /** the file id (`identity.id`) it was first followed under: unique among every file known */
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
 * One batch of documents from one file, in file order, pre-serialized as NDJSON: one Buffer holds
 * every document followed by '\n' (compact, off the JS heap, written or copied into a bulk body as
 * is). Document i spans `body[ends[i-1] ?? 0, ends[i])` including its '\n', and its `log.offset`
 * is `offsets[i]`.
 */
export interface RecordBatch {
  file: SourceFile;
  body: Buffer;
  ends: number[];
  offsets: number[];
  /**
   * Each document follows the line the sink asked for (`Sink.frame`): `ends` delimit the line and
   * the document together.
   */
  framed?: boolean | undefined;
  /**
   * Called by the sink exactly once, when every document of the batch is delivered or
   * dead-lettered. Never called for documents that were not.
   */
  ack(): void;
}

/**
 * A line written before every document of a file (see Sink.frame). With `withOffset`, `head` is the
 * line up to the record's byte offset, and the offset's digits and `ACTION_ID_END` complete it (a
 * document id of the file's id and the offset); without, `head` is the whole line, newline included.
 */
export interface DocumentAction {
  head: string;
  withOffset: boolean;
}

/** A sink accepts batches and acknowledges them when they are delivered. */
export interface Sink {
  /** Hand over a batch. The sink owns it until it calls `batch.ack()`. */
  write(batch: RecordBatch): void;
  /**
   * The line to write before each document of the file, if the sink wants one (Elasticsearch: the
   * bulk action line); asked again when the file's fields change. The encoder then builds it with
   * the document, in the records worker, and the batch is marked `framed`.
   */
  frame?(file: SourceFile): DocumentAction | undefined;
  /** Resolves once every batch written so far has been acknowledged. */
  flush(): Promise<void>;
  /** Stops accepting batches; resolves after flushing or when `deadline` (ms since epoch) passes. */
  close(deadline?: number): Promise<void>;
}

/** What enrichment says about one file. */
export interface FileMetadata {
  /** do not follow this file (exclude annotations, include/exclude rules) */
  exclude: boolean;
  /**
   * Members added to every document of the file: '' or a JSON text starting with ',' (e.g.
   * `,"kubernetes":{...}`), serialized once per file rather than once per line.
   */
  fragment: string;
  /** per-file string fields by dotted name, for index name templates */
  fields: Readonly<Record<string, string>>;
  /**
   * The `logferry.io/parser` annotation: a file format (cri, docker, text) or a message parser
   * (json, logfmt, none, a custom parser's name)
   */
  parser?: string | undefined;
  /** the `logferry.io/multiline` annotation: a multiline rule's name */
  multiline?: string | undefined;
  /** false when the metadata is provisional (the pod was not known yet): ask again later */
  complete: boolean;
}

/**
 * Per-file enrichment (Kubernetes pod metadata). `describe` may wait a bounded time for metadata
 * that is not known yet; the tail engine does not read a file before its first answer.
 */
export interface Enricher {
  describe(file: SourceFile): Promise<FileMetadata>;
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
  /** records dropped by a filter */
  recordsFiltered(n: number): void;
  /** messages cut to the record-size limit */
  recordsTruncated(n: number): void;
  fileOpened(path: string): void;
  fileClosed(path: string): void;
  rotated(path: string, kind: 'rename' | 'truncate' | 'delete'): void;
  /** unread bytes given up when a deleted file was released before being drained */
  skippedBytes(path: string, bytes: number): void;
  /**
   * a matched file could not be opened or read (code: the errno code such as EACCES); called once
   * each time a file becomes unreadable, not at every retry
   */
  fileUnreadable(path: string, code: string): void;
  warn(message: string, context?: Record<string, unknown>): void;
}
