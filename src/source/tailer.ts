import { type FSWatcher, watch } from 'chokidar';
import { type DocumentContext, documentContext } from '../encode/document.ts';
import { errorMessage } from '../errors.ts';
import type { SourceFile } from '../pipeline/types.ts';
import { type FileWorkFactory, localFileWork } from '../worker/file-work.ts';
import { AckTracker, type ContinuationState } from './ack-tracker.ts';
import { loadPositions, savePositions } from './checkpointer.ts';
import { expandPatterns, globBase, type Match } from './discovery.ts';
import { begin, describe } from './enrichment.ts';
import { type Reader, readStep } from './file-reader.ts';
import { FINGERPRINT_WINDOW, fingerprintFile } from './fingerprint.ts';
import { GzRecoveries } from './gz-recovery.ts';
import { type Opened, openFile } from './opener.ts';
import { FileRegistry } from './registry.ts';
import { Rotation } from './rotation.ts';
import type { TailerDeps, TailerOptions } from './tail-options.ts';
import { entryOf, type FileStatus, type TailContext, type Tracked } from './tracked.ts';

export type { TailerDeps, TailerOptions } from './tail-options.ts';
export type { FileStatus } from './tracked.ts';

/**
 * The tail engine: finds files (globs + notifications + periodic scans), follows each by identity
 * across rotation and truncation, reads them in chunks within the byte budget, hands batches to
 * the sink and turns acknowledgements into checkpoints. The jobs live next to it: registry.ts
 * (identities and checkpoints), opener.ts (who a found file is), file-reader.ts (one read, bytes to
 * batch), rotation.ts (polling, rotation, parking, release), gz-recovery.ts.
 */
export class Tailer {
  readonly #opts: TailerOptions;
  readonly #deps: TailerDeps;
  readonly #registry = new FileRegistry();
  readonly #ctx: TailContext;
  readonly #rotation: Rotation;
  readonly #opening = new Set<string>();
  readonly #gz: GzRecoveries;
  /** new files waiting for their id to be saved before they are read */
  #unsaved: Tracked[] = [];
  readonly #warned = new Set<string>();
  readonly #unreadable = new Set<string>();
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
  #previousSaveMs: number | undefined;
  /** saved with the positions: when the newest run whose first scan completed started it */
  #scannedMs: number | undefined;
  #saveFailing = false;
  #scanning: Promise<void> | undefined;
  #scanAgain = false;
  #saving: Promise<void> | undefined;
  #idleResolvers: Array<() => void> = [];

  constructor(opts: TailerOptions, deps: TailerDeps) {
    this.#opts = opts;
    this.#deps = deps;
    this.#work = deps.work ?? localFileWork(deps.events, deps.transforms);
    this.#ctx = this.#context();
    this.#rotation = new Rotation(this.#ctx);
    this.#gz = new GzRecoveries(this.#ctx);
  }

  /** Loads checkpoints, opens the files that exist now and starts reading and watching. */
  async start(): Promise<void> {
    if (this.#opts.positionsFile !== undefined) {
      const loaded = await loadPositions(this.#opts.positionsFile);
      this.#registry.load(loaded.entries.values());
      this.#resumed = loaded.entries.size > 0;
      this.#previousSaveMs = loaded.savedMs;
      this.#scannedMs = loaded.savedMs;
      if (loaded.warning !== undefined) this.#deps.events.warn(loaded.warning);
    }
    for (let i = 0; i < this.#opts.readers; i++) {
      // own ArrayBuffers: a worker thread takes a chunk's buffer over (transfer) and gives it back
      this.#workers.push(this.#reader({ buf: Buffer.allocUnsafeSlow(this.#opts.readChunkBytes) }));
    }
    const scanStart = Date.now();
    await this.#scan(true);
    // Every file there at scanStart has now been seen (opened, matched to a checkpoint, or saved as
    // born while stopped): the next run may take only files written after this as never seen. Until
    // now, saves keep the previous run's mark, so a kill during this scan loses nothing.
    this.#scannedMs = scanStart;
    this.#dirty = true;
    if (this.#opts.once) return;
    this.#timers.push(setInterval(() => void this.#rotation.poll(), this.#opts.pollIntervalMs));
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
    for (const f of this.#registry.files()) await this.#rotation.closeFd(f);
  }

  status(): FileStatus[] {
    return [...this.#registry.files()].map((f) => ({
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
    const now = Date.now();
    const entries = this.#registry.entries(now, this.#opts.forgetAfterMs, (f) => entryOf(f, now));
    this.#saving = savePositions(file, entries, this.#scannedMs)
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
    for (const f of this.#registry.files()) {
      if (f.fh === undefined || f.verify.fingerprintBytes >= FINGERPRINT_WINDOW) continue;
      if (f.size <= f.verify.fingerprintBytes) continue;
      try {
        f.verify = await fingerprintFile(f.fh);
      } catch {
        // keep the narrower fingerprint; it still matches this file
      }
    }
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
        const f = this.#registry.atPath(path);
        return f !== undefined && f.state === 'active' && f.fh !== undefined;
      });
    } catch (err) {
      this.#deps.events.warn(`scan failed: ${errorMessage(err)}`);
      return;
    }
    const now = Date.now();
    const registry = this.#registry;
    for (const m of matches) {
      if (this.#stopped && !initial) return;
      for (const e of registry.knownFor(m)) e.seenMs = now;
      const f = registry.followedAt(m);
      if (f !== undefined) {
        if (f.state === 'parked' && m.size > f.seen) await this.#rotation.reopen(f);
        continue;
      }
      const inode = `${m.dev}:${m.ino}`;
      if (this.#opening.has(inode) || registry.isExcluded(m)) continue;
      if (m.path.endsWith('.gz')) {
        await this.#gz.lookAt(m, initial);
        continue;
      }
      if (this.#opts.skipPath?.(m.path)) continue;
      this.#opening.add(inode);
      try {
        const opened = await openFile(this.#ctx, this.#rotation, m, initial, this.#resumed);
        if (opened !== undefined) this.#opened(opened);
      } finally {
        this.#opening.delete(inode);
      }
    }
    if (!this.#stopped) registry.gzKeepOnly(matches);
    if (this.#unsaved.length > 0) {
      const files = this.#unsaved;
      this.#unsaved = [];
      await this.saveCheckpoints(true);
      for (const f of files) if (registry.holds(f)) begin(this.#ctx, f);
    }
    this.#checkIdle();
  }

  #opened({ f, isNew }: Opened): void {
    // A new file's id must be in the positions file before any document carrying it is sent: a
    // crash before the first save would otherwise give the file another id on restart (its
    // fingerprint covers more bytes by then) and re-send its documents under new ids.
    if (isNew && this.#opts.positionsFile !== undefined) this.#unsaved.push(f);
    else begin(this.#ctx, f);
  }

  /** Config reloaded: ask enrichment again about every file, and about files it had excluded. */
  reevaluate(): void {
    this.#registry.clearExcluded();
    for (const f of this.#registry.files()) {
      if (f.state !== 'closing' && f.fh !== undefined) void describe(this.#ctx, f);
    }
    this.scanSoon();
  }

  /** How the file's documents are written: its path, the pod's members, the sink's action line. */
  #documentContext(source: SourceFile, fragment: string): DocumentContext {
    return documentContext(
      source.path,
      this.#opts.hostName,
      fragment,
      this.#deps.transforms?.fields,
      this.#deps.sink.frame?.(source),
    );
  }

  /** What the source stage's other parts see of the tailer (tracked.ts, TailContext). */
  #context(): TailContext {
    return {
      opts: this.#opts,
      deps: this.#deps,
      registry: this.#registry,
      work: this.#work,
      stopped: () => this.#stopped,
      enqueue: (f) => this.#enqueue(f),
      markDirty: () => {
        this.#dirty = true;
      },
      saveNow: () => this.saveCheckpoints(true),
      previousSaveMs: () => this.#previousSaveMs,
      warnOnce: (key, message) => this.#warnOnce(key, message),
      maybeRelease: (f) => this.#rotation.maybeRelease(f),
      scanSoon: () => this.scanSoon(),
      idleMaybe: () => this.#checkIdle(),
      unreadable: (path, err) => {
        if (this.#unreadable.has(path)) return;
        this.#unreadable.add(path);
        this.#deps.events.fileUnreadable(path, (err as NodeJS.ErrnoException).code ?? 'unknown');
        this.#deps.events.warn(`cannot open ${path}: ${errorMessage(err)}; will retry`);
      },
      readable: (path) => {
        this.#unreadable.delete(path);
      },
      pause: (f, ms) => this.#pause(f, ms),
      contextFor: (source, fragment) => this.#documentContext(source, fragment),
      newTracker: (f, start, continuation) => this.#newTracker(f, start, continuation),
    };
  }

  #newTracker(f: Tracked, start: number, continuation: ContinuationState | undefined): AckTracker {
    const tracker: AckTracker = new AckTracker(start, continuation, () => {
      if (f.tracker === tracker) this.#dirty = true;
    });
    return tracker;
  }

  #warnOnce(key: string, message: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#deps.events.warn(message);
  }

  #startWatcher(): void {
    const bases = [...new Set(this.#opts.patterns.map(globBase))];
    const watcher = watch(bases, { ignoreInitial: true, persistent: false });
    watcher.on('add', () => this.scanSoon());
    watcher.on('addDir', () => this.scanSoon());
    watcher.on('change', (path) => {
      const f = this.#registry.atPath(path);
      if (f !== undefined && f.fh !== undefined) this.#enqueue(f);
      else this.scanSoon();
    });
    watcher.on('unlink', () => void this.#rotation.poll());
    watcher.on('error', (err) => this.#deps.events.warn(`file watcher: ${errorMessage(err)}`));
    this.#watcher = watcher;
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

  #pause(f: Tracked, ms: number): void {
    f.pausedUntil = Date.now() + ms;
    const timer = setTimeout(() => {
      this.#pauseTimers.delete(timer);
      f.pausedUntil = 0;
      this.#enqueue(f);
    }, ms);
    this.#pauseTimers.add(timer);
  }

  /** One of `readers` loops: takes files from the queue, one file by one reader at a time. */
  async #reader(reader: Reader): Promise<void> {
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
        if (!f.metaComplete && !f.describing && Date.now() - f.lastDescribeMs >= 1000)
          void describe(this.#ctx, f);
        if (!this.#stopped) more = await readStep(this.#ctx, f, reader);
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

  #isIdle(): boolean {
    if (this.#queue.length > 0 || this.#scanning !== undefined || this.#gz.busy) return false;
    for (const f of this.#registry.files()) {
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
