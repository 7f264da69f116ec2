import { open, stat } from 'node:fs/promises';
import { headMatches } from './fingerprint.ts';
import { entryOf, sameBirth, type TailContext, type Tracked } from './tracked.ts';

/** A followed file that has not grown for this long is polled only every QUIET_POLLS-th time. */
const QUIET_MS = 10_000;
const QUIET_POLLS = 40;

/**
 * What happens to followed files over time: growth and truncation noticed by polling, rotation
 * (renamed or deleted away), the grace period of a rotated file, release once everything read is
 * acknowledged, and the open-file limit (quiet files are parked: closed, reopened when they grow).
 */
export class Rotation {
  readonly #ctx: TailContext;
  #openFds = 0;
  #polling = false;
  #polls = 0;

  constructor(ctx: TailContext) {
    this.#ctx = ctx;
  }

  /** Takes a descriptor slot, parking the quietest fully read file if the limit is reached. */
  reserveFd(): boolean {
    if (this.#openFds < this.#ctx.opts.maxOpenFiles) {
      this.#openFds++;
      return true;
    }
    let victim: Tracked | undefined;
    for (const f of this.#ctx.registry.files()) {
      if (f.state !== 'active' || f.fh === undefined || f.busy || f.queued || f.seen < f.size) continue;
      if (victim === undefined || f.lastGrowthMs < victim.lastGrowthMs) victim = f;
    }
    if (victim === undefined) return false;
    victim.state = 'parked';
    void this.closeFd(victim);
    this.#openFds++;
    return true;
  }

  /** Gives back a slot taken by `reserveFd` for a file that was not opened after all. */
  unreserveFd(): void {
    this.#openFds--;
  }

  async closeFd(f: Tracked): Promise<void> {
    const fh = f.fh;
    if (fh === undefined) return;
    f.fh = undefined;
    this.#openFds--;
    await fh.close().catch(() => {});
  }

  /**
   * A parked file grew: open its path again, if it is still the same file. Parked, we held no
   * descriptor, so its inode number may have gone to a new file at the same path: device, inode,
   * birth time and the head fingerprint must all agree, or the new file would be read from the old
   * one's offset.
   */
  async reopen(f: Tracked): Promise<void> {
    if (!this.reserveFd()) return;
    const { dev, ino } = f.source.identity;
    try {
      const fh = await open(f.source.path, 'r');
      try {
        const st = await fh.stat();
        const same =
          st.dev === dev &&
          st.ino === ino &&
          sameBirth(f.birthMs, st.birthtimeMs || 0) &&
          (await headMatches(fh, f.verify));
        if (same && f.state === 'parked') {
          f.fh = fh;
          f.state = 'active';
          f.size = st.size;
          this.#ctx.enqueue(f);
          return;
        }
      } catch {
        // treated as gone, below
      }
      await fh.close().catch(() => {});
    } catch {
      // gone from its path
    }
    this.#openFds--;
    if (f.state === 'parked') this.finishParked(f);
  }

  /** A parked file left its path (or another file took it): what it had not read is lost to us. */
  finishParked(f: Tracked): void {
    this.#ctx.deps.events.warn(`parked file ${f.source.path} was rotated away before it could be reopened`);
    f.state = 'closing';
    this.maybeRelease(f);
    // whatever is at the path now is another file: open it
    this.#ctx.scanSoon();
  }

  /** A closing file is released once everything read from it is acknowledged. */
  maybeRelease(f: Tracked): void {
    const { registry, deps } = this.#ctx;
    if (f.state !== 'closing' || f.tracker.pending > 0 || !registry.holds(f)) return;
    // remembered so that a rotated file that still matches a pattern is not read again from 0
    registry.release(f, entryOf(f, Date.now()));
    deps.budget.release(f.held);
    f.held = 0;
    this.#ctx.markDirty();
    f.work.close();
    void this.closeFd(f);
    deps.events.fileClosed(f.source.path);
  }

  /** Whether the file's path now names another file, or nothing. */
  async movedAway(f: Tracked): Promise<boolean> {
    const { dev, ino } = f.source.identity;
    try {
      const st = await stat(f.source.path);
      return st.dev !== dev || st.ino !== ino || !sameBirth(f.birthMs, st.birthtimeMs || 0);
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT';
    }
  }

  async poll(): Promise<void> {
    const ctx = this.#ctx;
    if (this.#polling || ctx.stopped()) return;
    this.#polling = true;
    try {
      const now = Date.now();
      let rescan = false;
      // files quiet for a while are looked at every QUIET_POLLS-th poll: notifications still bring
      // their growth at once, and an idle node with hundreds of files stays cheap
      const everyFile = ++this.#polls % QUIET_POLLS === 0 || !ctx.opts.watch;
      for (const f of [...ctx.registry.files()]) {
        if (ctx.stopped()) return;
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
          if (await this.movedAway(f)) this.finishParked(f);
          continue;
        }
        if (await this.#pollOpen(f, now)) rescan = true;
      }
      if (rescan) ctx.scanSoon();
    } finally {
      this.#polling = false;
    }
  }

  /** One open file: growth, truncation, rotation. Returns true when it was just rotated away. */
  async #pollOpen(f: Tracked, now: number): Promise<boolean> {
    const ctx = this.#ctx;
    const fh = f.fh;
    if (fh === undefined) return false;
    let size: number;
    let nlink: number;
    try {
      const st = await fh.stat();
      size = st.size;
      nlink = st.nlink;
    } catch {
      return false;
    }
    if (size < f.readPos) {
      f.truncated = true;
      ctx.enqueue(f);
    } else if (size > f.seen) {
      f.size = size;
      f.lastGrowthMs = now;
      ctx.enqueue(f);
    }
    let rotated = false;
    if (f.state === 'active' && (await this.movedAway(f))) {
      f.state = 'gone';
      f.deleted = nlink === 0;
      f.goneSinceMs = now;
      ctx.deps.events.rotated(f.source.path, f.deleted ? 'delete' : 'rename');
      rotated = true;
    }
    if (f.state === 'gone') this.#checkGone(f, size, now);
    const flushMs = ctx.deps.transforms?.flushMs;
    if (flushMs !== undefined && f.work.hasPendingGroups && now - f.lastGrowthMs >= flushMs) {
      f.flushDue = true;
      ctx.enqueue(f);
    }
    return rotated;
  }

  /** A rotated file: drained and quiet for the grace period -> finalized; deleted too long -> given up. */
  #checkGone(f: Tracked, size: number, now: number): void {
    const { opts, deps } = this.#ctx;
    if (f.busy || f.queued || f.finalizing) return;
    if (f.seen >= size && now - Math.max(f.goneSinceMs, f.lastGrowthMs) >= opts.rotateGraceMs) {
      f.finalizing = true;
      this.#ctx.enqueue(f);
      return;
    }
    if (f.deleted && now - f.goneSinceMs >= opts.deletedMaxMs && size > f.seen) {
      const skipped = size - f.seen;
      deps.events.skippedBytes(f.source.path, skipped);
      deps.events.warn(
        `released deleted file ${f.source.path} after ${opts.deletedMaxMs} ms with ${skipped} bytes unread`,
        { path: f.source.path, skippedBytes: skipped },
      );
      f.finalizing = true;
      f.state = 'closing';
      this.maybeRelease(f);
    }
  }
}
