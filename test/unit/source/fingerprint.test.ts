import { describe, expect, it } from 'vitest';
import { FINGERPRINT_WINDOW, fileId, fingerprintBytes } from '../../../src/source/fingerprint.ts';

const empty = fingerprintBytes(Buffer.alloc(0), 0);
const full = fingerprintBytes(Buffer.alloc(FINGERPRINT_WINDOW, 'x'), FINGERPRINT_WINDOW);

describe('fileId', () => {
  it('tells apart two files that had the same device and inode (an inode reused at once)', () => {
    expect(fileId(1, 2, 1000.5, empty)).not.toBe(fileId(1, 2, 1000.9, empty));
  });

  it('is stable for one file: same device, inode and birth time', () => {
    expect(fileId(1, 2, 1000.5, empty)).toBe(fileId(1, 2, 1000.5, full));
  });

  it('without a birth time, uses a full fingerprint, and a random part for a shorter file', () => {
    expect(fileId(1, 2, 0, full)).toBe(fileId(1, 2, 0, full));
    expect(fileId(1, 2, 0, empty)).not.toBe(fileId(1, 2, 0, empty));
  });
});
