// The chaos harness: the built agent against a kubelet-style pods tree fed by writers with rotation
// (rename + create, older rotated files gzipped, the oldest deleted), pods appearing and going away,
// a fake Elasticsearch injecting faults, and the agent SIGKILLed or SIGTERMed at random moments.
// At the end every line the writers wrote must be in Elasticsearch exactly once, in per-file order.
// `rotation: 'reuse'` frees inodes right before the new 0.log is created, so that it takes one (#12).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type FakeElasticsearch, startFakeElasticsearch } from '../fakes/fake-elasticsearch.ts';
import { BIN, criLine, sleep, tempDir } from '../helpers/cli.ts';
import { rng } from '../helpers/random.ts';

export interface ChaosOptions {
  seed: number;
  durationMs: number;
  pods: number;
  /** lines per second per pod */
  rate: number;
  /** a pod's 0.log is rotated past this size */
  rotateBytes: number;
  /** rotated files kept per container (older are deleted), the newest uncompressed, others gzipped */
  keepRotated: number;
  /** live pods never exceed this (pod churn adds pods up to it); default 2 × pods */
  maxPods?: number;
  /** no kills, faults or pod churn: writers and rotation only (a baseline when a run fails) */
  calm?: boolean;
  /**
   * 'kubelet' (default): rename, create 0.log, then gzip and delete, so the new 0.log never gets an
   * inode this rotation freed. 'reuse': rename, delete beyond `keepRotated`, gzip, then create 0.log,
   * so it takes the inode just freed (ext4 hands out the lowest free one); kubelet's own rotateLog
   * also deletes and compresses before the runtime creates the new 0.log. In this mode each kill or
   * stop of the agent is followed by two rotations of one pod before the restart (issue #12).
   */
  rotation?: RotationMode;
  log?: (line: string) => void;
}

export type RotationMode = 'kubelet' | 'reuse';

export interface ChaosSummary {
  seed: number;
  rotation: RotationMode;
  written: number;
  delivered: number;
  duplicates: number;
  lost: number;
  outOfOrder: number;
  restarts: number;
  sigkills: number;
  faults: number;
  rotations: number;
  /** rotations after which the new 0.log had the inode of a file the same pod's rotations freed */
  inodeReuses: number;
  /** rotations while no agent process was running, and how many of them reused an inode */
  rotationsWhileDown: number;
  inodeReusesWhileDown: number;
  peakRssMiB: number;
  durationMs: number;
  /** missing sequence ranges per pod (at most 10), to see whether a loss is one file or scattered */
  lostRanges: string[];
  /** a few duplicated lines with each copy's document id and file path, to tell where copies come from */
  duplicateExamples: string[];
  /**
   * lost lines in rotated files the harness later deleted (beyond `keepRotated`): a line the agent
   * had not read by then is lost by design; `lostFiles` says whether the file's inode had also gone
   * to a new 0.log while the agent was down (#12), the likelier cause then
   */
  lostInDeletedFiles: number;
  /** for lost lines (at most 10 files), the file they were written to and what became of it */
  lostFiles: string[];
}

const INDEX = 'logs-kubernetes.container_logs-default';

/** a file a pod's 0.log was, and what the harness did to it (to tell where lost lines were) */
interface LogFile {
  name: string;
  /** its lines' sequence numbers, from inclusive, to exclusive */
  from: number;
  to: number;
  ino: number | undefined;
  gzipped: boolean;
  deleted: boolean;
  /** a new 0.log took its inode: with the agent running or not */
  inodeTaken?: 'up' | 'down';
}

interface Pod {
  name: string;
  dir: string;
  seq: number;
  rotations: number;
  /** the current 0.log: first line's sequence number, inode, when it was created */
  liveFrom: number;
  liveIno: number | undefined;
  liveSinceMs: number;
  files: LogFile[];
  /** inodes the last rotation freed, by the file that had them (a later rotation can reuse them) */
  freed: Map<number, LogFile>;
  /** the writer and forced rotations take turns (an append between rename and create would be lost) */
  lock: Promise<void>;
  /** no longer written; removed once everything it wrote is delivered */
  stopping: boolean;
  gone: boolean;
}

function uid(n: number): string {
  const h = n.toString(16).padStart(8, '0');
  return `${h}-5b7e-4d2a-9c1e-6a8b4f2d1e03`;
}

async function inodeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).ino;
  } catch {
    return undefined;
  }
}

function locked(pod: Pod, job: () => Promise<void>): Promise<void> {
  const run = pod.lock.then(job);
  pod.lock = run.catch(() => {});
  return run;
}

/** A rotation's effect on inodes, for the summary: did the new 0.log take one this pod freed? */
interface Rotation {
  reused: boolean;
}

async function rotate(
  pod: Pod,
  keep: number,
  mode: RotationMode,
  agentDown: () => boolean,
): Promise<Rotation> {
  const live = join(pod.dir, '0.log');
  pod.rotations++;
  const stamp = `20261122-${String(pod.rotations).padStart(6, '0')}`;
  await rename(live, `${live}.${stamp}`);
  pod.files.push({
    name: `0.log.${stamp}`,
    from: pod.liveFrom,
    to: pod.seq,
    ino: pod.liveIno,
    gzipped: false,
    deleted: false,
  });
  const freed = new Map<number, LogFile>();
  const fileOf = (f: string) => pod.files.find((x) => x.name === f.replace(/\.gz$/, ''));
  // kubelet: the newest rotated file stays plain, older ones are gzipped, beyond `keep` deleted
  const compress = async () => {
    const rotated = (await readdir(pod.dir)).filter((f) => f.startsWith('0.log.')).sort();
    for (const f of rotated.slice(0, -1)) {
      if (f.endsWith('.gz')) continue;
      // gzip writes f.gz first, then unlinks f: f's inode is free once gzip exits
      execFileSync('gzip', ['-f', join(pod.dir, f)]);
      const file = fileOf(f);
      if (file === undefined) continue;
      file.gzipped = true;
      if (file.ino !== undefined) freed.set(file.ino, file);
    }
  };
  const prune = async () => {
    const all = (await readdir(pod.dir)).filter((f) => f.startsWith('0.log.')).sort();
    for (const f of all.slice(0, Math.max(0, all.length - keep))) {
      const ino = await inodeOf(join(pod.dir, f));
      await rm(join(pod.dir, f));
      const file = fileOf(f);
      if (file === undefined) continue;
      file.deleted = true;
      if (ino !== undefined) freed.set(ino, file);
    }
  };
  if (mode === 'kubelet') {
    await writeFile(live, '');
    await compress();
    await prune();
  } else {
    // deleting first lets gzip's new .gz take the deleted file's inode, so the one left free for the
    // new 0.log is the gzipped plain file's: the file whose checkpoint #12 lost
    await prune();
    await compress();
    await writeFile(live, '');
  }
  const ino = await inodeOf(live);
  const down = agentDown();
  const earlier = ino === undefined ? undefined : pod.freed.get(ino);
  const now = ino === undefined ? undefined : freed.get(ino);
  const taken = now ?? earlier;
  if (taken !== undefined) taken.inodeTaken = down ? 'down' : 'up';
  if (ino !== undefined) freed.delete(ino);
  pod.freed = freed;
  pod.liveFrom = pod.seq;
  pod.liveIno = ino;
  pod.liveSinceMs = Date.now();
  return { reused: taken !== undefined };
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosSummary> {
  const say = opts.log ?? (() => {});
  const random = rng(opts.seed);
  const mode = opts.rotation ?? 'kubelet';
  const started = Date.now();
  const { dir, cleanup } = await tempDir('logferry-chaos-');
  const podsDir = join(dir, 'pods');
  const stateDir = join(dir, 'state');
  const es: FakeElasticsearch = await startFakeElasticsearch({ maxContentLength: 2 * 1024 * 1024 });
  const pods: Pod[] = [];
  let podCount = 0;
  const addPod = async () => {
    const n = podCount++;
    const p: Pod = {
      name: `pod-${n}`,
      dir: join(podsDir, `chaos_pod-${n}_${uid(n)}`, 'app'),
      seq: 0,
      rotations: 0,
      liveFrom: 0,
      liveIno: undefined,
      liveSinceMs: Date.now(),
      files: [],
      freed: new Map(),
      lock: Promise.resolve(),
      stopping: false,
      gone: false,
    };
    await mkdir(p.dir, { recursive: true });
    await writeFile(join(p.dir, '0.log'), '');
    p.liveIno = await inodeOf(join(p.dir, '0.log'));
    pods.push(p);
  };
  for (let i = 0; i < opts.pods; i++) await addPod();

  let agent: ChildProcess | undefined;
  let agentExit: Promise<number | null> | undefined;
  let restarts = 0;
  let sigkills = 0;
  let faults = 0;
  let peakRssKiB = 0;
  let agentRunning = false;
  let agentStartedMs = 0;
  let inodeReuses = 0;
  let rotationsWhileDown = 0;
  let inodeReusesWhileDown = 0;
  const rotateNow = async (p: Pod) => {
    const down = !agentRunning;
    const { reused } = await rotate(p, opts.keepRotated, mode, () => !agentRunning);
    if (reused) inodeReuses++;
    if (down) rotationsWhileDown++;
    if (down && reused) inodeReusesWhileDown++;
  };
  const startAgent = () => {
    agent = spawn(
      process.execPath,
      [
        // no heap flags: the agent gives itself those of its budget (src/cli/runtime.ts)
        ...(process.env.LOGFERRY_CHAOS_REPORTS
          ? ['--report-on-fatalerror', `--report-directory=${process.env.LOGFERRY_CHAOS_REPORTS}`]
          : []),
        BIN,
        'agent',
        '--no-kube',
        '--pods-dir',
        podsDir,
        '--state-dir',
        stateDir,
        '--es',
        es.url,
        '--http-addr',
        '127.0.0.1:0',
        '--flush-ms',
        '200',
        '--batch-bytes',
        '4MiB',
        '--retry-max-ms',
        '1000',
        '--es-timeout-ms',
        '3000',
        '--shutdown-timeout',
        '3000',
        '--poll-interval-ms',
        '100',
        '--rotate-grace-ms',
        '500',
      ],
      { stdio: ['ignore', 'ignore', process.env.LOGFERRY_CHAOS_AGENT_STDERR ? 'inherit' : 'ignore'] },
    );
    const child = agent;
    agentRunning = true;
    agentStartedMs = Date.now();
    agentExit = new Promise((resolve) =>
      child.on('close', (code) => {
        agentRunning = false;
        resolve(code);
      }),
    );
    restarts++;
  };
  const rssTimer = setInterval(async () => {
    if (agent?.pid === undefined) return;
    try {
      const status = await readFile(`/proc/${agent.pid}/status`, 'utf8');
      peakRssKiB = Math.max(peakRssKiB, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      // between restarts
    }
  }, 200);

  let writing = true;
  const writer = (async () => {
    const tick = 50;
    while (writing) {
      for (const p of pods) {
        if (p.gone || p.stopping) continue;
        const n = Math.max(1, Math.round((opts.rate * tick) / 1000));
        let text = '';
        for (let i = 0; i < n; i++) {
          text += criLine(p.seq, `pod=${p.name} seq=${p.seq} ${'c'.repeat(Math.floor(random() * 150))}`);
          p.seq++;
        }
        const live = join(p.dir, '0.log');
        await locked(p, async () => {
          await appendFile(live, text);
          if ((await stat(live)).size > opts.rotateBytes) await rotateNow(p);
        });
      }
      await sleep(tick);
    }
  })();

  const deliveredOf = (p: Pod) => {
    const prefix = `pod=${p.name} `;
    let n = 0;
    for (const d of es.docs(INDEX)) if (String(d.source.message).startsWith(prefix)) n++;
    return n;
  };
  const maxPods = opts.maxPods ?? opts.pods * 2;

  // #12 bites when a file the agent has a checkpoint for, with lines after it, is gzipped and its
  // inode goes to a new file while the agent is stopped. Random kills alone rarely line that up (a
  // pod rotates every ~10 s, the agent is down for under a second), so in 'reuse' mode every stop is
  // followed by two rotations of one pod: the first moves its 0.log aside, the second gzips it and
  // hands its inode to the next 0.log. Only a pod whose 0.log the stopped agent had for 2.5 s is
  // picked: by then its checkpoint has a fingerprint of some bytes (saved every second), and a .gz
  // is only ever matched to such a checkpoint; a file rotated and gzipped before the agent could
  // see it is lost by design, and is not what this mode is for.
  const rotateWhileDown = async (stoppedAtMs: number) => {
    if (mode !== 'reuse') return;
    const ready = pods.filter(
      (p) =>
        !p.gone &&
        !p.stopping &&
        p.seq > p.liveFrom &&
        stoppedAtMs - Math.max(p.liveSinceMs, agentStartedMs) >= 2500,
    );
    const p = ready[Math.floor(random() * ready.length)];
    if (p === undefined) return;
    say(`chaos: ${p.name} rotates twice while the agent is down`);
    await locked(p, () => rotateNow(p));
    // the writer puts lines in the new 0.log, so the second rotation does not gzip an empty file
    await sleep(100 + random() * 200);
    await locked(p, () => rotateNow(p));
  };

  startAgent();
  const end = started + opts.durationMs;
  let lastProgress = Date.now();
  while (Date.now() < end) {
    if (Date.now() - lastProgress >= 30_000) {
      lastProgress = Date.now();
      const written = pods.reduce((n, p) => n + p.seq, 0);
      say(
        `progress: written ${written}, delivered ${es.count(INDEX)}, live pods ${pods.filter((p) => !p.gone).length}`,
      );
    }
    await sleep(500 + random() * 2500);
    const r = opts.calm ? 2 : random();
    if (r < 0.25) {
      sigkills++;
      say(`chaos: SIGKILL the agent`);
      const at = Date.now();
      agent?.kill('SIGKILL');
      await agentExit;
      await rotateWhileDown(at);
      await sleep(random() * 500);
      startAgent();
    } else if (r < 0.4) {
      say(`chaos: SIGTERM the agent`);
      const at = Date.now();
      agent?.kill('SIGTERM');
      await agentExit;
      await rotateWhileDown(at);
      startAgent();
    } else if (r < 0.75) {
      faults++;
      const kind = Math.floor(random() * 5);
      const ms = 500 + Math.floor(random() * 3000);
      say(`chaos: fault ${['outage', '429 storm', 'item 429', 'latency', 'reset'][kind]} for ${ms} ms`);
      if (kind === 0) void es.outage(ms);
      else if (kind === 1) es.fault({ kind: 'status', status: 429, forMs: ms });
      else if (kind === 2)
        es.fault({ kind: 'item-status', status: 429, ratio: 0.3, seed: opts.seed, forMs: ms });
      else if (kind === 3) es.fault({ kind: 'latency', ms: 300, forMs: ms });
      else es.fault({ kind: 'reset', after: random() < 0.5 ? 'receive' : 'process', count: 3 });
    } else if (r < 0.85) {
      if (pods.filter((p) => !p.gone).length < maxPods) {
        say('chaos: a new pod');
        await addPod();
      }
    } else if (r <= 1) {
      // a pod stops writing (it is deleted); kubelet removes its directory later, here once what it
      // wrote is delivered (a directory removed earlier would lose lines by design, not by the agent)
      const p = pods.find((x) => !x.gone && !x.stopping && x.seq > 0);
      if (p !== undefined) {
        say(`chaos: ${p.name} stops`);
        p.stopping = true;
      }
    }
    // a deployment replaces its deleted pods: the write load stays at `pods` writing pods at least
    // (the seed 32 run ended its last 8 minutes with none)
    while (!opts.calm && pods.filter((p) => !p.gone && !p.stopping).length < opts.pods) {
      if (pods.filter((p) => !p.gone).length >= maxPods) break;
      say('chaos: a replacement pod');
      await addPod();
    }
    for (const p of pods) {
      if (p.stopping && !p.gone && deliveredOf(p) >= p.seq) {
        say(`chaos: ${p.name} goes away`);
        p.gone = true;
        await rm(join(p.dir, '..'), { recursive: true, force: true });
      }
    }
  }
  writing = false;
  await writer;
  es.clearFaults();
  const written = pods.reduce((n, p) => n + p.seq, 0);
  const deadline = Date.now() + 60_000;
  while (es.count(INDEX) < written && Date.now() < deadline) await sleep(250);
  await sleep(1000);
  agent?.kill('SIGTERM');
  await agentExit;
  clearInterval(rssTimer);

  const docs = es.docs(INDEX);
  const seen = new Map<string, number>();
  const copies = new Map<string, string[]>();
  let outOfOrder = 0;
  const lastByFile = new Map<string, { seq: number; offset: number }>();
  for (const d of docs) {
    const m = /^pod=(\S+) seq=(\d+)/.exec(String(d.source.message));
    if (m === null) continue;
    const key = `${m[1]}:${m[2]}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    const where = `${d.id} ${(d.source.log as { file: { path: string } }).file.path.split('/').slice(-3).join('/')}`;
    const list = copies.get(key);
    if (list === undefined) copies.set(key, [where]);
    else list.push(where);
    // per file (the _id's prefix is the file id), a later line has a later offset
    const file = d.id.slice(0, d.id.lastIndexOf('-'));
    const offset = (d.source.log as { offset: number }).offset;
    const seq = Number(m[2]);
    const prev = lastByFile.get(file);
    if (prev !== undefined && seq > prev.seq && offset <= prev.offset) outOfOrder++;
    if (prev === undefined || seq > prev.seq) lastByFile.set(file, { seq, offset });
  }
  let lost = 0;
  let duplicates = 0;
  const lostRanges: string[] = [];
  const lostByFile = new Map<LogFile, { pod: string; n: number }>();
  for (const p of pods) {
    const files: LogFile[] = [
      ...p.files,
      { name: '0.log', from: p.liveFrom, to: p.seq, ino: p.liveIno, gzipped: false, deleted: false },
    ];
    let from = -1;
    let at = 0;
    for (let i = 0; i <= p.seq; i++) {
      const c = i === p.seq ? 1 : (seen.get(`${p.name}:${i}`) ?? 0);
      if (c === 0) {
        lost++;
        if (from < 0) from = i;
        while (at < files.length - 1 && i >= files[at]!.to) at++;
        const file = files[at]!;
        const counted = lostByFile.get(file);
        if (counted === undefined) lostByFile.set(file, { pod: p.name, n: 1 });
        else counted.n++;
      } else if (from >= 0) {
        if (lostRanges.length < 10) lostRanges.push(`${p.name}:${from}-${i - 1}`);
        from = -1;
      }
      if (c > 1) duplicates += c - 1;
    }
  }
  let lostInDeletedFiles = 0;
  const lostFiles: string[] = [];
  for (const [file, { pod, n }] of lostByFile) {
    if (file.deleted) lostInDeletedFiles += n;
    if (lostFiles.length >= 10) continue;
    const fate = [
      file.gzipped ? 'gzipped' : '',
      file.deleted ? 'deleted' : '',
      file.inodeTaken === undefined
        ? ''
        : `inode taken by a new 0.log while the agent was ${file.inodeTaken}`,
    ].filter((x) => x !== '');
    lostFiles.push(
      `${pod} ${file.name} (lines ${file.from}-${file.to - 1}): ${n} lost${fate.length > 0 ? `; ${fate.join(', ')}` : ''}`,
    );
  }
  const duplicateExamples: string[] = [];
  for (const [key, list] of copies) {
    if (list.length > 1 && duplicateExamples.length < 10)
      duplicateExamples.push(`${key}: ${list.join(' | ')}`);
  }
  const summary: ChaosSummary = {
    seed: opts.seed,
    rotation: mode,
    written,
    delivered: docs.length,
    duplicates,
    lost,
    outOfOrder,
    restarts: restarts - 1,
    sigkills,
    faults,
    rotations: pods.reduce((n, p) => n + p.rotations, 0),
    inodeReuses,
    rotationsWhileDown,
    inodeReusesWhileDown,
    peakRssMiB: Math.round(peakRssKiB / 1024),
    durationMs: Date.now() - started,
    lostRanges,
    duplicateExamples,
    lostInDeletedFiles,
    lostFiles,
  };
  await es.close();
  await cleanup();
  return summary;
}
