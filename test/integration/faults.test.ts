// File-system faults: unwritable state, corrupt checkpoints, a pods directory that appears late,
// things that are not regular files where logs are expected, files the agent may not read.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { criLine, Follower, type RunAs, runCli, sleep, tempDir } from '../helpers/cli.ts';
import { NOBODY, shareCli } from '../helpers/run-as.ts';

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

function follow(args: string[], user?: RunAs): Follower {
  const f = new Follower(args, user);
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

// Root reads every file: as root (CI, containers) the CLI runs as `nobody`, from a copy it can reach
// (the checkout may live under a 0700 home); as anyone else, as that user.
const asRoot = process.getuid?.() === 0;

describe('permission denied on one file', () => {
  let user: RunAs | undefined;
  let unshare = async () => {};
  beforeAll(async () => {
    if (asRoot) ({ user, cleanup: unshare } = await shareCli());
  });
  afterAll(() => unshare());

  /** Makes `path` unreadable to the CLI: root's 0600 for `nobody`; 0000 otherwise (an owner reads its own 0600). */
  const lock = (path: string) => chmod(path, asRoot ? 0o600 : 0o000);

  /** Lets the CLI into `dirs` (mkdtemp makes 0700, and the umask may be strict). */
  const openUp = (...dirs: string[]) => Promise.all(dirs.map((d) => chmod(d, 0o755)));

  it('tail --once: one clear warning, the other files flow, exit 0', async () => {
    await writeFile(join(dir, 'open.log'), 'readable line\n');
    await writeFile(join(dir, 'secret.log'), 'never read\n');
    await lock(join(dir, 'secret.log'));
    await openUp(dir);
    const res = await runCli(['tail', '--once', '--from-beginning', join(dir, '*.log')], { user });
    expect(res.code).toBe(0);
    expect(res.docs.map((d) => d.message)).toEqual(['readable line']);
    expect(res.stderr).toMatch(/cannot open .*secret\.log: .*EACCES/);
    expect(res.stderr.split('\n').filter((l) => l.includes('secret.log'))).toHaveLength(1);
  });

  it('the agent reports it once with its path, counts it, reads it once readable, and the other files flow all along', async () => {
    const pods = join(dir, 'pods');
    const pod = join(pods, 'shop_web_0f3c2a91-5b7e-4d2a-9c1e-6a8b4f2d1e03');
    const ctr = join(pod, 'app');
    const state = join(dir, 'state');
    await mkdir(ctr, { recursive: true });
    await mkdir(state);
    if (asRoot) await chown(state, NOBODY, NOBODY);
    await openUp(dir, pods, pod, ctr);
    const open = join(ctr, '0.log');
    const secret = join(ctr, 'secret.log');
    await writeFile(open, criLine(1, 'readable line'));
    await writeFile(secret, criLine(1, 'secret line'));
    await chmod(open, 0o644);
    await lock(secret);
    const scanMs = 100;
    const a = follow(
      [
        'agent',
        '--no-kube',
        '--pods-dir',
        pods,
        '--state-dir',
        state,
        '--http-addr',
        '127.0.0.1:0',
        '--log-format',
        'json',
        '--flush-ms',
        '50',
        '--poll-interval-ms',
        '50',
        '--scan-interval-ms',
        String(scanMs),
      ],
      user,
    );
    const messages = () => a.docs.map((d) => d.message);
    await a.waitFor(() => a.stderr.includes('agent started') && messages().includes('readable line'));
    const url = /"http":"([^"]+)"/.exec(a.stderr)?.[1];
    expect(url).toBeDefined();

    // (d) the other file flows while secret.log is unreadable; its lines are spread over many scans,
    // each of which tries secret.log again
    for (let i = 1; i <= 3; i++) {
      await appendFile(open, criLine(1 + i, `while locked ${i}`));
      await sleep(3 * scanMs);
    }
    await a.waitFor(() => messages().includes('while locked 3'));
    expect(messages()).toEqual(['readable line', 'while locked 1', 'while locked 2', 'while locked 3']);

    // (a) reported once, with its path, however many scans retried it
    const reports = a.stderr.split('\n').filter((l) => l.includes('secret.log'));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toContain(secret);
    expect(reports[0]).toMatch(/cannot open .*secret\.log: .*EACCES/);

    // (b) counted once in the metric, not at every retry
    expect(await unreadableTotal(url!)).toBe(1);

    // (c) read once its permissions let the agent in
    await chmod(secret, 0o644);
    await a.waitFor(() => messages().includes('secret line'));
    expect(a.docs.find((d) => d.message === 'secret line')?.log.file.path).toBe(secret);
    await appendFile(open, criLine(5, 'after'));
    await a.waitFor(() => messages().includes('after'));
    // becoming readable again is not one more failure
    expect(await unreadableTotal(url!)).toBe(1);
    expect(await a.stop()).toBe(0);
  });
});

/** The agent's logferry_files_unreadable_total{code="EACCES"} (0 when it has no such sample). */
async function unreadableTotal(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^logferry_files_unreadable_total\{code="EACCES"\} (\d+)$/m.exec(text);
  return m === null ? 0 : Number(m[1]);
}
