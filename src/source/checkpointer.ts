import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorMessage } from '../errors.ts';
import type { Format } from '../pipeline/types.ts';
import type { ContinuationState } from './ack-tracker.ts';

/** Bumped on any incompatible change; a file with another version is set aside, never misread. */
export const POSITIONS_VERSION = 1;
const MAGIC = 'logferry-positions';

export interface CheckpointEntry {
  path: string;
  dev: number;
  ino: number;
  /** the file's identity fingerprint, fixed when it was first seen (document ids derive from it) */
  id: string;
  /** fingerprint used to recognise the file again, and how many leading bytes it covers */
  fingerprint: string;
  fingerprintBytes: number;
  /** every record before this byte offset has been acknowledged */
  offset: number;
  format?: Format | undefined;
  continuation?: ContinuationState | undefined;
  /** ms since epoch when the entry was last matched to a file on disk */
  seenMs: number;
  /** the inode's birth time when known: a reused inode has another */
  birthMs?: number | undefined;
}

export interface LoadResult {
  /** by file id: two entries may share a device and inode (a reused inode number) */
  entries: Map<string, CheckpointEntry>;
  /** set when the file existed but could not be used; the caller logs it once */
  warning?: string;
  /**
   * when the newest run that finished its first scan started it (`scannedMs` in the file; before
   * that field, the file's mtime): a file last written after this, matching no checkpoint, was
   * never seen by an earlier run (gz-recovery.ts)
   */
  savedMs?: number;
}

function validEntry(e: unknown): e is CheckpointEntry {
  if (typeof e !== 'object' || e === null) return false;
  const o = e as Record<string, unknown>;
  return (
    typeof o.path === 'string' &&
    Number.isSafeInteger(o.dev) &&
    Number.isSafeInteger(o.ino) &&
    typeof o.id === 'string' &&
    typeof o.fingerprint === 'string' &&
    Number.isSafeInteger(o.fingerprintBytes) &&
    Number.isSafeInteger(o.offset) &&
    (o.offset as number) >= 0
  );
}

/**
 * Reads a positions file. Missing -> empty (first run). Unreadable, corrupt or foreign -> empty plus
 * a warning, and the bad file is kept aside as `<file>.corrupt-<time>` for inspection: every file
 * is then treated as new, so the fallback re-reads (duplicates at worst) rather than skips.
 */
export async function loadPositions(file: string): Promise<LoadResult> {
  const entries = new Map<string, CheckpointEntry>();
  let text: string;
  let savedMs: number | undefined;
  try {
    text = await readFile(file, 'utf8');
    savedMs = (await stat(file)).mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries };
    return {
      entries,
      warning: `cannot read positions file ${file} (${errorMessage(err)}); starting without it`,
    };
  }
  let problem: string | undefined;
  try {
    const doc = JSON.parse(text) as {
      format?: unknown;
      version?: unknown;
      files?: unknown;
      scannedMs?: unknown;
    };
    if (typeof doc?.scannedMs === 'number' && Number.isFinite(doc.scannedMs)) savedMs = doc.scannedMs;
    if (doc?.format !== MAGIC) problem = 'not a logferry positions file';
    else if (doc.version !== POSITIONS_VERSION) problem = `unsupported version ${String(doc.version)}`;
    else if (!Array.isArray(doc.files)) problem = 'no files list';
    else {
      for (const e of doc.files) {
        if (!validEntry(e)) {
          problem = 'malformed entry';
          entries.clear();
          break;
        }
        entries.set(e.id, e);
      }
    }
  } catch (err) {
    problem = `invalid JSON (${errorMessage(err)})`;
  }
  if (problem === undefined) return savedMs === undefined ? { entries } : { entries, savedMs };
  const aside = `${file}.corrupt-${Date.now()}`;
  try {
    await rename(file, aside);
  } catch {
    // keeping the evidence is best effort; the warning still says what happened
  }
  return {
    entries,
    warning: `positions file ${file} is unusable (${problem}); moved to ${aside}; files without a position are read as new`,
  };
}

/**
 * Writes the positions atomically: a temp file in the same directory, fsync, rename over the old
 * one, fsync of the directory. A crash leaves either the old or the new file, never a torn one.
 */
export async function savePositions(
  file: string,
  entries: Iterable<CheckpointEntry>,
  scannedMs?: number,
): Promise<void> {
  const doc = { format: MAGIC, version: POSITIONS_VERSION, scannedMs, files: [...entries] };
  const body = `${JSON.stringify(doc)}\n`;
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'w', 0o640);
  try {
    await fh.writeFile(body);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  try {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    // some filesystems refuse fsync on a directory; the rename is still atomic
  }
}
