import { spawn } from 'node:child_process';
import { appendFile, open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, criLine, type Doc, parseDocs, sleep, tempDir } from '../helpers/cli.ts';
import { rng } from '../helpers/random.ts';

let dir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  await cleanup();
});

async function startAgent(args: string[], outFile: string) {
  const out = await open(outFile, 'a');
  const child = spawn(process.execPath, [BIN, 'tail', ...args], { stdio: ['ignore', out.fd, 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await out.close();
  return { child, exited, stderr: () => stderr };
}

describe('restart after SIGKILL', () => {
  const seed = Number(process.env.LOGFERRY_TEST_SEED ?? 20261122);

  it(`loses no line across kills at random points and rotations (seed ${seed})`, async () => {
    const random = rng(seed);
    const log = join(dir, 'app.log');
    const positions = join(dir, 'positions.json');
    const outFile = join(dir, 'out.ndjson');
    await writeFile(log, '');
    await writeFile(outFile, '');
    // the pattern matches rotated files too, so a file rotated while the agent is down is found again
    const args = ['--from-beginning', '--poll-interval-ms', '50', '--positions', positions, `${log}*`];

    let seq = 0;
    let writing = true;
    const writer = (async () => {
      let rotations = 0;
      while (writing) {
        const burst = 1 + Math.floor(random() * 200);
        let text = '';
        for (let i = 0; i < burst; i++) {
          text += criLine(seq, `seq=${seq} ${'y'.repeat(Math.floor(random() * 100))}`);
          seq++;
        }
        await appendFile(log, text);
        if (seq > (rotations + 1) * 4000) {
          rotations++;
          await rename(log, `${log}.${rotations}`);
          await writeFile(log, '');
        }
        await sleep(5);
      }
    })();

    let kills = 0;
    for (let round = 0; round < 6; round++) {
      const agent = await startAgent(args, outFile);
      await sleep(200 + random() * 800);
      agent.child.kill('SIGKILL');
      await agent.exited;
      kills++;
    }
    writing = false;
    await writer;
    // a last run sees everything through and stops cleanly
    const last = await startAgent(args, outFile);
    const total = seq;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const docs = parseDocs(await readFile(outFile, 'utf8'));
      const got = new Set(docs.map((d) => d.message.split(' ')[0]));
      if (got.size >= total || Date.now() > deadline) break;
      await sleep(200);
    }
    last.child.kill('SIGTERM');
    expect(await last.exited).toBe(0);

    const docs = parseDocs(await readFile(outFile, 'utf8'));
    // a document's identity is its file and offset (what the Elasticsearch output derives _id from);
    // stdout cannot be made atomic with the checkpoint, so a SIGKILL may re-send what came after the
    // last checkpoint: such a re-send must be the same document, never a different one
    // (the path may differ: a file found again after its rotation is reported under its new name)
    const comparable = (d: Doc) => JSON.stringify({ ...d, log: { ...d.log, file: undefined } });
    const byIdentity = new Map<string, string>();
    for (const d of docs) {
      const key = `${d.log.offset}@${d.message.split(' ')[0]}`;
      const prev = byIdentity.get(key);
      if (prev !== undefined) expect(comparable(d)).toBe(prev);
      byIdentity.set(key, comparable(d));
    }
    const counts = new Map<string, number>();
    for (const key of byIdentity.keys()) {
      const s = key.split('@')[1]!;
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    const missing = [];
    for (let i = 0; i < total; i++) if (counts.get(`seq=${i}`) !== 1) missing.push(i);
    expect(kills).toBe(6);
    expect(missing).toEqual([]);
    expect(counts.size).toBe(total);
  });
});
