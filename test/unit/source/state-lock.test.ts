import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/errors.ts';
import { acquireStateLock } from '../../../src/source/state-lock.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'logferry-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lockFile = () => join(dir, 'logferry.lock');

describe('acquireStateLock', () => {
  it('takes a free directory and releases it', async () => {
    const lock = await acquireStateLock(dir);
    expect(JSON.parse(await readFile(lockFile(), 'utf8'))).toMatchObject({
      pid: process.pid,
      host: hostname(),
    });
    await lock.release();
    await expect(readFile(lockFile())).rejects.toThrow(/ENOENT/);
  });

  it.each([
    ['a live process on this host', { pid: process.ppid, host: hostname() }, true],
    ['a dead process on this host', { pid: 2 ** 22 + 12345, host: hostname() }, false],
    ['this very pid (a restarted container is pid 1 again)', { pid: process.pid, host: hostname() }, false],
    ['another host with a fresh heartbeat', { pid: 1, host: 'other-pod' }, true],
    ['garbage', 'not json', false],
  ])('a lock held by %s: refused=%s', async (_label, body, refused) => {
    await writeFile(lockFile(), typeof body === 'string' ? body : JSON.stringify({ ...body, startedMs: 1 }));
    const attempt = acquireStateLock(dir);
    if (refused) await expect(attempt).rejects.toThrow(UsageError);
    else await (await attempt).release();
  });

  it('another host whose heartbeat is stale is taken over', async () => {
    await writeFile(lockFile(), JSON.stringify({ pid: 1, host: 'other-pod', startedMs: 1 }));
    const lock = await acquireStateLock(dir, { staleMs: 0 });
    await lock.release();
  });
});
