import { execFileSync } from 'node:child_process';
import { appendFile, mkdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeElasticsearch } from '../fakes/fake-elasticsearch.ts';
import { type Doc, Follower, sleep, tempDir } from '../helpers/cli.ts';
import {
  allDelivered,
  closed,
  createReusing,
  inodeOf,
  isOpen,
  notExactlyOnce,
  positionsReach,
  TokenLines,
  tokenOf,
  type Written,
} from '../helpers/inode-reuse.ts';

// ext4 hands a freed inode number to the next file created in the same block group. These tests
// make that happen on purpose (createReusing checks with stat that the number recurred, and fails
// if the file system does not cooperate) and require every written line exactly once.

let dir: string;
let logs: string;
let cleanup: () => Promise<void>;
const followers: Follower[] = [];

function follow(args: string[]): Follower {
  const f = new Follower(['tail', '--poll-interval-ms', '50', ...args]);
  followers.push(f);
  return f;
}

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('logferry-inode-reuse-'));
  logs = join(dir, 'logs');
  await mkdir(logs);
  // the positions file lives elsewhere: it is rewritten by rename, which allocates inodes too
  await mkdir(join(dir, 'state'));
});
afterEach(async () => {
  await Promise.all(followers.splice(0).map((f) => f.stop('SIGKILL')));
  await cleanup();
});

/** How long delivery of everything may take before the test looks at what did arrive. */
const DELIVERY_MS = 15_000;
/**
 * After everything arrived, the agent runs this much longer before it is stopped: long enough for
 * a periodic scan (every second) and many polls, so that a wrong re-read has its chance to show as
 * a duplicate. Not an assertion on time.
 */
const SETTLE_MS = 1500;

/** Waits for every token, but lets a timeout through: the exactly-once check then says which are lost. */
async function deliveredOrTimeout(f: Follower, tokens: readonly string[]): Promise<void> {
  await f.waitFor((d) => allDelivered(d, tokens), DELIVERY_MS).catch(() => {});
  await sleep(SETTLE_MS);
}

/** The tokens of some batches of lines (what a restarted agent still owes). */
function tokensOf(...batches: { lines: Written[] }[]): string[] {
  return batches.flatMap((b) => b.lines.map((l) => l.token));
}

/** Lines whose document is missing or does not carry the offset the line has in its file. */
function wrongOffsets(docs: readonly Doc[], lines: readonly Written[]): string[] {
  const offsets = new Map(docs.map((d) => [tokenOf(d), d.log.offset]));
  return lines
    .filter((l) => offsets.get(l.token) !== l.offset)
    .map((l) => `${l.token}: ${offsets.get(l.token)} instead of ${l.offset}`);
}

/**
 * Writes `count` lines to a new `live`, follows it until they are delivered and saved in the
 * positions, then SIGKILLs the follower: what a restart must not send again.
 */
async function shipThenKill(
  live: string,
  positions: string,
  args: string[],
  tok: TokenLines,
  count: number,
): Promise<{ first: ReturnType<TokenLines['make']>; ino: number; follower: Follower }> {
  const first = tok.make(count);
  await writeFile(live, first.text);
  const ino = await inodeOf(live);
  const follower = follow(args);
  await follower.waitFor((d) => allDelivered(d, tok.tokens));
  // everything delivered is in the saved positions: the kill re-sends nothing
  await positionsReach(positions, live, ino, first.bytes);
  await follower.stop('SIGKILL');
  return { first, ino, follower };
}

describe('inode reuse (forced on ext4): every line exactly once', () => {
  it('a file rotated and gzipped while stopped, its inode taken by the new 0.log: the rest comes from the .gz (issue #12)', async () => {
    const live = join(logs, '0.log');
    const rotated1 = `${live}.20261122-000001`;
    const rotated2 = `${live}.20261122-000002`;
    const positions = join(dir, 'state', 'positions.json');
    const args = ['--from-beginning', '--positions', positions, `${live}*`];
    const tok = new TokenLines('gz');

    const { first, ino: inoA, follower: t1 } = await shipThenKill(live, positions, args, tok, 30);

    // while logferry is down: more lines (unshipped), then kubelet rotates twice and compresses
    const rest = tok.make(30, first.bytes);
    await appendFile(live, rest.text);
    await rename(live, rotated1);
    const second = tok.make(30);
    await writeFile(live, second.text);
    // gzip writes <file>.gz, then unlinks the plain file: inode A is free
    execFileSync('gzip', [rotated1]);
    await rename(live, rotated2);
    const third = tok.make(30);
    await createReusing(live, inoA, third.text);

    const t2 = follow(args);
    await deliveredOrTimeout(t2, tokensOf(rest, second, third));
    expect(await t2.stop()).toBe(0);

    expect(notExactlyOnce([...t1.docs, ...t2.docs], tok.tokens)).toEqual([]);
    expect(t2.stderr.split('\n').filter((l) => l.includes(`${rotated1}.gz`))).toEqual([
      expect.stringContaining('rotated and compressed'),
    ]);
    // the recovered lines keep the offsets they had in the plain file (document ids derive from them)
    expect(wrongOffsets(t2.docs, [...rest.lines, ...second.lines, ...third.lines])).toEqual([]);
  });

  it('a file created, rotated and gzipped while stopped (no checkpoint of it) is read from its start, once (chaos seed 43)', async () => {
    const live = join(logs, '0.log');
    const rotated = (n: number) => `${live}.20261122-00000${n}`;
    const positions = join(dir, 'state', 'positions.json');
    const args = ['--from-beginning', '--positions', positions, `${live}*`];
    const tok = new TokenLines('born');
    // compressed history from before the first run: no run ships it
    const history = new TokenLines('history');
    await writeFile(rotated(0), history.make(10).text);
    execFileSync('gzip', [rotated(0)]);

    const { follower: t1 } = await shipThenKill(live, positions, args, tok, 20);

    // while logferry is down, three rotations: B is born, rotated and gzipped (its inode then taken
    // by the next 0.log), C is born and rotated, D is the new 0.log
    await rename(live, rotated(1));
    const second = tok.make(20);
    await writeFile(live, second.text);
    const inoB = await inodeOf(live);
    await rename(live, rotated(2));
    execFileSync('gzip', [rotated(1)]);
    const third = tok.make(20);
    await writeFile(live, third.text);
    await rename(live, rotated(3));
    execFileSync('gzip', [rotated(2)]);
    const fourth = tok.make(20);
    await createReusing(live, inoB, fourth.text);

    const t2 = follow(args);
    await deliveredOrTimeout(t2, tokensOf(second, third, fourth));
    expect(await t2.stop()).toBe(0);
    expect(t2.stderr.split('\n').filter((l) => l.includes(`${rotated(2)}.gz`))).toEqual([
      expect.stringContaining('created, rotated and compressed while logferry was stopped'),
    ]);

    // another restart: the recovered file is known by its saved checkpoint, nothing is sent again
    const fifth = tok.make(5, fourth.bytes);
    await appendFile(live, fifth.text);
    const t3 = follow(args);
    await deliveredOrTimeout(t3, tokensOf(fifth));
    expect(await t3.stop()).toBe(0);

    const docs = [...t1.docs, ...t2.docs, ...t3.docs];
    expect(notExactlyOnce(docs, tok.tokens)).toEqual([]);
    expect(docs.filter((d) => tokenOf(d)?.startsWith('history-'))).toEqual([]);
    // B's lines carry their offsets in B (document ids derive from them)
    expect(wrongOffsets(t2.docs, second.lines)).toEqual([]);
  });

  it('two files born and gzipped while stopped, a kill while the first is read and the second waits: both arrive once', async () => {
    // the 30-minute chaos run (seed 43, third try) lost such files: the waiting one's identity was
    // saved only when its turn came, and the killed run's saves made it look older than them
    const es = await startFakeElasticsearch();
    try {
      const live = join(logs, '0.log');
      const rotated = (n: number) => `${live}.20261122-00000${n}`;
      const positions = join(dir, 'state', 'positions.json');
      const args = [
        '--from-beginning',
        '--positions',
        positions,
        '--es',
        es.url,
        '--index',
        'gz',
        `${live}*`,
      ];
      const tok = new TokenLines('queued');
      const stored = () => es.docs('gz').map((d) => d.source as unknown as Doc);
      const shipped = async (tokens: readonly string[]) => {
        for (let i = 0; i < DELIVERY_MS / 50 && !allDelivered(stored(), tokens); i++) await sleep(50);
      };

      const first = tok.make(10);
      await writeFile(live, first.text);
      const t1 = follow(args);
      await shipped(tokensOf(first));
      expect(await t1.stop()).toBe(0);

      // while stopped: B and C are born, rotated and gzipped; D is the new 0.log
      const b = tok.make(3000);
      await rename(live, rotated(1));
      await writeFile(live, b.text);
      await rename(live, rotated(2));
      execFileSync('gzip', [rotated(2)]);
      const c = tok.make(20);
      await writeFile(live, c.text);
      await rename(live, rotated(3));
      execFileSync('gzip', [rotated(3)]);
      const d = tok.make(5);
      await writeFile(live, d.text);

      // Elasticsearch refuses everything: the first recovery cannot finish, the second waits its turn
      es.fault({ kind: 'status', status: 503 });
      const t2 = follow(args);
      await t2.waitFor(() => /created, rotated and compressed while logferry was stopped/.test(t2.stderr));
      await sleep(1500);
      await t2.stop('SIGKILL');

      es.clearFaults();
      const t3 = follow(args);
      const all = tokensOf(first, b, c, d);
      await shipped(all);
      await sleep(SETTLE_MS);
      expect(await t3.stop()).toBe(0);
      expect(notExactlyOnce(stored(), all)).toEqual([]);
    } finally {
      await es.close();
    }
  });

  it('restart after a rename rotation, the new 0.log on the inode of a deleted, fully shipped file', async () => {
    const live = join(logs, '0.log');
    const rotated = `${live}.1`;
    const old = join(logs, 'old.log');
    const positions = join(dir, 'state', 'positions.json');
    const args = ['--from-beginning', '--positions', positions, join(logs, '*.log*')];
    const tok = new TokenLines('sibling');

    const oldLines = tok.make(20);
    await writeFile(old, oldLines.text);
    const first = tok.make(30);
    await writeFile(live, first.text);
    const inoA = await inodeOf(live);
    const inoO = await inodeOf(old);
    const t1 = follow(args);
    await t1.waitFor((d) => allDelivered(d, tok.tokens));
    await positionsReach(positions, old, inoO, oldLines.bytes);
    await positionsReach(positions, live, inoA, first.bytes);
    expect(await t1.stop()).toBe(0);

    const rest = tok.make(30, first.bytes);
    await appendFile(live, rest.text);
    await rename(live, rotated);
    expect(await inodeOf(rotated)).toBe(inoA);
    await rm(old);
    const fresh = tok.make(30);
    await createReusing(live, inoO, fresh.text);

    const t2 = follow(args);
    await deliveredOrTimeout(t2, tokensOf(rest, fresh));
    expect(await t2.stop()).toBe(0);

    expect(notExactlyOnce([...t1.docs, ...t2.docs], tok.tokens)).toEqual([]);
    expect(wrongOffsets(t2.docs, [...rest.lines, ...fresh.lines])).toEqual([]);
  });

  it('delete + create while running: the new file on the released inode is read from 0', async () => {
    const a = join(logs, 'a.log');
    const tok = new TokenLines('recreate');

    const first = tok.make(20);
    await writeFile(a, first.text);
    const inoA = await inodeOf(a);
    const t = follow(['--from-beginning', join(logs, '*.log')]);
    await t.waitFor((d) => allDelivered(d, tok.tokens));
    await rm(a);
    // the deleted file is kept open for the rotation grace period (2 s, no flag for it)
    await closed(t.child.pid!, a);
    // longer than the first file: read from the old offset, its first lines would be lost
    const second = tok.make(30);
    await createReusing(a, inoA, second.text);

    await deliveredOrTimeout(t, tok.tokens);
    expect(await t.stop()).toBe(0);

    expect(notExactlyOnce(t.docs, tok.tokens)).toEqual([]);
    expect(wrongOffsets(t.docs, second.lines)).toEqual([]);
  });

  it('copytruncate with the copy on the inode of a released file: only the new lines are sent', async () => {
    const a = join(logs, 'a.log');
    const b = join(logs, 'b.log');
    // not matched by the pattern: its lines were shipped from a.log already
    const copy = `${a}.1`;
    const tok = new TokenLines('copytruncate');

    const aLines = tok.make(30);
    await writeFile(a, aLines.text);
    const bLines = tok.make(20);
    await writeFile(b, bLines.text);
    const inoB = await inodeOf(b);
    const t = follow(['--from-beginning', join(logs, '*.log')]);
    await t.waitFor((d) => allDelivered(d, tok.tokens));
    await rm(b);
    await closed(t.child.pid!, b);

    await createReusing(copy, inoB, await readFile(a));
    await truncate(a, 0);
    // fewer bytes than a.log had: the agent sees it shrink whenever its poll comes
    const after1 = tok.make(5);
    expect(after1.bytes).toBeLessThan(aLines.bytes);
    await appendFile(a, after1.text);
    await t.waitFor((d) => allDelivered(d, tok.tokens));
    const after2 = tok.make(40, after1.bytes);
    await appendFile(a, after2.text);

    await deliveredOrTimeout(t, tok.tokens);
    expect(await t.stop()).toBe(0);

    expect(notExactlyOnce(t.docs, tok.tokens)).toEqual([]);
    expect(wrongOffsets(t.docs, [...after1.lines, ...after2.lines])).toEqual([]);
  });

  it('a parked file deleted and recreated on its own inode is read from 0, not from the old offset', async () => {
    const p = join(logs, 'p.log');
    const q = join(logs, 'q.log');
    const tok = new TokenLines('parked');

    const pLines = tok.make(20);
    await writeFile(p, pLines.text);
    const inoP = await inodeOf(p);
    const t = follow(['--from-beginning', '--max-open-files', '1', join(logs, '*.log')]);
    await t.waitFor((d) => allDelivered(d, tok.tokens));
    // one descriptor: opening q parks p, which is read to its end and quiet
    const qLines = tok.make(20);
    await writeFile(q, qLines.text);
    await t.waitFor((d) => allDelivered(d, tok.tokens));
    await closed(t.child.pid!, p);
    expect(await isOpen(t.child.pid!, q)).toBe(true);

    await rm(p);
    // larger than the old p.log: the scan sees it "grown", as a reopen of the parked file
    const bigger = tok.make(40);
    await createReusing(p, inoP, bigger.text);

    await deliveredOrTimeout(t, tok.tokens);
    expect(await t.stop()).toBe(0);

    expect(notExactlyOnce(t.docs, tok.tokens)).toEqual([]);
    expect(wrongOffsets(t.docs, bigger.lines)).toEqual([]);
  });
});
