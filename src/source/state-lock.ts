import { readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LogferryError, UsageError } from '../errors.ts';

export interface StateLock {
  readonly path: string;
  release(): Promise<void>;
}

interface LockBody {
  pid: number;
  host: string;
  startedMs: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One agent per state directory: two would each advance checkpoints the other does not see. The
 * lock file names the holder (pid, host) and is touched every `heartbeatMs`. A lock is taken over
 * when its holder is gone: on this host, a pid that is not running (or our own pid: a restarted
 * container is pid 1 again); from another host (another pod sharing the hostPath), a heartbeat older
 * than `staleMs`.
 */
export async function acquireStateLock(
  dir: string,
  opts: { staleMs?: number; heartbeatMs?: number; warn?: (m: string) => void } = {},
): Promise<StateLock> {
  const staleMs = opts.staleMs ?? 15_000;
  const heartbeatMs = opts.heartbeatMs ?? 3_000;
  const path = join(dir, 'logferry.lock');
  const me: LockBody = { pid: process.pid, host: hostname(), startedMs: Date.now() };
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    let held: LockBody | undefined;
    try {
      held = JSON.parse(text) as LockBody;
    } catch {
      held = undefined;
    }
    if (held !== undefined && typeof held.pid === 'number' && typeof held.host === 'string') {
      const fresh = Date.now() - st.mtimeMs < staleMs;
      const busy = held.host === me.host ? held.pid !== me.pid && alive(held.pid) : fresh;
      if (busy) {
        throw new UsageError(
          `state directory ${dir} is in use by another logferry (pid ${held.pid} on ${held.host}); ` +
            'run one agent per state directory (--state-dir)',
        );
      }
      opts.warn?.(`taking over the stale lock of pid ${held.pid} on ${held.host} in ${dir}`);
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new UsageError(
        `state directory ${dir}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? err})`,
      );
    }
  }
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(me)}\n`);
    await rename(tmp, path);
  } catch (err) {
    throw new LogferryError(
      'LOGFERRY_ERR_STATE_DIR_UNWRITABLE',
      `state directory ${dir} is not writable (${(err as NodeJS.ErrnoException).code ?? err})`,
      { cause: err },
    );
  }
  const timer = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => {});
  }, heartbeatMs);
  timer.unref();
  return {
    path,
    async release() {
      clearInterval(timer);
      try {
        const held = JSON.parse(await readFile(path, 'utf8')) as LockBody;
        if (held.pid === me.pid && held.host === me.host && held.startedMs === me.startedMs)
          await unlink(path);
      } catch {
        // already gone or taken over
      }
    },
  };
}
