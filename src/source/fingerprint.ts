import { createHash, randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

/**
 * How many leading bytes identify a file together with its device and inode. 1 KiB covers several
 * CRI lines (each starts with a nanosecond timestamp), so an inode reused after delete + create is
 * told apart from the file that had it before, while hashing it costs nothing measurable.
 */
export const FINGERPRINT_WINDOW = 1024;

export interface Fingerprint {
  fingerprint: string;
  fingerprintBytes: number;
}

export function fingerprintBytes(buf: Buffer, length: number): Fingerprint {
  const n = Math.min(length, FINGERPRINT_WINDOW);
  const fingerprint = createHash('sha256').update(buf.subarray(0, n)).digest('hex').slice(0, 32);
  return { fingerprint, fingerprintBytes: n };
}

/** Fingerprint of the first `window` bytes of an open file (fewer if it is shorter). */
export async function fingerprintFile(fh: FileHandle, window = FINGERPRINT_WINDOW): Promise<Fingerprint> {
  const buf = Buffer.allocUnsafe(window);
  let got = 0;
  while (got < window) {
    const { bytesRead } = await fh.read(buf, got, window - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return fingerprintBytes(buf, got);
}

/**
 * Whether an open file still starts with the bytes `want` was taken of; `head` is the file's own
 * fingerprint when already at hand (it covers at least as many bytes when the file has grown).
 */
export async function headMatches(fh: FileHandle, want: Fingerprint, head?: Fingerprint): Promise<boolean> {
  if (head !== undefined && head.fingerprintBytes === want.fingerprintBytes) {
    return head.fingerprint === want.fingerprint;
  }
  if (head !== undefined && head.fingerprintBytes < want.fingerprintBytes) return false;
  const now = await fingerprintFile(fh, want.fingerprintBytes);
  return now.fingerprintBytes === want.fingerprintBytes && now.fingerprint === want.fingerprint;
}

/**
 * A file's id for document ids. It must differ between two files that ever had the same device and
 * inode (inodes are reused at once on ext4 and xfs) and stay the same for one file across restarts:
 * the inode's birth time does both. Where the file system reports none, the fingerprint of the first
 * KiB does when the file had that much when first seen; a shorter file (an empty new log file, whose
 * fingerprint is every empty file's) gets a random part. The id is saved in the checkpoint before
 * any document carrying it is sent, so a restart reuses it.
 */
export function fileId(dev: number, ino: number, birthMs: number, fp: Fingerprint): string {
  const basis =
    birthMs > 0
      ? `${dev}:${ino}:b${birthMs}`
      : fp.fingerprintBytes >= FINGERPRINT_WINDOW
        ? `${dev}:${ino}:f${fp.fingerprint}`
        : `${dev}:${ino}:r${randomBytes(8).toString('hex')}`;
  return createHash('sha256').update(basis).digest('hex').slice(0, 24);
}

/**
 * The id of a file after it was truncated (copytruncate) and is read again from 0: its offsets
 * start over, so under its old id each new line would take the id of an old one (and `create`
 * would answer 409 "already stored": the new lines lost). Derived from the old id, so a restart
 * that finds the file shorter than, or no longer starting like, its checkpoint derives the same.
 */
export function truncatedId(id: string): string {
  return createHash('sha256').update(`${id}:truncated`).digest('hex').slice(0, 24);
}
