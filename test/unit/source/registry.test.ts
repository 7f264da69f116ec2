import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CheckpointEntry, loadPositions, savePositions } from '../../../src/source/checkpointer.ts';
import type { Match } from '../../../src/source/discovery.ts';
import { truncatedId } from '../../../src/source/fingerprint.ts';
import { FileRegistry } from '../../../src/source/registry.ts';
import type { Tracked } from '../../../src/source/tracked.ts';

function entry(id: string, over: Partial<CheckpointEntry> = {}): CheckpointEntry {
  return {
    path: '/pods/ns_pod_uid/app/0.log',
    dev: 1,
    ino: 7,
    id,
    fingerprint: `fp-${id}`,
    fingerprintBytes: 1024,
    offset: 100,
    seenMs: 1_000,
    ...over,
  };
}

function match(over: Partial<Match> = {}): Match {
  return { path: '/pods/ns_pod_uid/app/0.log', dev: 1, ino: 7, size: 10, birthMs: 0, ...over };
}

/** Only what the registry looks at of a followed file. */
function tracked(id: string, over: Partial<Tracked> = {}): Tracked {
  return {
    key: id,
    source: { key: id, path: '/pods/ns_pod_uid/app/0.log', identity: { dev: 1, ino: 7, id } },
    fh: {} as Tracked['fh'],
    state: 'active',
    birthMs: 0,
    ...over,
  } as Tracked;
}

describe('FileRegistry: checkpoints of files not followed', () => {
  it.each([
    { name: 'both birth times known and equal', entryBirth: 5.5, fileBirth: 5.5, candidate: true },
    { name: 'both known and different (a reused inode)', entryBirth: 5.5, fileBirth: 9.25, candidate: false },
    { name: 'the checkpoint has none', entryBirth: undefined, fileBirth: 9.25, candidate: true },
    { name: 'the file system reports none', entryBirth: 5.5, fileBirth: 0, candidate: true },
  ])('a checkpoint with the same device and inode is a candidate when $name: $candidate', (c) => {
    const r = new FileRegistry();
    r.load([entry('a', { birthMs: c.entryBirth })]);
    expect(r.knownFor(match({ birthMs: c.fileBirth })).map((e) => e.id)).toEqual(c.candidate ? ['a'] : []);
  });

  it('keeps two checkpoints of one device and inode (a rotated file and the new file that took its number)', () => {
    const r = new FileRegistry();
    r.load([
      entry('old', { birthMs: 1.5, fingerprintBytes: 1024 }),
      entry('new', { birthMs: 2.5, fingerprintBytes: 40 }),
    ]);
    expect(r.knownCount).toBe(2);
    expect(r.knownFor(match({ birthMs: 2.5 })).map((e) => e.id)).toEqual(['new']);
    expect(r.knownFor(match({ birthMs: 0 })).map((e) => e.id)).toEqual(['old', 'new']);
    // following the new file takes its checkpoint only; the old one still waits for its .gz
    r.claim(r.knownFor(match({ birthMs: 2.5 }))[0]!);
    expect(r.gzCandidates('/pods/ns_pod_uid/app').map((e) => e.id)).toEqual(['old']);
  });

  it('offers a .gz only checkpoints of its directory with a fingerprint of some bytes, longest first', () => {
    const r = new FileRegistry();
    r.load([
      entry('short', { ino: 1, fingerprintBytes: 10 }),
      entry('empty', { ino: 2, fingerprintBytes: 0 }),
      entry('long', { ino: 3, fingerprintBytes: 1024 }),
      entry('elsewhere', { ino: 4, path: '/pods/other_pod_uid/app/0.log' }),
    ]);
    expect(r.gzCandidates('/pods/ns_pod_uid/app').map((e) => e.id)).toEqual(['long', 'short']);
  });

  it('saves followed files and remembered checkpoints, forgetting those unseen for too long', () => {
    const r = new FileRegistry();
    r.load([entry('stale', { ino: 1, seenMs: 0 }), entry('recent', { ino: 2, seenMs: 9_000 })]);
    const f = tracked('followed');
    r.add(f);
    const saved = r.entries(10_000, 5_000, (t) => entry(t.key));
    expect(saved.map((e) => e.id).sort()).toEqual(['followed', 'recent']);
    expect(r.knownCount).toBe(1);
  });
});

describe('FileRegistry: followed files', () => {
  it.each([
    { name: 'an open file owns its inode, whatever the birth time', over: {}, birthMs: 3.5, same: true },
    {
      name: 'a parked file with the same birth time',
      over: { fh: undefined, state: 'parked', birthMs: 3.5 },
      birthMs: 3.5,
      same: true,
    },
    {
      name: 'a parked file with another birth time',
      over: { fh: undefined, state: 'parked', birthMs: 3.5 },
      birthMs: 4.5,
      same: false,
    },
    {
      name: 'a parked file, no birth times (the fingerprint decides at reopen)',
      over: { fh: undefined, state: 'parked' },
      birthMs: 0,
      same: true,
    },
    {
      name: 'a closing file waiting for acks, descriptor closed',
      over: { fh: undefined, state: 'closing' },
      birthMs: 0,
      same: false,
    },
  ] as const)('the file found at a path is the followed one: $name -> $same', (c) => {
    const r = new FileRegistry();
    const f = tracked('a', c.over as Partial<Tracked>);
    r.add(f);
    expect(r.followedAt(match({ birthMs: c.birthMs })) === f).toBe(c.same);
  });

  it('a released file leaves its checkpoint behind, by id', () => {
    const r = new FileRegistry();
    const f = tracked('a');
    r.add(f);
    r.release(f, entry('a'));
    expect(r.holds(f)).toBe(false);
    expect(r.atPath(f.source.path)).toBeUndefined();
    expect(r.knownFor(match()).map((e) => e.id)).toEqual(['a']);
  });
});

describe('positions file', () => {
  it('keeps two entries with one device and inode through a save and a load', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'logferry-registry-'));
    try {
      const file = join(dir, 'positions.json');
      await savePositions(file, [entry('old', { birthMs: 1.5 }), entry('new', { birthMs: 2.5 })]);
      const loaded = await loadPositions(file);
      expect([...loaded.entries.keys()].sort()).toEqual(['new', 'old']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['the saved first-scan mark', 1_234_567, 1_234_567],
    ["the file's mtime when there is none (older files)", undefined, 'mtime'],
  ] as const)('says since when files are new by %s', async (_name, scannedMs, want) => {
    const dir = await mkdtemp(join(tmpdir(), 'logferry-registry-'));
    try {
      const file = join(dir, 'positions.json');
      await savePositions(file, [entry('a')], scannedMs);
      const loaded = await loadPositions(file);
      expect(loaded.savedMs).toBe(want === 'mtime' ? (await stat(file)).mtimeMs : want);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('truncatedId', () => {
  it('is a new id, derived from the old one (a restart derives the same)', () => {
    expect(truncatedId('abc')).not.toBe('abc');
    expect(truncatedId('abc')).toBe(truncatedId('abc'));
    expect(truncatedId(truncatedId('abc'))).not.toBe(truncatedId('abc'));
  });
});
