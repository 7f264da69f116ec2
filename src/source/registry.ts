import { dirname } from 'node:path';
import type { CheckpointEntry } from './checkpointer.ts';
import type { Match } from './discovery.ts';
import { inodeKey, sameBirth, type Tracked } from './tracked.ts';

/**
 * The one owner of file identities: the files followed now and the checkpoints of files known from
 * earlier (released, rotated away, gzipped, or from the last run). Everything is keyed by the file
 * id, never by device and inode alone: ext4 and xfs hand a freed inode number to the next file
 * created, so a new `0.log` may carry the number of a rotated file whose rest still waits inside
 * its `.gz` (issue #12: a restart lost every unshipped line of such a file). Two files with one
 * `dev:ino` can be known at once; device and inode only narrow the candidates, and birth time and
 * the head fingerprint decide.
 */
export class FileRegistry {
  readonly #files = new Map<string, Tracked>();
  readonly #byPath = new Map<string, Tracked>();
  readonly #filesByInode = new Map<string, Set<Tracked>>();
  readonly #known = new Map<string, CheckpointEntry>();
  readonly #knownByInode = new Map<string, Set<CheckpointEntry>>();
  /** files enrichment said not to follow (path and identity): skipped by scans until `reevaluate()` */
  readonly #excluded = new Set<string>();
  /** gzipped files already looked at (path and identity); pruned to what the last scan saw */
  #gzSeen = new Set<string>();

  load(entries: Iterable<CheckpointEntry>): void {
    for (const e of entries) this.remember(e);
  }

  get knownCount(): number {
    return this.#known.size;
  }

  files(): IterableIterator<Tracked> {
    return this.#files.values();
  }

  /** Whether `f` is still the registry's file for its key (not released or replaced). */
  holds(f: Tracked): boolean {
    return this.#files.get(f.key) === f;
  }

  atPath(path: string): Tracked | undefined {
    return this.#byPath.get(path);
  }

  /**
   * The followed file that the one found at `m` is, if any. A file we hold open owns its inode (the
   * kernel frees an inode only when its last descriptor closes), so an open file with m's device
   * and inode is m, at whatever path. A parked file holds no descriptor: its number may have been
   * reused, and only a matching birth time (or, where there is none, the fingerprint checked when
   * it is reopened) says it is still the same file.
   */
  followedAt(m: Match): Tracked | undefined {
    for (const f of this.#filesByInode.get(inodeKey(m.dev, m.ino)) ?? []) {
      if (f.state === 'closing') continue;
      if (f.fh !== undefined) return f;
      if (f.state === 'parked' && sameBirth(f.birthMs, m.birthMs)) return f;
    }
    return undefined;
  }

  add(f: Tracked): void {
    this.#files.set(f.key, f);
    this.#byPath.set(f.source.path, f);
    addTo(this.#filesByInode, inodeKey(f.source.identity.dev, f.source.identity.ino), f);
  }

  /** A closing file leaves; its final checkpoint is remembered (a rotated file may be found again). */
  release(f: Tracked, entry: CheckpointEntry): void {
    if (!this.holds(f)) return;
    this.#files.delete(f.key);
    if (this.#byPath.get(f.source.path) === f) this.#byPath.delete(f.source.path);
    removeFrom(this.#filesByInode, inodeKey(f.source.identity.dev, f.source.identity.ino), f);
    this.remember(entry);
  }

  // --- checkpoints of files not followed now ---------------------------------------------------

  remember(e: CheckpointEntry): void {
    const prev = this.#known.get(e.id);
    if (prev !== undefined) removeFrom(this.#knownByInode, inodeKey(prev.dev, prev.ino), prev);
    this.#known.set(e.id, e);
    addTo(this.#knownByInode, inodeKey(e.dev, e.ino), e);
  }

  /**
   * Checkpoints that may be the file found at `m`: same device and inode, a birth time that does not
   * rule it out; longest fingerprint first. The caller checks the fingerprint against the file.
   */
  knownFor(m: Match): CheckpointEntry[] {
    const set = this.#knownByInode.get(inodeKey(m.dev, m.ino));
    if (set === undefined) return [];
    return [...set]
      .filter((e) => sameBirth(e.birthMs ?? 0, m.birthMs))
      .sort((a, b) => b.fingerprintBytes - a.fingerprintBytes);
  }

  /** The file is followed again: its checkpoint now lives in the followed file. */
  claim(e: CheckpointEntry): void {
    if (this.#known.get(e.id) !== e) return;
    this.#known.delete(e.id);
    removeFrom(this.#knownByInode, inodeKey(e.dev, e.ino), e);
  }

  /**
   * Checkpoints a gzipped file in `dir` may have come from: not followed (a followed file is read
   * from its plain copy) and with a fingerprint of some bytes (one of no bytes, a file checkpointed
   * while empty, matches anything: chaos run, seed 32); longest fingerprint first.
   */
  gzCandidates(dir: string): CheckpointEntry[] {
    return [...this.#known.values()]
      .filter((e) => e.fingerprintBytes > 0 && dirname(e.path) === dir)
      .sort((a, b) => b.fingerprintBytes - a.fingerprintBytes);
  }

  /** Every checkpoint to save: the followed files' and those remembered, minus the long unseen. */
  entries(now: number, forgetAfterMs: number, entryOf: (f: Tracked) => CheckpointEntry): CheckpointEntry[] {
    const out: CheckpointEntry[] = [];
    for (const e of [...this.#known.values()]) {
      if (now - e.seenMs > forgetAfterMs) {
        this.claim(e);
        continue;
      }
      out.push(e);
    }
    for (const f of this.#files.values()) out.push(entryOf(f));
    return out;
  }

  // --- scan bookkeeping ------------------------------------------------------------------------

  exclude(f: Tracked): void {
    this.#excluded.add(matchKey(f.source.path, f.source.identity.dev, f.source.identity.ino, f.birthMs));
  }

  isExcluded(m: Match): boolean {
    return this.#excluded.has(matchKey(m.path, m.dev, m.ino, m.birthMs));
  }

  clearExcluded(): void {
    this.#excluded.clear();
  }

  /** True the first time a scan meets this gzipped file; `gzRetry` lets the next scan look again. */
  gzFirstLook(m: Match): boolean {
    const k = matchKey(m.path, m.dev, m.ino, m.birthMs);
    if (this.#gzSeen.has(k)) return false;
    this.#gzSeen.add(k);
    return true;
  }

  gzRetry(m: Match): void {
    this.#gzSeen.delete(matchKey(m.path, m.dev, m.ino, m.birthMs));
  }

  /** After a full scan: forget gzipped files no longer there (a node rotates thousands a day). */
  gzKeepOnly(matches: readonly Match[]): void {
    const keep = new Set<string>();
    for (const m of matches) {
      const k = matchKey(m.path, m.dev, m.ino, m.birthMs);
      if (this.#gzSeen.has(k)) keep.add(k);
    }
    this.#gzSeen = keep;
  }
}

function matchKey(path: string, dev: number, ino: number, birthMs: number): string {
  return `${dev}:${ino}:${birthMs}:${path}`;
}

function addTo<T>(map: Map<string, Set<T>>, key: string, value: T): void {
  let set = map.get(key);
  if (set === undefined) {
    set = new Set();
    map.set(key, set);
  }
  set.add(value);
}

function removeFrom<T>(map: Map<string, Set<T>>, key: string, value: T): void {
  const set = map.get(key);
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}
