import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, rename, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, criLine, runCli, tempDir } from '../helpers/cli.ts';

let dir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  await cleanup();
});

describe('logferry tail --once', () => {
  it('prints every record of a CRI file with exact offsets and exits 0', async () => {
    const file = join(dir, '0.log');
    const lines = [
      criLine(1, 'hello'),
      criLine(2, 'first-', 'stderr', 'P'),
      criLine(3, '{"level":"warn","msg":"disk","n":3}'),
      criLine(4, 'second', 'stderr', 'F'),
    ];
    await writeFile(file, lines.join(''));
    const res = await runCli(['tail', '--once', '--from-beginning', '--host-name', 'node-1', file]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const offsetOf = (i: number) => lines.slice(0, i).join('').length;
    expect(res.docs).toEqual([
      {
        '@timestamp': '2026-11-22T01:02:03.000000001Z',
        message: 'hello',
        stream: 'stdout',
        log: { file: { path: file }, offset: 0 },
        host: { name: 'node-1' },
      },
      {
        '@timestamp': '2026-11-22T01:02:03.000000003Z',
        // the application's message and level, normalised (docs/parsing.md)
        message: 'disk',
        stream: 'stdout',
        log: { file: { path: file }, offset: offsetOf(2), level: 'warn' },
        host: { name: 'node-1' },
        json: { level: 'warn', msg: 'disk', n: 3 },
      },
      {
        '@timestamp': '2026-11-22T01:02:03.000000002Z',
        message: 'first-second',
        stream: 'stderr',
        log: { file: { path: file }, offset: offsetOf(1), flags: ['partial'] },
        host: { name: 'node-1' },
      },
    ]);
  });

  it('resumes from --positions: nothing repeated, nothing lost, an incomplete line waits for its newline', async () => {
    const file = join(dir, 'app.log');
    const positions = join(dir, 'state', 'positions.json');
    await writeFile(file, 'one\ntwo\nthr');
    const first = await runCli(['tail', '--once', '--from-beginning', '--positions', positions, file]);
    expect(first.code).toBe(0);
    expect(first.docs.map((d) => d.message)).toEqual(['one', 'two']);

    const again = await runCli(['tail', '--once', '--positions', positions, file]);
    expect(again.docs).toEqual([]);

    await appendFile(file, 'ee\nfour\n');
    const third = await runCli(['tail', '--once', '--positions', positions, file]);
    expect(third.docs.map((d) => [d.message, d.log.offset])).toEqual([
      ['three', 8],
      ['four', 14],
    ]);
    const saved = JSON.parse(await readFile(positions, 'utf8'));
    expect(saved.files[0].offset).toBe((await stat(file)).size);
  });

  it('without --from-beginning starts at the end of existing files', async () => {
    const file = join(dir, 'a.log');
    await writeFile(file, 'old\n');
    const res = await runCli(['tail', '--once', file]);
    expect(res.code).toBe(0);
    expect(res.docs).toEqual([]);
  });

  it('reads 500 files at once, every line exactly once', async () => {
    const perFile = 20;
    await Promise.all(
      Array.from({ length: 500 }, (_, f) =>
        writeFile(
          join(dir, `f${f}.log`),
          Array.from({ length: perFile }, (_, i) => criLine(i, `file=${f} seq=${i}`)).join(''),
        ),
      ),
    );
    const res = await runCli([
      'tail',
      '--once',
      '--from-beginning',
      '--max-open-files',
      '600',
      join(dir, '*.log'),
    ]);
    expect(res.code).toBe(0);
    const seen = new Map<string, number>();
    for (const d of res.docs) seen.set(d.message, (seen.get(d.message) ?? 0) + 1);
    expect(res.docs.length).toBe(500 * perFile);
    expect(seen.size).toBe(500 * perFile);
  });

  it('follows a symlink to its target: the link path is reported, the target is read once', async () => {
    await mkdir(join(dir, 'pods'));
    const target = join(dir, 'pods', '0.log');
    const link = join(dir, 'c.log');
    await writeFile(target, criLine(1, 'via link'));
    await symlink(target, link);
    const res = await runCli(['tail', '--once', '--from-beginning', link, join(dir, 'pods', '*.log')]);
    expect(res.code).toBe(0);
    expect(res.docs.map((d) => [d.message, d.log.file.path])).toEqual([['via link', link]]);
  });

  it('detects docker json-file, JSON lines and plain text per file', async () => {
    await writeFile(
      join(dir, 'docker.log'),
      '{"log":"part ","stream":"stdout","time":"2026-11-22T01:00:00.000000001Z"}\n' +
        '{"log":"end\\n","stream":"stdout","time":"2026-11-22T01:00:00.000000002Z"}\n',
    );
    await writeFile(join(dir, 'lines.log'), '{"a":1}\n');
    await writeFile(join(dir, 'text.log'), 'plain words\r\n');
    const res = await runCli(['tail', '--once', '--from-beginning', join(dir, '*.log')]);
    const byFile = Object.fromEntries(res.docs.map((d) => [d.log.file.path.split('/').pop(), d]));
    expect(byFile['docker.log']).toMatchObject({
      message: 'part end',
      stream: 'stdout',
      '@timestamp': '2026-11-22T01:00:00.000000001Z',
    });
    expect(byFile['lines.log']).toMatchObject({ message: '{"a":1}', json: { a: 1 } });
    expect(byFile['text.log']?.message).toBe('plain words');
    expect(byFile['text.log']?.json).toBeUndefined();
  });

  it('cuts a line longer than --max-line-bytes into flagged pieces without losing a byte', async () => {
    const file = join(dir, 'long.log');
    const long = 'x'.repeat(2500);
    await writeFile(file, `short\n${long}\nafter\n`);
    const res = await runCli(['tail', '--once', '--from-beginning', '--max-line-bytes', '1000', file]);
    expect(res.code).toBe(0);
    const pieces = res.docs.filter((d) => d.log.flags?.includes('split'));
    expect(pieces.map((d) => [d.log.offset, d.log.part, d.message.length])).toEqual([
      [6, 0, 1000],
      [1006, 1, 1000],
      [2006, 2, 500],
    ]);
    expect(res.docs.map((d) => d.message).join('')).toBe(`short${long}after`);
  });

  it('keeps malformed and invalid UTF-8 lines, flagged, instead of failing', async () => {
    const file = join(dir, '0.log');
    await writeFile(
      file,
      Buffer.concat([
        Buffer.from(criLine(1, 'ok')),
        Buffer.from('not a cri line\n'),
        Buffer.from('2026-11-22T01:02:03.5Z stdout F bad '),
        Buffer.from([0xff, 0xfe, 0x00]),
        Buffer.from('\n'),
      ]),
    );
    const res = await runCli(['tail', '--once', '--from-beginning', '--format', 'cri', file]);
    expect(res.code).toBe(0);
    expect(res.docs.map((d) => d.log.flags ?? [])).toEqual([[], ['parse_error'], ['invalid_utf8']]);
    expect(res.docs[1]?.message).toBe('not a cri line');
    expect(res.docs[1]?.error?.type).toBe('parse');
  });
});

describe('logferry tail argument errors', () => {
  it.each([
    [['tail'], /at least one path/],
    [['tail', '--format', 'xml', 'a'], /--format: 'xml' is not one of/],
    [['tail', '--max-line-bytes', 'lots', 'a'], /--max-line-bytes: 'lots' is not a size/],
    [['tail', '--nope', 'a'], /unknown option '--nope'/],
    [['tail', '--once', '/nonexistent/x.log'], /no such file/],
    [['frobnicate'], /unknown command/],
  ])('%j exits 2 with one clear line', async (args, message) => {
    const res = await runCli(args);
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(message);
  });

  it('a directory is refused with a hint', async () => {
    const res = await runCli(['tail', '--once', dir]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/is a directory/);
  });

  it('--version and --help exit 0', async () => {
    expect((await runCli(['--version'])).stdout).toMatch(/^logferry \d+\.\d+\.\d+/);
    const help = await runCli(['tail', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--from-beginning/);
  });
});

describe('progress on a terminal', () => {
  // `script` (util-linux) gives the child a pseudo-terminal; without it the line cannot be tested
  const script = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));

  it.skipIf(script === undefined)('--once draws bytes read of total and records/s on stderr', async () => {
    const file = join(dir, 'p.log');
    await writeFile(file, Array.from({ length: 1000 }, (_, i) => criLine(i, `line ${i}`)).join(''));
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} tail --once --from-beginning ${JSON.stringify(file)} > /dev/null`;
    const out = execFileSync(script!, ['-qec', cmd, '/dev/null'], { encoding: 'utf8' });
    expect(out.replaceAll('\r', '\n')).toMatch(/read 0\.\d of 0\.\d MiB, 1000 lines, \d+ lines\/s/);
  });

  it('is quiet when stderr is not a terminal', async () => {
    const file = join(dir, 'q.log');
    await writeFile(file, criLine(1, 'x'));
    const res = await runCli(['tail', '--once', '--from-beginning', file]);
    expect(res.stderr).toBe('');
  });
});

describe('downtime across rotations', () => {
  it('finds what it had not shipped in a rotated file kubelet gzipped meanwhile, by its fingerprint', async () => {
    const log = join(dir, '0.log');
    const positions = join(dir, 'positions.json');
    const line = (i: number) => criLine(i, `seq=${i} ${'g'.repeat(60)}`);
    const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => line(a + i)).join('');
    await writeFile(log, range(0, 100));
    const first = await runCli(['tail', '--once', '--from-beginning', '--positions', positions, `${log}*`]);
    expect(first.docs).toHaveLength(100);

    // logferry is stopped; the pod keeps writing and kubelet rotates twice, gzipping the older file
    await appendFile(log, range(100, 200));
    await rename(log, `${log}.20261122-010000`);
    await writeFile(log, range(200, 300));
    await rename(log, `${log}.20261122-020000`);
    await writeFile(log, range(300, 350));
    execFileSync('gzip', [`${log}.20261122-010000`]);
    expect(existsSync(`${log}.20261122-010000.gz`)).toBe(true);

    const second = await runCli(['tail', '--once', '--positions', positions, `${log}*`]);
    expect(second.code).toBe(0);
    const seqs = second.docs.map((d) => Number(/seq=(\d+)/.exec(d.message)?.[1])).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 250 }, (_, i) => 100 + i));
    // the recovered records keep the offsets they have in the original (uncompressed) file
    const fromGz = second.docs.filter((d) => d.log.file.path.endsWith('.gz'));
    expect(fromGz.map((d) => d.log.offset)[0]).toBe(range(0, 100).length);

    // and a third run finds nothing left to ship
    const third = await runCli(['tail', '--once', '--positions', positions, `${log}*`]);
    expect(third.docs).toEqual([]);
  });

  it("an empty file's checkpoint never claims another file's .gz (a fingerprint of no bytes matches anything)", async () => {
    // Found by the chaos run (seed 32): a 0.log checkpointed while still empty had a 0-byte
    // fingerprint, which matched the .gz of an older, fully shipped file; that file's lines were
    // sent again under the empty file's id, taking the ids of its own lines where offsets coincided.
    const log = join(dir, '0.log');
    const positions = join(dir, 'positions.json');
    const line = (i: number) => criLine(i, `seq=${i} ${'e'.repeat(40)}`);
    const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => line(a + i)).join('');
    const run = () => runCli(['tail', '--once', '--from-beginning', '--positions', positions, `${log}*`]);
    await writeFile(log, range(0, 100));
    expect((await run()).docs).toHaveLength(100);
    // kubelet rotates; the new 0.log is checkpointed while still empty
    await rename(log, `${log}.20261122-010000`);
    await writeFile(log, '');
    expect((await run()).docs).toEqual([]);
    // while logferry is stopped: the empty file gets lines and is rotated (its name now sorts after
    // the older file's .gz, so its checkpoint is still unclaimed when the .gz is looked at)
    await appendFile(log, range(100, 110));
    await rename(log, `${log}.20261122-020000`);
    await writeFile(log, range(110, 115));
    execFileSync('gzip', [`${log}.20261122-010000`]);
    const third = await run();
    expect(third.code).toBe(0);
    const seqs = third.docs.map((d) => Number(/seq=(\d+)/.exec(d.message)?.[1])).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 15 }, (_, i) => 100 + i));
    expect(third.docs.filter((d) => d.log.file.path.endsWith('.gz'))).toEqual([]);
  });
});
