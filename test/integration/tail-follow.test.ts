import { spawn } from 'node:child_process';
import { appendFile, mkdir, open, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, criLine, type Doc, Follower, parseDocs, runCli, sleep, tempDir } from '../helpers/cli.ts';

let dir: string;
let cleanup: () => Promise<void>;
const followers: Follower[] = [];

function follow(args: string[]): Follower {
  const f = new Follower(['tail', '--poll-interval-ms', '50', ...args]);
  followers.push(f);
  return f;
}

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  await Promise.all(followers.splice(0).map((f) => f.stop('SIGKILL')));
  await cleanup();
});

const messages = (docs: Doc[]) => docs.map((d) => d.message);

describe('logferry tail (follow mode)', () => {
  it('follows appends to existing files and picks up files and directories created later', async () => {
    const a = join(dir, 'a.log');
    await writeFile(a, 'before start\n');
    const t = follow([join(dir, '**', '*.log')]);
    await t.opened(a);
    await appendFile(a, 'a1\n');
    await t.waitForCount(1);
    await mkdir(join(dir, 'ns_pod_uid', 'ctr'), { recursive: true });
    await writeFile(join(dir, 'ns_pod_uid', 'ctr', '0.log'), criLine(1, 'from a new pod'));
    await t.waitForCount(2);
    expect(messages(t.docs)).toEqual(['a1', 'from a new pod']);
    expect(await t.stop()).toBe(0);
  });

  it('waits for a path that does not exist yet, with a warning', async () => {
    const p = join(dir, 'later.log');
    const t = follow([p]);
    // The warning comes from the path check, the first scan later (after the output and workers are
    // built): a file created in between counts as existing at start and is read from its end. On a loaded
    // machine a fixed 300 ms sleep fell in that window (0 documents). Wait for the warning, then a scan.
    await t.waitFor(() => t.stderr.includes('does not exist yet'));
    await sleep(1500);
    await writeFile(p, 'hello\n');
    await t.waitForCount(1);
    expect(await t.stop()).toBe(0);
  });

  it('rename rotation in the middle of a line: the old file is drained, the new one read from 0', async () => {
    const p = join(dir, '0.log');
    await writeFile(p, '');
    const t = follow([p]);
    await t.opened(p);
    const writer = await open(p, 'a');
    await writer.write('one\ntwo\nthr');
    await t.waitForCount(2);
    await rename(p, `${p}.20261122-010203`);
    // the writer still holds the old file: its late bytes finish the line there
    await writer.write('ee\nfour\n');
    await writer.close();
    await writeFile(p, 'new-1\nnew-2\n');
    await t.waitForCount(6);
    await sleep(300);
    const old = t.docs.filter((d) => d.message.length < 6 && !d.message.startsWith('new'));
    expect(messages(old)).toEqual(['one', 'two', 'three', 'four']);
    expect(messages(t.docs.filter((d) => d.message.startsWith('new')))).toEqual(['new-1', 'new-2']);
    expect(t.docs.filter((d) => d.message === 'new-1')[0]?.log.offset).toBe(0);
    expect(t.docs).toHaveLength(6);
    expect(await t.stop()).toBe(0);
  });

  it('copytruncate: when the file shrinks below the offset, reading restarts at 0', async () => {
    const p = join(dir, 'app.log');
    await writeFile(p, '');
    const t = follow([p]);
    await t.opened(p);
    await appendFile(p, 'a fairly long first line\nanother fairly long line\n');
    await t.waitForCount(2);
    await truncate(p, 0);
    await appendFile(p, 'after truncate\n');
    await t.waitForCount(3);
    expect(t.docs[2]).toMatchObject({ message: 'after truncate', log: { offset: 0 } });
    expect(await t.stop()).toBe(0);
  });

  it('a deleted file with unread bytes is still read to its end', async () => {
    const p = join(dir, 'big.log');
    const total = 20_000;
    await writeFile(p, Array.from({ length: total }, (_, i) => `line ${i} ${'x'.repeat(80)}\n`).join(''));
    // stdout is a pipe nobody reads: the 64 KiB budget fills and reading pauses mid-file
    const child = spawn(
      process.execPath,
      [BIN, 'tail', '--from-beginning', '--poll-interval-ms', '50', '--max-buffer-bytes', '64KiB', p],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout.pause();
    await sleep(1000);
    await rm(p);
    await sleep(500);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stdout.resume();
    const deadline = Date.now() + 20_000;
    while (out.split('\n').length - 1 < total && Date.now() < deadline) await sleep(100);
    child.kill('SIGTERM');
    await new Promise((r) => child.on('close', r));
    const docs = parseDocs(out);
    expect(docs).toHaveLength(total);
    expect(docs.at(-1)?.message).toMatch(/^line 19999 /);
  });

  it('inode reuse: a checkpoint for the same device and inode with another fingerprint is not applied', async () => {
    const p = join(dir, 'x.log');
    const positions = join(dir, 'positions.json');
    await writeFile(p, 'fresh file line one\nline two\n');
    const st = await stat(p);
    // as if an earlier file with this inode had been read up to offset 20
    await writeFile(
      positions,
      JSON.stringify({
        format: 'logferry-positions',
        version: 1,
        files: [
          {
            path: p,
            dev: st.dev,
            ino: st.ino,
            id: 'old',
            fingerprint: '00000000000000000000000000000000',
            fingerprintBytes: 29,
            offset: 20,
            seenMs: Date.now(),
          },
        ],
      }),
    );
    const res = await runCli(['tail', '--once', '--positions', positions, p]);
    expect(res.code).toBe(0);
    // not resumed at 20, and not started at the end either: it is a new file, read from 0
    expect(messages(res.docs)).toEqual(['fresh file line one', 'line two']);
  });

  it('a delete + create at the same path is read from 0 even when the inode is reused', async () => {
    const p = join(dir, 'reuse.log');
    await writeFile(p, '');
    const t = follow([p]);
    await t.opened(p);
    await appendFile(p, 'first generation line\n');
    await t.waitForCount(1);
    await rm(p);
    await writeFile(p, 'second generation\n');
    await t.waitForCount(2);
    expect(t.docs[1]).toMatchObject({ message: 'second generation', log: { offset: 0 } });
    expect(await t.stop()).toBe(0);
  });

  it('with more files than --max-open-files, quiet files are parked and reopened: every line arrives', async () => {
    const n = 60;
    const paths = Array.from({ length: n }, (_, i) => join(dir, `f${i}.log`));
    await Promise.all(paths.map((p) => writeFile(p, '')));
    // --from-beginning: lines written before a file is first opened count too (no start-up race)
    const t = follow(['--from-beginning', '--max-open-files', '10', join(dir, '*.log')]);
    for (let round = 0; round < 3; round++) {
      for (const [i, p] of paths.entries()) await appendFile(p, `f${i} r${round}\n`);
      await sleep(300);
    }
    await t.waitForCount(n * 3, 30_000);
    const unique = new Set(messages(t.docs));
    expect(unique.size).toBe(n * 3);
    expect(t.docs).toHaveLength(n * 3);
    expect(await t.stop()).toBe(0);
  });

  it('SIGTERM saves positions: a restart repeats nothing and misses nothing', async () => {
    const p = join(dir, 's.log');
    const positions = join(dir, 'pos.json');
    await writeFile(p, '');
    const t1 = follow(['--positions', positions, p]);
    await t1.opened(p);
    await appendFile(p, 'a\nb\n');
    await t1.waitForCount(2);
    expect(await t1.stop('SIGTERM')).toBe(0);
    await appendFile(p, 'c\n');
    const t2 = follow(['--positions', positions, p]);
    await t2.waitForCount(1);
    await appendFile(p, 'd\n');
    await t2.waitForCount(2);
    await sleep(200);
    expect(messages(t2.docs)).toEqual(['c', 'd']);
    const saved = JSON.parse(await readFile(positions, 'utf8'));
    expect(saved.version).toBe(1);
  });
});
