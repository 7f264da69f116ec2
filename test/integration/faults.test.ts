// File-system faults: unwritable state, corrupt checkpoints, a pods directory that appears late,
// things that are not regular files where logs are expected.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import {
  appendFile,
  chmod,
  chown,
  copyFile,
  mkdir,
  readdir,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, criLine, Follower, runCli, sleep, tempDir } from '../helpers/cli.ts';

let dir: string;
let cleanup: () => Promise<void>;
const followers: Follower[] = [];

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  await Promise.all(followers.splice(0).map((f) => f.stop('SIGKILL')));
  await cleanup();
});

/** Whether a user other than the owner can read `path` (every directory above it searchable). */
function othersCanRead(path: string): boolean {
  if ((statSync(path).mode & 0o004) === 0) return false;
  for (let d = dirname(path); ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return false;
    if (d === dirname(d)) return true;
  }
}

function follow(args: string[]): Follower {
  const f = new Follower(args);
  followers.push(f);
  return f;
}

describe('file-system faults', () => {
  it('an unwritable positions file: one clear warning, shipping goes on, saving is retried until it works', async () => {
    const log = join(dir, 'a.log');
    await writeFile(log, '');
    // the positions file's directory is a regular file: every save fails (EEXIST from mkdir)
    const stateDir = join(dir, 'state');
    await writeFile(stateDir, 'not a directory');
    const positions = join(stateDir, 'positions.json');
    const t = follow(['tail', '--poll-interval-ms', '50', '--positions', positions, log]);
    await t.opened(log);
    await appendFile(log, 'one\ntwo\n');
    await t.waitForCount(2);
    await sleep(2500);
    const warnings = t.stderr.split('\n').filter((l) => l.includes('cannot save positions'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /cannot save positions to .*: E[A-Z]+.*shipping goes on, retrying every 1000 ms/,
    );
    await rm(stateDir);
    await mkdir(stateDir);
    await appendFile(log, 'three\n');
    await t.waitForCount(3);
    for (let i = 0; i < 50 && !existsSync(positions); i++) await sleep(100);
    expect(JSON.parse(await readFile(positions, 'utf8')).files[0].offset).toBe(14);
    await t.waitFor(() => t.stderr.includes('positions saved'));
    expect(await t.stop()).toBe(0);
  });

  it('a corrupt positions file is set aside with a warning, never a crash', async () => {
    const log = join(dir, 'a.log');
    const positions = join(dir, 'positions.json');
    await writeFile(log, 'one\ntwo\n');
    await writeFile(positions, '{"format":"logferry-positions","version":1,"files":[{"path":');
    const res = await runCli(['tail', '--once', '--from-beginning', '--positions', positions, log]);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/positions file .* is unusable \(invalid JSON.*\); moved to .*\.corrupt-\d+/);
    expect(res.docs.map((d) => d.message)).toEqual(['one', 'two']);
    const kept = (await readdir(dir)).filter((f) => f.startsWith('positions.json.corrupt-'));
    expect(kept).toHaveLength(1);
    expect(JSON.parse(await readFile(positions, 'utf8')).files[0].offset).toBe(8);
  });

  it('a FIFO or a directory where a log file is expected is skipped; the other files flow', async () => {
    execFileSync('mkfifo', [join(dir, 'pipe.log')]);
    await mkdir(join(dir, 'dir.log'));
    await writeFile(join(dir, 'real.log'), 'real line\n');
    const res = await runCli(['tail', '--once', '--from-beginning', join(dir, '*.log')]);
    expect(res.code).toBe(0);
    expect(res.docs.map((d) => d.message)).toEqual(['real line']);
  });

  // As root, the check needs the built CLI to be reachable by `nobody` (not under a 0700 home).
  it.skipIf(process.getuid?.() === 0 && !othersCanRead(BIN))(
    'permission denied on one file: one clear warning, the other files flow',
    async () => {
      await writeFile(join(dir, 'open.log'), 'readable line\n');
      await writeFile(join(dir, 'secret.log'), 'never read\n');
      await chmod(join(dir, 'secret.log'), 0o600);
      await chmod(dir, 0o755);
      // Root reads any file: as root (CI, containers), run the CLI as `nobody`, with a copy of the node
      // binary it can execute (the installed one may live under /root).
      let user: { uid: number; gid: number; node: string } | undefined;
      if (process.getuid?.() === 0) {
        const node = join(dir, 'node');
        await copyFile(process.execPath, node);
        await chmod(node, 0o755);
        await chown(join(dir, 'open.log'), 0, 0);
        user = { uid: 65534, gid: 65534, node };
      }
      const res = await runCli(['tail', '--once', '--from-beginning', join(dir, '*.log')], { user });
      expect(res.code).toBe(0);
      expect(res.docs.map((d) => d.message)).toEqual(['readable line']);
      expect(res.stderr).toMatch(/cannot open .*secret\.log: .*EACCES/);
      // one warning, not one per scan
      expect(res.stderr.split('\n').filter((l) => l.includes('secret.log'))).toHaveLength(1);
    },
  );

  it('the agent ships with a pods directory that appears after it started, and with an unwritable state dir', async () => {
    const pods = join(dir, 'pods');
    const stateDir = join(dir, 'state-is-a-file');
    await writeFile(stateDir, '');
    const t = follow([
      'agent',
      '--no-kube',
      '--pods-dir',
      pods,
      '--state-dir',
      stateDir,
      '--http-addr',
      '127.0.0.1:0',
      '--log-format',
      'text',
      '--poll-interval-ms',
      '50',
    ]);
    await t.waitFor(() => t.stderr.includes('agent started'), 20_000);
    expect(t.stderr).toMatch(/state directory .* cannot be written .*shipping without a lock/);
    await sleep(300);
    const ctr = join(pods, 'shop_web_0f3c2a91-5b7e-4d2a-9c1e-6a8b4f2d1e03', 'app');
    await mkdir(ctr, { recursive: true });
    await writeFile(join(ctr, '0.log'), criLine(1, 'from a late pods dir'));
    await t.waitForCount(1, 15_000);
    expect(t.docs[0]).toMatchObject({ message: 'from a late pods dir', kubernetes: { namespace: 'shop' } });
    expect(await t.stop()).toBe(0);
  });
});
