// Writers for the steady scenario: they append a generated tree's lines to live 0.log files at a fixed
// total rate, the same share for every container, with kubelet's rotation past a size. The lines
// are the generator's (bench/lib/workload.ts), so what was written is known exactly.
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { prepareRotation, rotateLatest, rotationStamp } from './kubelet.ts';
import type { CriTree } from './workload.ts';

export interface SteadyOptions {
  /** lines per second, over all containers */
  linesPerSecond: number;
  /** a container's 0.log is rotated once it holds this many bytes (kubelet's containerLogMaxSize) */
  rotateBytes: number;
  /** files kept per container, the live one included (kubelet's containerLogMaxFiles) */
  maxFiles: number;
  /** how often the writers wake up */
  tickMs: number;
}

export interface SteadyStats {
  lines: number;
  /** records written: `F` lines (a `P` line is part of the record its `F` line ends) */
  records: number;
  bytes: number;
  rotations: number;
  gzipped: number;
  deleted: number;
  /** performance.now() of the first write and of the last */
  startedMs: number | undefined;
  endedMs: number | undefined;
  /** the longest time between two ticks (each writes what is due: a late tick means bursts) */
  maxTickGapMs: number;
}

interface Writer {
  log: string;
  source: Buffer;
  /** source lines and bytes written */
  lines: number;
  pos: number;
  total: number;
  fd: number;
  size: number;
  /** the last line written was a `P` fragment: no rotation between it and its `F` */
  inRecord: boolean;
  /** rotation: undefined, 'preparing' (deleting, gzipping) or 'ready' (rename at the next record end) */
  rotation: 'preparing' | 'ready' | undefined;
}

/**
 * Appends every line of `source` (the files in `logs`, the same order) at the rate; `run()`
 * resolves when all are written. Rotation is kubelet's (bench/lib/kubelet.ts): the rotated files
 * are deleted and gzipped while writing goes on, then 0.log is renamed and reopened, between two
 * records (a record cut by a rotation would be joined by neither agent, and could not be checked).
 */
export class SteadyWriters {
  readonly stats: SteadyStats = {
    lines: 0,
    records: 0,
    bytes: 0,
    rotations: 0,
    gzipped: 0,
    deleted: 0,
    startedMs: undefined,
    endedMs: undefined,
    maxTickGapMs: 0,
  };
  readonly #writers: Writer[];
  readonly #o: SteadyOptions;
  #timer: NodeJS.Timeout | undefined;
  #failed: Error | undefined;

  /** Creates the empty 0.log files (the agents may start before the first line). */
  constructor(source: CriTree, logs: string[], o: SteadyOptions) {
    this.#o = o;
    this.#writers = source.files.map((f, i) => ({
      log: logs[i]!,
      source: readFileSync(f.path),
      lines: 0,
      pos: 0,
      total: f.meta.lines,
      fd: openSync(logs[i]!, 'a'),
      size: 0,
      inRecord: false,
      rotation: undefined,
    }));
  }

  get totalLines(): number {
    return this.#writers.reduce((s, w) => s + w.total, 0);
  }

  get done(): boolean {
    return this.stats.endedMs !== undefined;
  }

  run(): Promise<SteadyStats> {
    const t0 = performance.now();
    this.stats.startedMs = t0;
    const perWriter = this.#o.linesPerSecond / this.#writers.length;
    let last = t0;
    return new Promise((resolve, reject) => {
      const tick = () => {
        if (this.#failed !== undefined) {
          reject(this.#failed);
          return;
        }
        const now = performance.now();
        this.stats.maxTickGapMs = Math.max(this.stats.maxTickGapMs, now - last);
        last = now;
        const elapsed = (now - t0) / 1000;
        let left = 0;
        for (const w of this.#writers) {
          const due = Math.min(w.total, Math.floor(perWriter * elapsed));
          if (due > w.lines) this.#write(w, due - w.lines);
          this.#maybeRotate(w);
          left += w.total - w.lines;
        }
        if (left === 0) {
          this.stats.endedMs = performance.now();
          this.close();
          resolve(this.stats);
          return;
        }
        this.#timer = setTimeout(tick, this.#o.tickMs);
      };
      tick();
    });
  }

  /** Closes the files (the writers stop where they are). */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    for (const w of this.#writers) {
      if (w.fd !== -1) closeSync(w.fd);
      w.fd = -1;
    }
  }

  /** The next `n` lines of the source, in one write. */
  #write(w: Writer, n: number): void {
    const src = w.source;
    const start = w.pos;
    let pos = start;
    for (let i = 0; i < n; i++) {
      const end = src.indexOf(10, pos);
      const lineEnd = end === -1 ? src.length : end + 1;
      // `<time> <stream> <P|F> <message>`
      const tagAt = src.indexOf(32, src.indexOf(32, pos) + 1) + 1;
      w.inRecord = src[tagAt] === 0x50;
      if (!w.inRecord) this.stats.records++;
      pos = lineEnd;
    }
    const wrote = writeSync(w.fd, src, start, pos - start);
    if (wrote !== pos - start) throw new Error(`${w.log}: short write (${wrote} of ${pos - start} bytes)`);
    w.pos = pos;
    w.lines += n;
    w.size += wrote;
    this.stats.lines += n;
    this.stats.bytes += wrote;
  }

  #maybeRotate(w: Writer): void {
    if (w.size < this.#o.rotateBytes || w.fd === -1) return;
    if (w.rotation === undefined) {
      w.rotation = 'preparing';
      prepareRotation(w.log, this.#o.maxFiles).then(
        (r) => {
          this.stats.deleted += r.deleted;
          this.stats.gzipped += r.gzipped;
          w.rotation = 'ready';
        },
        (err: unknown) => {
          this.#failed = err instanceof Error ? err : new Error(String(err));
        },
      );
      return;
    }
    const now = new Date();
    // two rotations within a second would get the same name (kubelet checks sizes every 10 s, so
    // it never does): wait for the next second
    const to = `${w.log}.${rotationStamp(now)}`;
    if (w.rotation !== 'ready' || w.inRecord || existsSync(to) || existsSync(`${to}.gz`)) return;
    rotateLatest(w.log, now);
    closeSync(w.fd);
    w.fd = openSync(w.log, 'a');
    w.size = 0;
    w.rotation = undefined;
    this.stats.rotations++;
  }
}
