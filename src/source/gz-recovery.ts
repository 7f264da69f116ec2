import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createGunzip, type Gunzip } from 'node:zlib';
import { documentContext } from '../encode/document.ts';
import { errorMessage } from '../errors.ts';
import { recycleLocally } from '../parse/body-pool.ts';
import { FileProcessor, type ProcessorEvents } from '../parse/file-processor.ts';
import type { Budget, Enricher, FileMetadata, FormatOption, Sink, SourceFile } from '../pipeline/types.ts';
import type { Transforms } from '../transform/types.ts';
import { AckTracker } from './ack-tracker.ts';
import type { CheckpointEntry } from './checkpointer.ts';
import type { Match } from './discovery.ts';
import { FINGERPRINT_WINDOW, type Fingerprint, fileId, fingerprintBytes } from './fingerprint.ts';
import type { TailContext } from './tracked.ts';

/** Decompresses the first `bytes` of a gzip file and fingerprints them, as the original file was. */
export async function gzFingerprint(path: string, bytes: number): Promise<Fingerprint> {
  const head = Buffer.alloc(bytes);
  let got = 0;
  const stream = gunzipped(path);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const n = Math.min(chunk.length, bytes - got);
      chunk.copy(head, got, 0, n);
      got += n;
      if (got >= bytes) break;
    }
  } finally {
    stream.destroy();
  }
  return fingerprintBytes(head, got);
}

/**
 * The decompressed stream of a gzip file. A read error (the file pruned between the scan and this
 * open: ENOENT) ends the stream with that error instead of being an unhandled 'error' event of the
 * file stream, which `pipe` does not forward and which stopped the agent (30-minute chaos run).
 */
function gunzipped(path: string): Gunzip {
  const file = createReadStream(path);
  const gunzip = createGunzip();
  file.on('error', (err) => gunzip.destroy(err));
  gunzip.on('close', () => file.destroy());
  return file.pipe(gunzip);
}

/** The uncompressed size modulo 2^32 from a gzip file's trailer (ISIZE), or undefined. */
export async function gzUncompressedSize(path: string): Promise<number | undefined> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (fh === undefined) return undefined;
  try {
    const { size } = await fh.stat();
    if (size < 18) return undefined;
    const buf = Buffer.alloc(4);
    await fh.read(buf, 0, 4, size - 4);
    return buf.readUInt32LE(0);
  } finally {
    await fh.close();
  }
}

/**
 * Which checkpoint a gzipped file continues: the candidate (longest fingerprint first) whose
 * fingerprint the decompressed head matches. Throws while the file cannot be read yet (gzip still
 * writing it, or damaged).
 */
export async function findGzOrigin(
  path: string,
  candidates: readonly CheckpointEntry[],
): Promise<CheckpointEntry | undefined> {
  const prints = new Map<number, string>();
  for (const e of candidates) {
    if (!prints.has(e.fingerprintBytes)) {
      const fp = await gzFingerprint(path, e.fingerprintBytes);
      prints.set(e.fingerprintBytes, fp.fingerprintBytes === e.fingerprintBytes ? fp.fingerprint : '');
    }
    if (prints.get(e.fingerprintBytes) === e.fingerprint) return e;
  }
  return undefined;
}

/** Whether a gzipped file holds nothing past the checkpoint (its trailer's size, mod 4 GiB, says so). */
export async function gzReadToEnd(path: string, entry: CheckpointEntry): Promise<boolean> {
  const size = await gzUncompressedSize(path);
  return size !== undefined && size < 2 ** 32 - 1 && entry.offset >= size;
}

export interface GzRecoveryDeps {
  budget: Budget;
  sink: Sink;
  events: ProcessorEvents;
  enricher?: Enricher | undefined;
  transforms?: Transforms | undefined;
  format: FormatOption;
  maxLineBytes: number;
  readChunkBytes: number;
  hostName: string;
  /** the checkpoint moved (acknowledged records); persist it */
  onCommitted(entry: CheckpointEntry): void;
  stopped(): boolean;
}

/**
 * Reads what was not yet shipped of a file that kubelet rotated and gzipped while logferry was
 * stopped: the decompressed stream from the checkpoint's offset to its end, through the same
 * processor, under the original file's identity, so document ids and offsets are those the plain
 * file would have given. Resolves once everything read is acknowledged (or reading stopped).
 */
export async function recoverGz(path: string, entry: CheckpointEntry, deps: GzRecoveryDeps): Promise<number> {
  const source: SourceFile = {
    key: entry.id,
    path,
    identity: { dev: entry.dev, ino: entry.ino, id: entry.id },
  };
  let meta: FileMetadata | undefined;
  if (deps.enricher !== undefined) {
    meta = await deps.enricher.describe(source);
    if (meta.exclude) return 0;
    source.fields = meta.fields;
  }
  const processor = new FileProcessor(
    documentContext(
      path,
      deps.hostName,
      meta?.fragment ?? '',
      deps.transforms?.fields,
      deps.sink.frame?.(source),
    ),
    { format: deps.format, maxLineBytes: deps.maxLineBytes },
    deps.events,
    { format: entry.format, continuation: entry.continuation },
  );
  // the same records the plain file would have given: same multiline groups, parsers and filters
  if (deps.transforms !== undefined) processor.transform = deps.transforms.forFile(path, meta);
  let outstanding = 0;
  let allSent = false;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const tracker = new AckTracker(entry.offset, entry.continuation, (committed, delta) => {
    deps.budget.release(delta);
    entry.offset = committed;
    entry.continuation = tracker.continuation;
    entry.format = processor.format;
    deps.onCommitted(entry);
  });
  const settle = () => {
    if (allSent && outstanding === 0) resolveDone();
  };

  const buf = Buffer.allocUnsafe(deps.readChunkBytes);
  let len = 0;
  let base = entry.offset;
  let pos = 0; // decompressed offset of the next byte of the stream
  const flush = (final: boolean) => {
    const res = processor.process(buf, len, base, final);
    deps.budget.acquire(res.consumed);
    const ackEntry = tracker.add(res.safeEnd, res.continuation);
    if (res.ends.length === 0) tracker.ack(ackEntry);
    else {
      outstanding++;
      deps.sink.write({
        file: source,
        body: res.body,
        ends: res.ends,
        offsets: res.offsets,
        framed: res.framed,
        ack: () => {
          recycleLocally(res.body);
          tracker.ack(ackEntry);
          outstanding--;
          settle();
        },
      });
    }
    buf.copy(buf, 0, res.consumed, len);
    len -= res.consumed;
    base += res.consumed;
  };

  // the checkpoint entry moves while this runs (acknowledgements); where to start is fixed now
  const startOffset = entry.offset;
  const stream = gunzipped(path);
  let read = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (deps.stopped()) break;
      let c = chunk;
      if (pos + c.length <= startOffset) {
        pos += c.length;
        continue;
      }
      if (pos < startOffset) {
        c = c.subarray(startOffset - pos);
        pos = startOffset;
      }
      pos += c.length;
      while (c.length > 0) {
        const n = Math.min(c.length, buf.length - len);
        c.copy(buf, len, 0, n);
        len += n;
        read += n;
        c = c.subarray(n);
        if (len === buf.length) {
          await deps.budget.waitForRoom();
          flush(false);
        }
      }
    }
    if (!deps.stopped()) {
      await deps.budget.waitForRoom();
      flush(true);
    }
  } finally {
    stream.destroy();
  }
  allSent = true;
  settle();
  if (!deps.stopped()) await done;
  return read;
}

/**
 * The gzipped files scans find. A gzipped file is never followed. It is read only when it is a file
 * we were reading when we stopped, rotated and compressed by kubelet meanwhile: recognised by the
 * fingerprint of its decompressed first bytes among the checkpoints of files not followed now
 * (registry.ts), it is read from the checkpoint's offset to its end, under that file's identity;
 * or when it matches no checkpoint and was written after the previous run last saved positions
 * (born while we were stopped): read from its start (#bornWhileStopped).
 */
export class GzRecoveries {
  readonly #ctx: TailContext;
  #running = 0;
  /** recoveries waiting their turn; the oldest file (kubelet prunes oldest first) goes first */
  readonly #waiting: { path: string; entry: CheckpointEntry; unknown: boolean; birthMs: number }[] = [];
  #draining = false;
  /** gzipped files the first scan could not read yet: they keep its right to be born while stopped */
  readonly #initialRetries = new Set<string>();

  constructor(ctx: TailContext) {
    this.#ctx = ctx;
  }

  get busy(): boolean {
    return this.#running > 0;
  }

  /** `initial`: the first scan after start, the only one that may find a file born while stopped. */
  async lookAt(m: Match, initial: boolean): Promise<void> {
    const { registry } = this.#ctx;
    if (!registry.gzFirstLook(m)) return;
    const firstScan = initial || this.#initialRetries.delete(m.path);
    const candidates = registry.gzCandidates(dirname(m.path));
    let entry: CheckpointEntry | undefined;
    let unknown = false;
    try {
      if (candidates.length > 0) entry = await findGzOrigin(m.path, candidates);
      // later scans: an unmatched .gz is a file this run follows (or followed) as a plain file,
      // compressed under it: reading it again would duplicate it (chaos run seed 43, second try)
      if (entry === undefined && firstScan) {
        entry = await this.#bornWhileStopped(m);
        unknown = entry !== undefined;
      }
      if (entry === undefined || (await gzReadToEnd(m.path, entry))) return;
      if (unknown) {
        // its identity is saved now, before it waits its turn and before any of its documents is
        // sent: a kill meanwhile finds it by this checkpoint at the next start, whose own first
        // scan no longer sees it as born while stopped (it predates that run's last save; the
        // 30-minute chaos run, seed 43, third try, lost three such files)
        registry.remember(entry);
        await this.#ctx.saveNow();
      }
    } catch (err) {
      // still being written (gzip in progress) or damaged: looked at again at the next scan
      registry.gzRetry(m);
      if (firstScan) this.#initialRetries.add(m.path);
      this.#ctx.warnOnce(
        m.path,
        `cannot read ${m.path} yet: ${errorMessage(err)}; trying again at the next scan`,
      );
      return;
    }
    this.#running++;
    // one recovery at a time: each holds a read buffer and a decompressor, and a node can have
    // hundreds of rotated files after a long outage. The oldest first, across directories: it is
    // the next one kubelet deletes (a restart that read a newer file first, then was killed, lost
    // an older one to pruning: 30-minute chaos run, seed 43, fourth try)
    this.#waiting.push({ path: m.path, entry, unknown, birthMs: m.birthMs });
    void this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#waiting.length > 0) {
        let next = 0;
        for (let i = 1; i < this.#waiting.length; i++)
          if (this.#waiting[i]!.birthMs < this.#waiting[next]!.birthMs) next = i;
        const job = this.#waiting.splice(next, 1)[0]!;
        await this.#recover(job.path, job.entry, job.unknown);
      }
    } finally {
      this.#draining = false;
    }
  }

  /**
   * A checkpoint for a gzipped file that matches none but was last written after the previous run
   * saved its positions: a file born, rotated and compressed while logferry was stopped (a pod's
   * 0.log rotated twice during a restart: chaos run seed 43, docs/chaos.md). Nothing of it can have
   * been shipped, since a file's identity is saved before its first document is sent, so it is read
   * from its start under an identity of its own. On a first run (no positions) rotated history is
   * not shipped, as before; an older unmatched file was read to its end by an earlier run (or
   * predates the first one).
   */
  async #bornWhileStopped(m: Match): Promise<CheckpointEntry | undefined> {
    const since = this.#ctx.previousSaveMs();
    if (since === undefined) return undefined;
    // gzip keeps the original's mtime; kubelet's compressor gives the .gz its own, later still
    if ((await stat(m.path)).mtimeMs <= since) return undefined;
    const fp = await gzFingerprint(m.path, FINGERPRINT_WINDOW);
    if (fp.fingerprintBytes === 0) return undefined;
    return {
      path: m.path,
      dev: m.dev,
      ino: m.ino,
      id: fileId(m.dev, m.ino, m.birthMs, fp),
      fingerprint: fp.fingerprint,
      fingerprintBytes: fp.fingerprintBytes,
      offset: 0,
      seenMs: Date.now(),
      birthMs: m.birthMs,
    };
  }

  async #recover(path: string, entry: CheckpointEntry, unknown: boolean): Promise<void> {
    const { opts, deps } = this.#ctx;
    try {
      if (this.#ctx.stopped()) return;
      deps.events.warn(
        unknown
          ? `${path}: a file created, rotated and compressed while logferry was stopped; reading it from its start`
          : `${path}: a file rotated and compressed while logferry was stopped; reading it from offset ${entry.offset}`,
      );
      await recoverGz(path, entry, {
        budget: deps.budget,
        sink: deps.sink,
        events: deps.events,
        enricher: deps.enricher,
        transforms: deps.transforms,
        format: opts.format,
        maxLineBytes: opts.maxLineBytes,
        readChunkBytes: opts.readChunkBytes,
        hostName: opts.hostName,
        onCommitted: (e) => {
          e.seenMs = Date.now();
          this.#ctx.markDirty();
        },
        stopped: () => this.#ctx.stopped(),
      });
    } catch (err) {
      deps.events.warn(`reading ${path} failed: ${errorMessage(err)}`);
    } finally {
      this.#running--;
      this.#ctx.idleMaybe();
    }
  }
}
