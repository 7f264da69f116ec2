import { open, readdir, readFile, readlink, realpath, rename, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { criLine, type Doc, sleep } from './cli.ts';

/**
 * Helpers that make the file system hand a freed inode number to a new file on purpose, so that
 * tests meet inode reuse every run instead of by chance (issue #12).
 */

export async function inodeOf(path: string): Promise<number> {
  return (await stat(path)).ino;
}

let probes = 0;

/**
 * Creates `path` with `content` on the inode number `freedIno`, which the caller has just freed
 * (unlinked, no descriptor left in any process). ext4 gives a new file the lowest free inode of
 * its directory's block group, so the freed number comes back at once unless a lower one is free
 * too (a file deleted earlier, another test's clean-up). Each attempt creates a probe file in the
 * same directory under a name no test pattern matches (`*.pad`); a probe that got another number
 * is kept, filling that lower hole, and the next attempt tries again. Deleting and recreating
 * would get the same lower number every time. The probe that gets `freedIno` is filled and renamed
 * to `path` (a rename keeps the inode), so a running agent never sees a file at `path` on another
 * inode. Throws, never skips, when the file system does not cooperate.
 */
export async function createReusing(
  path: string,
  freedIno: number,
  content: string | Buffer,
  attempts = 20,
): Promise<void> {
  const got: number[] = [];
  for (let i = 0; i < attempts; i++) {
    const probe = join(dirname(path), `reuse-probe-${process.pid}-${probes++}.pad`);
    const fh = await open(probe, 'wx');
    let ino: number;
    try {
      ino = (await fh.stat()).ino;
      if (ino === freedIno) await fh.writeFile(content);
    } finally {
      await fh.close();
    }
    if (ino === freedIno) {
      await rename(probe, path);
      const now = await inodeOf(path);
      if (now !== freedIno) throw new Error(`${path} has inode ${now} after the rename, not ${freedIno}`);
      return;
    }
    got.push(ino);
  }
  throw new Error(
    `inode ${freedIno} was not reused for ${path} in ${attempts} attempts (new files got ${got.join(', ')}): ` +
      'the test needs ext4 (or another file system that reuses freed inode numbers at once), and the ' +
      'freed file must not be open in any process',
  );
}

/** The targets of the process's open descriptors (a deleted file reads `<path> (deleted)`). */
async function openTargets(pid: number): Promise<string[]> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  const links = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return links.filter((l) => l.length > 0);
}

/**
 * Resolves once process `pid` holds no descriptor of the file that is or was at `path` (also not
 * as `<path> (deleted)`): only then is its inode free for reuse.
 */
export async function closed(pid: number, path: string, timeoutMs = 20_000): Promise<void> {
  const target = join(await realpath(dirname(path)), basename(path));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const links = await openTargets(pid);
    if (!links.some((l) => l === target || l === `${target} (deleted)`)) return;
    if (Date.now() > deadline) {
      throw new Error(`process ${pid} still holds ${path} open after ${timeoutMs} ms: ${links.join(', ')}`);
    }
    await sleep(20);
  }
}

/** Whether process `pid` holds the file at `path` open now. */
export async function isOpen(pid: number, path: string): Promise<boolean> {
  const target = join(await realpath(dirname(path)), basename(path));
  return (await openTargets(pid)).includes(target);
}

interface PositionsEntry {
  path: string;
  ino: number;
  offset: number;
}

/** Resolves once the positions file has an entry for `path` on inode `ino` at `offset`. */
export async function positionsReach(
  file: string,
  path: string,
  ino: number,
  offset: number,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no positions file';
  for (;;) {
    try {
      const doc = JSON.parse(await readFile(file, 'utf8')) as { files: PositionsEntry[] };
      const e = doc.files.find((x) => x.path === path && x.ino === ino);
      if (e?.offset === offset) return;
      last = JSON.stringify(doc.files);
    } catch (err) {
      // written by rename, so never torn; missing before the first save
      last = String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(`positions never showed ${path} (inode ${ino}) at offset ${offset}: ${last}`);
    }
    await sleep(50);
  }
}

/** A line written to a log file: its unique token and the byte offset where it starts. */
export interface Written {
  token: string;
  offset: number;
}

/**
 * Makes CRI lines with unique tokens (`tok=<scenario>-<n>`) and remembers every token handed out,
 * so a test can require each one delivered exactly once.
 */
export class TokenLines {
  readonly tokens: string[] = [];
  #n = 0;
  readonly #scenario: string;

  constructor(scenario: string) {
    this.#scenario = scenario;
  }

  /** `count` lines for a file whose current size is `startOffset`: the text and where each line starts. */
  make(count: number, startOffset = 0): { text: string; lines: Written[]; bytes: number } {
    let text = '';
    const lines: Written[] = [];
    let offset = startOffset;
    for (let i = 0; i < count; i++) {
      const n = this.#n++;
      const token = `${this.#scenario}-${n}`;
      // padding makes the first KiB (the fingerprint window) hold only a dozen lines
      const line = criLine(n, `tok=${token} ${'x'.repeat(60)}`);
      this.tokens.push(token);
      lines.push({ token, offset });
      text += line;
      offset += Buffer.byteLength(line);
    }
    return { text, lines, bytes: offset - startOffset };
  }
}

export function tokenOf(d: Doc): string | undefined {
  return /^tok=(\S+)/.exec(d.message)?.[1];
}

/** Whether every one of `tokens` has been delivered at least once. */
export function allDelivered(docs: readonly Doc[], tokens: readonly string[]): boolean {
  const seen = new Set(docs.map(tokenOf));
  return tokens.every((t) => seen.has(t));
}

/**
 * Tokens not delivered exactly once, as `token x count` (`x0`: lost, `x2`: duplicated), and
 * documents carrying no written token (`unexpected: <message>`). Empty when delivery was exact.
 */
export function notExactlyOnce(docs: readonly Doc[], tokens: readonly string[]): string[] {
  const counts = new Map<string, number>(tokens.map((t) => [t, 0]));
  const out: string[] = [];
  for (const d of docs) {
    const t = tokenOf(d);
    const n = t === undefined ? undefined : counts.get(t);
    if (t === undefined || n === undefined) out.push(`unexpected: ${d.message.slice(0, 40)}`);
    else counts.set(t, n + 1);
  }
  for (const [t, n] of counts) if (n !== 1) out.push(`${t} x${n}`);
  return out;
}
