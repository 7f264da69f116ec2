import { createHash } from 'node:crypto';
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
 * A file's id for document ids: its device, inode and fingerprint when first seen, so two files
 * with identical first lines (a crash-looping container's restarts) never share ids. It is stored in
 * the checkpoint and reused when the file is recognised again, so re-sends keep their ids.
 */
export function fileId(dev: number, ino: number, fingerprint: string): string {
  return createHash('sha256').update(`${dev}:${ino}:${fingerprint}`).digest('hex').slice(0, 24);
}
