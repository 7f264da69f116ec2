import { type FileHandle, open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import { type DocumentContext, documentContext } from '../encode/document.ts';
import { errorMessage } from '../errors.ts';
import type {
  Budget,
  Enricher,
  FileMetadata,
  Format,
  FormatOption,
  Sink,
  SourceEvents,
  SourceFile,
} from '../pipeline/types.ts';
import type { Transforms } from '../transform/types.ts';
import { type FileWork, type FileWorkFactory, localFileWork } from '../worker/file-work.ts';
import { AckTracker, type ContinuationState } from './ack-tracker.ts';
import { type CheckpointEntry, entryKey, loadPositions, savePositions } from './checkpointer.ts';
import { expandPatterns, globBase, type Match } from './discovery.ts';
import { FINGERPRINT_WINDOW, type Fingerprint, fileId, fingerprintFile } from './fingerprint.ts';
import { gzFingerprint, gzUncompressedSize, recoverGz } from './gz-recovery.ts';

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

type FileState = 'active' | 'parked' | 'gone' | 'closing';

/** A reader's chunk buffer; processing in a worker thread hands back a (transferred) buffer. */
interface Reader {
  buf: Buffer;
}

interface Tracked {
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

/**
 * The tail engine: finds files (globs + notifications + periodic scans), follows each by identity
 * across rotation and truncation, reads them in chunks within the byte budget, hands batches to
 * the sink and turns acknowledgements into checkpoints.
 */
export class Tailer {
  readonly #opts: TailerOptions;
  readonly #deps: TailerDeps;
  readonly #files = new Map<string, Tracked>();
  readonly #byPath = new Map<string, string>();
  #known = new Map<string, CheckpointEntry>();
  readonly #opening = new Set<string>();
  /** files enrichment said not to follow, by key: skipped by scans until `reevaluate()` */
  readonly #excluded = new Set<string>();
  /** gzipped rotated files already looked at (by key), and recoveries from them under way */
  readonly #gzSeen = new Set<string>();
  #recovering = 0;
  #gzChain: Promise<void> = Promise.resolve();
  /** new files waiting for their id to be saved before they are read */
  #unsaved: Tracked[] = [];
  readonly #warnedPaths = new Set<string>();
  readonly #queue: Tracked[] = [];
  #wake: Array<() => void> = [];
  #workers: Promise<void>[] = [];
  #timers: NodeJS.Timeout[] = [];
  /** throttled files' resume timers (pause mode): cleared on stop, or they would hold the exit */
  readonly #pauseTimers = new Set<NodeJS.Timeout>();
  #watcher: FSWatcher | undefined;
  readonly #work: FileWorkFactory;
  #stopped = false;
  #dirty = false;
  /** positions from an earlier run were loaded */
  #resumed = false;
  #saveFailing = false;
  #openFds = 0;
  #scanning: Promise<void> | undefined;
  #scanAgain = false;
  #saving: Promise<void> | undefined;
  #idleResolvers: Array<() => void> = [];

  constructor(opts: TailerOptions, deps: TailerDeps) {
    this.#opts = opts;
    this.#deps = deps;
    this.#work = deps.work ?? localFileWork(deps.events, deps.transforms);
  }

  /** Loads checkpoints, opens the files that exist now and starts reading and watching. */
  async start(): Promise<void> {
    if (this.#opts.positionsFile !== undefined) {
      const loaded = await loadPositions(this.#opts.positionsFile);
      this.#known = loaded.entries;
      this.#resumed = loaded.entries.size > 0;
      if (loaded.warning !== undefined) this.#deps.events.warn(loaded.warning);
    }
    for (let i = 0; i < this.#opts.readers; i++) {
      // own ArrayBuffers: a worker thread takes a chunk's buffer over (transfer) and gives it back
      this.#workers.push(this.#worker({ buf: Buffer.allocUnsafeSlow(this.#opts.readChunkBytes) }));
    }
    await this.#scan(true);
    if (this.#opts.once) return;
    this.#timers.push(setInterval(() => void this.#poll(), this.#opts.pollIntervalMs));
    this.#timers.push(setInterval(() => this.scanSoon(), this.#opts.scanIntervalMs));
    if (this.#opts.positionsFile !== undefined) {
      this.#timers.push(setInterval(() => void this.saveCheckpoints(), this.#opts.checkpointIntervalMs));
    }
    // the poll timer stays referenced: it is what keeps a follow-mode process alive
    for (const t of this.#timers.slice(1)) t.unref();
    if (this.#opts.watch) this.#startWatcher();
  }

  /** Once mode: resolves when every file found at start has been read to its end. */
  whenIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleResolvers.push(resolve));
  }

  /** Stops reading (in-flight reads finish); batches already handed to the sink stay there. */
  async stopReading(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    for (const t of this.#pauseTimers) clearTimeout(t);
    this.#pauseTimers.clear();
    const wake = this.#wake;
    this.#wake = [];
    for (const w of wake) w();
    await Promise.all(this.#workers);
    await this.#watcher?.close();
    await this.#scanning;
  }

  /** Closes every file. Call after the sink has flushed and checkpoints are saved. */
  async close(): Promise<void> {
    await this.stopReading();
    for (const f of this.#files.values()) await this.#closeFd(f);
  }

  status(): FileStatus[] {
    return [...this.#files.values()].map((f) => ({
      path: f.source.path,
      state: f.state,
      committed: f.tracker.committed,
      readPos: f.readPos,
      size: f.size,
      lag: Math.max(0, f.size - f.readPos),
      pendingBatches: f.tracker.pending,
    }));
  }

  /** Writes the positions file if anything moved since the last write. */
  async saveCheckpoints(force = false): Promise<void> {
    const file = this.#opts.positionsFile;
    if (file === undefined) return;
    if (this.#saving !== undefined) {
      await this.#saving;
      if (!force && !this.#dirty) return;
    }
    if (!force && !this.#dirty) return;
    this.#dirty = false;
    await this.#refreshFingerprints();
    const entries = this.#entries();
    this.#saving = savePositions(file, entries)
      .then(() => {
        if (this.#saveFailing) this.#deps.events.warn(`positions saved to ${file} again`);
        this.#saveFailing = false;
      })
      .catch((err) => {
        // shipping goes on; the next interval tries again. Said once, not every second.
        this.#dirty = true;
        if (!this.#saveFailing) {
          this.#deps.events.warn(
            `cannot save positions to ${file}: ${errorMessage(err)}; shipping goes on, retrying every ${this.#opts.checkpointIntervalMs} ms (a restart now would re-send what came after the last saved positions)`,
          );
        }
        this.#saveFailing = true;
      })
      .finally(() => {
        this.#saving = undefined;
      });
    await this.#saving;
  }

  /**
   * A file first seen shorter than the fingerprint window is recognised later by fewer bytes; once
   * it has grown, widen the stored fingerprint so that inode reuse is told apart reliably.
   */
  async #refreshFingerprints(): Promise<void> {
    for (const f of this.#files.values()) {
      if (f.fh === undefined || f.verify.fingerprintBytes >= FINGERPRINT_WINDOW) continue;
      if (f.size <= f.verify.fingerprintBytes) continue;
      try {
        f.verify = await fingerprintFile(f.fh);
      } catch {
        // keep the narrower fingerprint; it still matches this file
      }
    }
  }

  #entries(): CheckpointEntry[] {
    const now = Date.now();
    const out: CheckpointEntry[] = [];
    for (const [key, e] of this.#known) {
      if (this.#files.has(key)) continue;
      if (now - e.seenMs > this.#opts.forgetAfterMs) {
        this.#known.delete(key);
        continue;
      }
      out.push(e);
    }
    for (const f of this.#files.values()) out.push(this.#entryOf(f, now));
    return out;
  }

  #entryOf(f: Tracked, now: number): CheckpointEntry {
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

  // --- discovery ---------------------------------------------------------------------------

  scanSoon(): void {
    if (this.#stopped) return;
    if (this.#scanning !== undefined) {
      this.#scanAgain = true;
      return;
    }
    this.#scanning = this.#scan(false).finally(() => {
      this.#scanning = undefined;
      if (this.#scanAgain) {
        this.#scanAgain = false;
        this.scanSoon();
      }
    });
  }

  async #scan(initial: boolean): Promise<void> {
    let matches: Match[];
    try {
      matches = await expandPatterns(this.#opts.patterns, (path) => {
        // a path whose file is followed and still there: the poll notices if it is replaced
        const key = this.#byPath.get(path);
        const f = key === undefined ? undefined : this.#files.get(key);
        return f !== undefined && f.state === 'active' && f.fh !== undefined;
      });
    } catch (err) {
      this.#deps.events.warn(`scan failed: ${errorMessage(err)}`);
      return;
    }
    const now = Date.now();
    for (const m of matches) {
      if (this.#stopped && !initial) return;
      const key = entryKey(m.dev, m.ino);
      const known = this.#known.get(key);
      if (known !== undefined) known.seenMs = now;
      const f = this.#files.get(key);
      if (f !== undefined) {
        if (f.state === 'parked' && m.size > f.seen) await this.#reopen(f);
        continue;
      }
      if (this.#opening.has(key) || this.#excluded.has(key)) continue;
      if (m.path.endsWith('.gz')) {
        await this.#lookAtGz(m.path, key);
        continue;
      }
      if (this.#opts.skipPath?.(m.path)) continue;
      this.#opening.add(key);
      try {
        await this.#open(m, initial);
      } finally {
        this.#opening.delete(key);
      }
    }
    if (this.#unsaved.length > 0) {
      const files = this.#unsaved;
      this.#unsaved = [];
      await this.saveCheckpoints(true);
      for (const f of files) if (this.#files.get(f.key) === f) this.#begin(f);
    }
    this.#checkIdle();
  }

  /**
   * A gzipped file is never followed. It is read only when it is a file we were reading when we
   * stopped, rotated and compressed by kubelet meanwhile: recognised by the fingerprint of its
   * decompressed first bytes, it is read from the checkpoint's offset to its end.
   */
  async #lookAtGz(path: string, key: string): Promise<void> {
    if (this.#gzSeen.has(key)) return;
    this.#gzSeen.add(key);
    // A gzipped file is one kubelet rotated in its own directory, and a fingerprint of no bytes
    // (a file checkpointed while still empty) matches anything: such an entry once claimed another
    // file's .gz, re-sending its lines under the wrong id and, where offsets coincided, taking the
    // ids of lines of its own (chaos run, seed 32). Among the rest, the longest fingerprint wins.
    const dir = dirname(path);
    const candidates = [...this.#known.entries()]
      .filter(([k, e]) => !this.#files.has(k) && e.fingerprintBytes > 0 && dirname(e.path) === dir)
      .map(([, e]) => e)
      .sort((a, b) => b.fingerprintBytes - a.fingerprintBytes);
    if (candidates.length === 0) return;
    const prints = new Map<number, string>();
    let match: CheckpointEntry | undefined;
    try {
      for (const e of candidates) {
        if (!prints.has(e.fingerprintBytes)) {
          const fp = await gzFingerprint(path, e.fingerprintBytes);
          prints.set(e.fingerprintBytes, fp.fingerprintBytes === e.fingerprintBytes ? fp.fingerprint : '');
        }
        if (prints.get(e.fingerprintBytes) === e.fingerprint) {
          match = e;
          break;
        }
      }
    } catch (err) {
      // still being written (gzip in progress) or damaged: looked at again at the next scan
      this.#gzSeen.delete(key);
      this.#warnOnce(path, `cannot read ${path} yet: ${errorMessage(err)}; trying again at the next scan`);
      return;
    }
    if (match === undefined) return;
    const entry = match;
    // gzip's trailer holds the uncompressed size (mod 4 GiB): a file read to its end needs no pass
    const size = await gzUncompressedSize(path);
    if (size !== undefined && size < 2 ** 32 - 1 && entry.offset >= size) return;
    this.#recovering++;
    // one recovery at a time: each holds a read buffer and a decompressor, and a node can have
    // hundreds of rotated files after a long outage
    this.#gzChain = this.#gzChain.then(() => this.#recover(path, entry));
  }

  async #recover(path: string, entry: CheckpointEntry): Promise<void> {
    if (this.#stopped) {
      this.#recovering--;
      this.#checkIdle();
      return;
    }
    this.#deps.events.warn(
      `${path}: a file rotated and compressed while logferry was stopped; reading it from offset ${entry.offset}`,
    );
    await recoverGz(path, entry, {
      budget: this.#deps.budget,
      sink: this.#deps.sink,
      events: this.#deps.events,
      enricher: this.#deps.enricher,
      transforms: this.#deps.transforms,
      format: this.#opts.format,
      maxLineBytes: this.#opts.maxLineBytes,
      readChunkBytes: this.#opts.readChunkBytes,
      hostName: this.#opts.hostName,
      onCommitted: (e) => {
        e.seenMs = Date.now();
        this.#dirty = true;
      },
      stopped: () => this.#stopped,
    })
      .catch((err) => this.#deps.events.warn(`reading ${path} failed: ${errorMessage(err)}`))
      .finally(() => {
        this.#recovering--;
        this.#checkIdle();
      });
  }

  async #open(m: Match, initial: boolean): Promise<void> {
    if (!this.#reserveFd()) {
      this.#warnOnce(
        m.path,
        `max open files (${this.#opts.maxOpenFiles}) reached; ${m.path} waits for a free slot`,
      );
      return;
    }
    let fh: FileHandle;
    try {
      fh = await open(m.path, 'r');
    } catch (err) {
      this.#openFds--;
      this.#warnOnce(m.path, `cannot open ${m.path}: ${errorMessage(err)}; will retry`);
      return;
    }
    try {
      const st = await fh.stat();
      if (st.dev !== m.dev || st.ino !== m.ino || !st.isFile()) {
        // replaced between the scan and the open: the next scan sees the new file
        await fh.close();
        this.#openFds--;
        return;
      }
      const key = entryKey(m.dev, m.ino);
      const fp = await fingerprintFile(fh);
      const known = this.#known.get(key);
      let start = 0;
      let id = fileId(m.dev, m.ino, m.birthMs, fp);
      let format = undefined as CheckpointEntry['format'];
      let continuation: ContinuationState | undefined;
      const sameInode = known !== undefined && !(known.birthMs && m.birthMs && known.birthMs !== m.birthMs);
      const isNew = !(sameInode && known !== undefined && (await this.#matches(fh, fp, known)));
      if (!isNew && known !== undefined) {
        id = known.id;
        format = known.format;
        if (st.size >= known.offset) {
          start = known.offset;
          continuation = known.continuation;
        }
      } else if (initial && this.#opts.startAtEnd && known === undefined && !this.#resumed) {
        // tail -F on a first run only: once positions exist, a file we do not know (or one that
        // reuses the inode of a file we knew) appeared while we were stopped and is read whole.
        // "The end" is where the file ended when the scan found it: lines written between then and
        // this open are new, not history (a slow start, e.g. a worker thread starting up, made
        // them vanish).
        start = await this.#lastLineEnd(fh, Math.min(st.size, m.size));
      }
      this.#known.delete(key);
      const source: SourceFile = {
        key,
        path: m.path,
        identity: { dev: m.dev, ino: m.ino, id },
      };
      const f: Tracked = {
        key,
        source,
        fh,
        readPos: start,
        seen: start,
        size: st.size,
        work: this.#work.create({
          path: m.path,
          ctx: this.#context(source, ''),
          opts: { format: this.#opts.format, maxLineBytes: this.#opts.maxLineBytes },
          resume: { format, continuation },
        }),
        tracker: undefined as unknown as AckTracker,
        held: 0,
        verify: fp,
        birthMs: m.birthMs,
        state: 'active',
        deleted: false,
        goneSinceMs: 0,
        lastGrowthMs: Date.now(),
        queued: false,
        busy: false,
        again: false,
        truncated: false,
        finalizing: false,
        eof: false,
        describing: false,
        ready: false,
        metaComplete: this.#deps.enricher === undefined,
        lastDescribeMs: 0,
        meta: undefined,
        flushDue: false,
        pausedUntil: 0,
      };
      f.tracker = this.#newTracker(f, start, continuation);
      this.#files.set(key, f);
      this.#byPath.set(m.path, key);
      this.#dirty = true;
      this.#deps.events.fileOpened(m.path);
      // A new file's id must be in the positions file before any document carrying it is sent: a
      // crash before the first save would otherwise give the file another id on restart (its
      // fingerprint covers more bytes by then) and re-send its documents under new ids.
      if (isNew && this.#opts.positionsFile !== undefined) this.#unsaved.push(f);
      else this.#begin(f);
    } catch (err) {
      await fh.close().catch(() => {});
      this.#openFds--;
      this.#warnOnce(m.path, `cannot read ${m.path}: ${errorMessage(err)}; will retry`);
    }
  }

  #begin(f: Tracked): void {
    if (this.#deps.enricher !== undefined) {
      void this.#describe(f);
      return;
    }
    f.ready = true;
    this.#enqueue(f);
  }

  /**
   * Asks enrichment about a file; the file is read only after the first answer (which may wait a
   * bounded time for its pod). A provisional answer is asked again, without waiting, as it reads.
   */
  async #describe(f: Tracked): Promise<void> {
    if (f.describing) return;
    f.describing = true;
    f.lastDescribeMs = Date.now();
    let meta: FileMetadata | undefined;
    try {
      meta = await this.#deps.enricher!.describe(f.source);
    } catch (err) {
      this.#warnOnce(`describe:${f.key}`, `metadata for ${f.source.path} failed: ${errorMessage(err)}`);
    } finally {
      f.describing = false;
    }
    if (this.#files.get(f.key) !== f || f.state === 'closing') return;
    if (meta?.exclude) {
      this.#excluded.add(f.key);
      f.state = 'closing';
      f.finalizing = true;
      this.#maybeRelease(f);
      this.#checkIdle();
      return;
    }
    if (meta !== undefined) {
      f.meta = meta;
      f.source.fields = meta.fields;
      f.work.setContext(this.#context(f.source, meta.fragment));
      if (meta.parser !== undefined && this.#opts.format === 'auto' && isFormat(meta.parser)) {
        f.work.setFormat(meta.parser);
      }
      // a later answer (the pod became known) may bring annotations: the processor keeps a
      // multiline group in progress
      f.work.setMeta(meta);
    }
    f.metaComplete = meta?.complete ?? false;
    f.ready = true;
    this.#enqueue(f);
  }

  /** Config reloaded: ask enrichment again about every file, and about files it had excluded. */
  reevaluate(): void {
    this.#excluded.clear();
    for (const f of this.#files.values()) {
      if (f.state !== 'closing' && f.fh !== undefined) void this.#describe(f);
    }
    this.scanSoon();
  }

  async #matches(fh: FileHandle, fp: Fingerprint, known: CheckpointEntry): Promise<boolean> {
    if (known.fingerprintBytes === fp.fingerprintBytes) return known.fingerprint === fp.fingerprint;
    if (known.fingerprintBytes > fp.fingerprintBytes) return false;
    const shorter = await fingerprintFile(fh, known.fingerprintBytes);
    return shorter.fingerprintBytes === known.fingerprintBytes && shorter.fingerprint === known.fingerprint;
  }

  /** Start of tail -F reading: just after the last newline, so a half-written line is not cut. */
  /** How the file's documents are written: its path, the pod's members, the sink's action line. */
  #context(source: SourceFile, fragment: string): DocumentContext {
    return documentContext(
      source.path,
      this.#opts.hostName,
      fragment,
      this.#deps.transforms?.fields,
      this.#deps.sink.frame?.(source),
    );
  }

  async #lastLineEnd(fh: FileHandle, size: number): Promise<number> {
    if (size === 0) return 0;
    const window = Math.min(size, 64 * 1024);
    const buf = Buffer.allocUnsafe(window);
    const { bytesRead } = await fh.read(buf, 0, window, size - window);
    const i = buf.subarray(0, bytesRead).lastIndexOf(10);
    if (i >= 0) return size - window + i + 1;
    return window === size ? 0 : size;
  }

  #newTracker(f: Tracked, start: number, continuation: ContinuationState | undefined): AckTracker {
    const tracker: AckTracker = new AckTracker(start, continuation, () => {
      if (f.tracker === tracker) this.#dirty = true;
    });
    return tracker;
  }

  #reserveFd(): boolean {
    if (this.#openFds < this.#opts.maxOpenFiles) {
      this.#openFds++;
      return true;
    }
    // park the file that has been quiet longest: fully read, nothing in flight, still at its path
    let victim: Tracked | undefined;
    for (const f of this.#files.values()) {
      if (f.state !== 'active' || f.fh === undefined || f.busy || f.queued || f.seen < f.size) continue;
      if (victim === undefined || f.lastGrowthMs < victim.lastGrowthMs) victim = f;
    }
    if (victim === undefined) return false;
    victim.state = 'parked';
    void this.#closeFd(victim);
    this.#openFds++;
    return true;
  }

  async #reopen(f: Tracked): Promise<void> {
    if (!this.#reserveFd()) return;
    try {
      const fh = await open(f.source.path, 'r');
      const st = await fh.stat();
      if (st.dev !== f.source.identity.dev || st.ino !== f.source.identity.ino) {
        await fh.close();
        this.#openFds--;
        this.#finishParked(f);
        return;
      }
      f.fh = fh;
      f.state = 'active';
      f.size = st.size;
      this.#enqueue(f);
    } catch {
      this.#openFds--;
      this.#finishParked(f);
    }
  }

  /** A parked file left its path: what it had not been read is lost to us; say so. */
  #finishParked(f: Tracked): void {
    this.#deps.events.warn(`parked file ${f.source.path} was rotated away before it could be reopened`);
    f.state = 'closing';
    this.#maybeRelease(f);
  }

  async #closeFd(f: Tracked): Promise<void> {
    const fh = f.fh;
    if (fh === undefined) return;
    f.fh = undefined;
    this.#openFds--;
    await fh.close().catch(() => {});
  }

  #warnOnce(path: string, message: string): void {
    if (this.#warnedPaths.has(path)) return;
    this.#warnedPaths.add(path);
    this.#deps.events.warn(message);
  }

  #startWatcher(): void {
    const bases = [...new Set(this.#opts.patterns.map(globBase))];
    const watcher = watch(bases, { ignoreInitial: true, persistent: false });
    watcher.on('add', () => this.scanSoon());
    watcher.on('addDir', () => this.scanSoon());
    watcher.on('change', (path) => {
      const key = this.#byPath.get(path);
      const f = key === undefined ? undefined : this.#files.get(key);
      if (f !== undefined && f.fh !== undefined) this.#enqueue(f);
      else this.scanSoon();
    });
    watcher.on('unlink', () => void this.#poll());
    watcher.on('error', (err) => this.#deps.events.warn(`file watcher: ${errorMessage(err)}`));
    this.#watcher = watcher;
  }

  // --- polling: growth, truncation, rotation ----------------------------------------------------

  #polling = false;
  #polls = 0;

  async #poll(): Promise<void> {
    if (this.#polling || this.#stopped) return;
    this.#polling = true;
    try {
      const now = Date.now();
      let rescan = false;
      // files quiet for a while are looked at every QUIET_POLLS-th poll: notifications still bring
      // their growth at once, and an idle node with hundreds of files stays cheap
      const everyFile = ++this.#polls % QUIET_POLLS === 0 || !this.#opts.watch;
      for (const f of [...this.#files.values()]) {
        if (this.#stopped) return;
        if (f.state === 'closing') continue;
        if (
          !everyFile &&
          f.state === 'active' &&
          now - f.lastGrowthMs > QUIET_MS &&
          !f.work.hasPendingGroups
        ) {
          continue;
        }
        if (f.state === 'parked') {
          if (await this.#movedAway(f)) this.#finishParked(f);
          continue;
        }
        const fh = f.fh;
        if (fh === undefined) continue;
        let size: number;
        let nlink: number;
        try {
          const st = await fh.stat();
          size = st.size;
          nlink = st.nlink;
        } catch {
          continue;
        }
        if (size < f.readPos) {
          f.truncated = true;
          this.#enqueue(f);
        } else if (size > f.seen) {
          f.size = size;
          f.lastGrowthMs = now;
          this.#enqueue(f);
        }
        if (f.state === 'active') {
          const moved = await this.#movedAway(f);
          if (moved) {
            f.state = 'gone';
            f.deleted = nlink === 0;
            f.goneSinceMs = now;
            this.#deps.events.rotated(f.source.path, f.deleted ? 'delete' : 'rename');
            rescan = true;
          }
        }
        if (f.state === 'gone') this.#checkGone(f, size, now);
        const flushMs = this.#deps.transforms?.flushMs;
        if (flushMs !== undefined && f.work.hasPendingGroups && now - f.lastGrowthMs >= flushMs) {
          f.flushDue = true;
          this.#enqueue(f);
        }
      }
      if (rescan) this.scanSoon();
    } finally {
      this.#polling = false;
    }
  }

  async #movedAway(f: Tracked): Promise<boolean> {
    try {
      const st = await stat(f.source.path);
      return st.dev !== f.source.identity.dev || st.ino !== f.source.identity.ino;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT';
    }
  }

  #checkGone(f: Tracked, size: number, now: number): void {
    if (f.busy || f.queued || f.finalizing) return;
    if (f.seen >= size && now - Math.max(f.goneSinceMs, f.lastGrowthMs) >= this.#opts.rotateGraceMs) {
      f.finalizing = true;
      this.#enqueue(f);
      return;
    }
    if (f.deleted && now - f.goneSinceMs >= this.#opts.deletedMaxMs && size > f.seen) {
      const skipped = size - f.seen;
      this.#deps.events.skippedBytes(f.source.path, skipped);
      this.#deps.events.warn(
        `released deleted file ${f.source.path} after ${this.#opts.deletedMaxMs} ms with ${skipped} bytes unread`,
        { path: f.source.path, skippedBytes: skipped },
      );
      f.finalizing = true;
      f.state = 'closing';
      this.#maybeRelease(f);
    }
  }

  // --- reading ----------------------------------------------------------------------------------

  #enqueue(f: Tracked): void {
    if (f.queued || this.#stopped || f.state === 'closing') return;
    // not read before enrichment's first answer, nor while throttled (a timer enqueues it)
    if (!f.ready || f.pausedUntil > Date.now()) return;
    f.queued = true;
    this.#queue.push(f);
    const w = this.#wake.pop();
    if (w !== undefined) w();
  }

  async #worker(reader: Reader): Promise<void> {
    while (!this.#stopped) {
      const f = this.#queue.shift();
      if (f === undefined) {
        this.#checkIdle();
        await new Promise<void>((resolve) => this.#wake.push(resolve));
        continue;
      }
      f.queued = false;
      if (f.busy) {
        // another reader has it (a file is read by one reader at a time, in order): it reads again
        f.again = true;
        continue;
      }
      f.busy = true;
      let more = false;
      try {
        await this.#deps.budget.waitForRoom();
        if (!this.#stopped) more = await this.#step(f, reader);
      } catch (err) {
        // a buffer handed to a worker thread that failed is gone: read into a new one
        if (reader.buf.length === 0) reader.buf = Buffer.allocUnsafeSlow(this.#opts.readChunkBytes);
        this.#readFailed(f, err);
      } finally {
        f.busy = false;
      }
      if (more || f.again) {
        f.again = false;
        this.#enqueue(f);
      } else this.#checkIdle();
    }
  }

  /** A failed read is logged once per file and retried after a pause, never given up on. */
  #readFailed(f: Tracked, err: unknown): void {
    this.#warnOnce(
      `read:${f.key}`,
      `read error on ${f.source.path}: ${errorMessage(err)}; retrying every second`,
    );
    setTimeout(() => this.#enqueue(f), 1000);
  }

  /** One read of one file. Returns true when the file likely has more to read right away. */
  async #step(f: Tracked, reader: Reader): Promise<boolean> {
    const buf = reader.buf;
    const fh = f.fh;
    if (fh === undefined || f.state === 'closing') return false;
    if (f.truncated) this.#restartFromZero(f);
    if (!f.metaComplete && !f.describing && Date.now() - f.lastDescribeMs >= 1000) void this.#describe(f);
    const { bytesRead } = await fh.read(buf, 0, buf.length, f.readPos);
    const end = f.readPos + bytesRead;
    if (end > f.seen) {
      this.#deps.events.bytesRead(end - f.seen);
      f.seen = end;
      f.lastGrowthMs = Date.now();
    }
    if (end > f.size) f.size = end;
    const full = bytesRead === buf.length;
    const final = f.finalizing && !full;
    // pending multiline groups go out after the file was silent for the flush interval, and in
    // once mode at the end of the file (it is read to its current end, nothing waits for more)
    const flushGroups = (f.flushDue && bytesRead === 0) || (this.#opts.once && !full);
    f.flushDue = false;
    const res = await f.work.process(buf, bytesRead, f.readPos, final, flushGroups);
    reader.buf = res.buffer;
    // The budget counts what waits in memory: the body's whole allocation (encoded documents, several
    // times the bytes read once pod metadata is added; the encoder sizes it ahead and copies it out
    // exactly when over a quarter is unused), released as each batch is acknowledged.
    const cost = res.body.length === 0 ? 0 : res.body.buffer.byteLength;
    this.#deps.budget.acquire(cost);
    f.held += cost;
    f.readPos += res.consumed;
    if (final) f.seen = f.readPos;
    const tracker = f.tracker;
    const entry = tracker.add(res.safeEnd, res.continuation);
    // the body's memory goes back to the thread that wrote it (this file's work, even if reopened)
    const work = f.work;
    if (res.ends.length === 0) {
      tracker.ack(entry);
    } else {
      this.#deps.sink.write({
        file: f.source,
        body: res.body,
        ends: res.ends,
        offsets: res.offsets,
        framed: res.framed,
        ack: () => {
          work.recycle(res.body);
          if (f.tracker === tracker) {
            f.held -= cost;
            this.#deps.budget.release(cost);
          }
          tracker.ack(entry);
          if (f.state === 'closing') this.#maybeRelease(f);
        },
      });
    }
    if (final) {
      f.state = 'closing';
      this.#maybeRelease(f);
      return false;
    }
    if (!full) f.eof = true;
    const transforms = this.#deps.transforms;
    if (transforms !== undefined && res.consumed > 0) {
      const wait = transforms.pauseAfter(f.source.path, f.meta, res.ends.length, res.consumed);
      if (wait > 0) {
        f.pausedUntil = Date.now() + wait;
        const timer = setTimeout(() => {
          this.#pauseTimers.delete(timer);
          f.pausedUntil = 0;
          this.#enqueue(f);
        }, wait);
        this.#pauseTimers.add(timer);
        return false;
      }
    }
    return full;
  }

  /** copytruncate: the file shrank below what we read; read it again from its start. */
  #restartFromZero(f: Tracked): void {
    f.truncated = false;
    this.#deps.events.rotated(f.source.path, 'truncate');
    this.#deps.budget.release(f.held);
    f.held = 0;
    f.tracker = this.#newTracker(f, 0, undefined);
    f.work.reset();
    f.readPos = 0;
    f.seen = 0;
    this.#dirty = true;
  }

  /** A closing file is released once everything read from it is acknowledged. */
  #maybeRelease(f: Tracked): void {
    if (f.state !== 'closing' || f.tracker.pending > 0 || this.#files.get(f.key) !== f) return;
    this.#files.delete(f.key);
    if (this.#byPath.get(f.source.path) === f.key) this.#byPath.delete(f.source.path);
    // remembered so that a rotated file that still matches a pattern is not read again from 0
    this.#known.set(f.key, this.#entryOf(f, Date.now()));
    this.#deps.budget.release(f.held);
    f.held = 0;
    this.#dirty = true;
    f.work.close();
    void this.#closeFd(f);
    this.#deps.events.fileClosed(f.source.path);
  }

  #isIdle(): boolean {
    if (this.#queue.length > 0 || this.#scanning !== undefined || this.#recovering > 0) return false;
    for (const f of this.#files.values()) {
      if (f.busy || f.queued) return false;
      if (this.#opts.once && !f.eof && f.state === 'active') return false;
    }
    return true;
  }

  #checkIdle(): void {
    if (this.#idleResolvers.length === 0 || !this.#isIdle()) return;
    const rs = this.#idleResolvers;
    this.#idleResolvers = [];
    for (const r of rs) r();
  }
}

const FORMATS: readonly string[] = ['cri', 'docker', 'json', 'text'];

/** A followed file that has not grown for this long is polled only every QUIET_POLLS-th time. */
const QUIET_MS = 10_000;
const QUIET_POLLS = 40;

function isFormat(name: string): name is Format {
  return FORMATS.includes(name);
}
