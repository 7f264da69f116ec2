import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gzFingerprint } from '../../../src/source/gz-recovery.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'logferry-gz-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('gzFingerprint', () => {
  it('fingerprints the decompressed head as the plain file was', async () => {
    const plain = join(dir, 'a.log');
    await writeFile(plain, 'x'.repeat(2000));
    execFileSync('gzip', ['-k', plain]);
    const fp = await gzFingerprint(`${plain}.gz`, 1024);
    expect(fp.fingerprintBytes).toBe(1024);
  });

  it('a file pruned before it is opened is an error of the call (it stopped the agent as an unhandled stream error)', async () => {
    await expect(gzFingerprint(join(dir, 'gone.log.gz'), 1024)).rejects.toThrow(/ENOENT/);
  });
});
