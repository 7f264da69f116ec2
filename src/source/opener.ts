import { type FileHandle, open } from 'node:fs/promises';
import type { SourceFile } from '../pipeline/types.ts';
import type { ContinuationState } from './ack-tracker.ts';
import type { CheckpointEntry } from './checkpointer.ts';
import type { Match } from './discovery.ts';
import { type Fingerprint, fileId, fingerprintFile, headMatches, truncatedId } from './fingerprint.ts';
import type { Rotation } from './rotation.ts';
import type { TailContext, Tracked } from './tracked.ts';

export interface Opened {
  f: Tracked;
  /** the file's id is not from a checkpoint: it must be saved before any document carries it */
  isNew: boolean;
}

interface Resume {
  id: string;
  start: number;
  format: CheckpointEntry['format'];
  continuation: ContinuationState | undefined;
  isNew: boolean;
}

/**
 * Opens a file a scan found and decides who it is: a file known from a checkpoint (same device,
 * inode and birth time, and it still starts with the checkpoint's fingerprint) resumes at the
 * checkpoint; anything else is a new file, even when it reuses a known inode number, and the
 * checkpoint it does not match is left alone (its file may live on as a `.gz`, see registry.ts).
 */
export async function openFile(
  ctx: TailContext,
  slots: Rotation,
  m: Match,
  initial: boolean,
  resumed: boolean,
): Promise<Opened | undefined> {
  if (!slots.reserveFd()) {
    ctx.warnOnce(
      m.path,
      `max open files (${ctx.opts.maxOpenFiles}) reached; ${m.path} waits for a free slot`,
    );
    return undefined;
  }
  let fh: FileHandle;
  try {
    fh = await open(m.path, 'r');
  } catch (err) {
    slots.unreserveFd();
    ctx.unreadable(m.path, err);
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (st.dev !== m.dev || st.ino !== m.ino || !st.isFile()) {
      // replaced between the scan and the open: the next scan sees the new file
      await fh.close();
      slots.unreserveFd();
      return undefined;
    }
    const fp = await fingerprintFile(fh);
    const r = await resumeOf(ctx, fh, m, st.size, fp);
    if (r.isNew && initial && ctx.opts.startAtEnd && !resumed && !(m.birthMs > performance.timeOrigin)) {
      // tail -F on a first run only: once positions exist, a file we do not know (or one that
      // reuses the inode of a file we knew) appeared while we were stopped and is read whole.
      // A file born after this process started (while it was starting up) is new, not history.
      // "The end" is where the file ended when the scan found it: lines written between then and
      // this open are new, not history (a slow start, e.g. a worker thread starting up, made
      // them vanish).
      r.start = await lastLineEnd(fh, Math.min(st.size, m.size));
    }
    const source: SourceFile = { key: r.id, path: m.path, identity: { dev: m.dev, ino: m.ino, id: r.id } };
    const f = newTracked(ctx, source, fh, r, st.size, fp, m.birthMs);
    ctx.registry.add(f);
    ctx.readable(m.path);
    ctx.markDirty();
    ctx.deps.events.fileOpened(m.path);
    return { f, isNew: r.isNew };
  } catch (err) {
    await fh.close().catch(() => {});
    slots.unreserveFd();
    ctx.unreadable(m.path, err);
    return undefined;
  }
}

async function resumeOf(
  ctx: TailContext,
  fh: FileHandle,
  m: Match,
  size: number,
  fp: Fingerprint,
): Promise<Resume> {
  const candidates = ctx.registry.knownFor(m);
  for (const known of candidates) {
    if (!(await headMatches(fh, known, fp))) continue;
    ctx.registry.claim(known);
    if (size >= known.offset) {
      return {
        id: known.id,
        start: known.offset,
        format: known.format,
        continuation: known.continuation,
        isNew: false,
      };
    }
    // shorter than what was acknowledged: truncated while we were away, read again from 0
    return {
      id: truncatedId(known.id),
      start: 0,
      format: known.format,
      continuation: undefined,
      isNew: true,
    };
  }
  // the same inode (same birth time) no longer starting with its fingerprint: truncated and
  // written again while we were away; its offsets start over, so must its ids
  const rewritten = candidates.find((e) => (e.birthMs ?? 0) > 0 && e.birthMs === m.birthMs);
  if (rewritten !== undefined) {
    ctx.registry.claim(rewritten);
    return {
      id: truncatedId(rewritten.id),
      start: 0,
      format: rewritten.format,
      continuation: undefined,
      isNew: true,
    };
  }
  return {
    id: fileId(m.dev, m.ino, m.birthMs, fp),
    start: 0,
    format: undefined,
    continuation: undefined,
    isNew: true,
  };
}

function newTracked(
  ctx: TailContext,
  source: SourceFile,
  fh: FileHandle,
  r: Resume,
  size: number,
  fp: Fingerprint,
  birthMs: number,
): Tracked {
  const f: Tracked = {
    key: source.key,
    source,
    fh,
    readPos: r.start,
    seen: r.start,
    size,
    work: ctx.work.create({
      path: source.path,
      ctx: ctx.contextFor(source, ''),
      opts: { format: ctx.opts.format, maxLineBytes: ctx.opts.maxLineBytes },
      resume: { format: r.format, continuation: r.continuation },
    }),
    tracker: undefined as unknown as Tracked['tracker'],
    held: 0,
    verify: fp,
    birthMs,
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
    metaComplete: ctx.deps.enricher === undefined,
    lastDescribeMs: 0,
    meta: undefined,
    flushDue: false,
    pausedUntil: 0,
  };
  f.tracker = ctx.newTracker(f, r.start, r.continuation);
  return f;
}

/** Start of tail -F reading: just after the last newline, so a half-written line is not cut. */
async function lastLineEnd(fh: FileHandle, size: number): Promise<number> {
  if (size === 0) return 0;
  const window = Math.min(size, 64 * 1024);
  const buf = Buffer.allocUnsafe(window);
  const { bytesRead } = await fh.read(buf, 0, window, size - window);
  const i = buf.subarray(0, bytesRead).lastIndexOf(10);
  if (i >= 0) return size - window + i + 1;
  return window === size ? 0 : size;
}
