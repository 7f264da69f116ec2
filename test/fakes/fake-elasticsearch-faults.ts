// Fault injection for the fake Elasticsearch: which requests or bulk items to fail, delay, hold or cut off.
//
// Faults run on the real clock even when a test installs fake timers: the fake answers real sockets, so "429 for
// 10 s" must mean ten seconds of wall time. The references below are taken when this module loads, before any
// test can replace the globals.
import { rng } from '../helpers/random.ts';

const realNow = Date.now;
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

// Which requests a request-level fault applies to. Bulk only by default, so that template setup, health checks and
// the test's own read-backs keep working while indexing fails.
export type FaultScope = 'bulk' | 'all';

export interface FaultLimits {
  // Requests (or, for 'item-status', bulk items) the fault acts on before it retires.
  count?: number;
  // Lifetime from now, in milliseconds of wall time.
  forMs?: number;
  // Absolute end, as a Date.now() value.
  untilMs?: number;
  requests?: FaultScope;
}

export type FaultSpec =
  // Whole request answered with this status and Elasticsearch's body for it (429, 503, 500, 401, 403; 502 and 504
  // as a proxy would send them).
  | (FaultLimits & { kind: 'status'; status: number; body?: unknown })
  // Bulk items rejected inside a 200 response. Every item by default; `every: n` picks items 1, n+1, 2n+1, ... of
  // the stream of items; `ratio` picks a seeded pseudo-random share, the same for the same seed.
  | (FaultLimits & {
      kind: 'item-status';
      status: 429 | 503 | 500;
      every?: number;
      ratio?: number;
      seed?: number;
      index?: string;
    })
  // Answer after a delay.
  | (FaultLimits & { kind: 'latency'; ms: number })
  // Hold matching requests without answering until the fault is cleared or expires (then they are processed, as a
  // stalled node would eventually do) or the server stops (then their sockets are destroyed).
  | (FaultLimits & { kind: 'hang' })
  // Destroy the socket. 'receive' (default): before processing, nothing stored. 'process': after processing,
  // documents stored but the answer lost, the case that makes an agent resend what was already indexed.
  | (FaultLimits & { kind: 'reset'; after?: 'receive' | 'process' });

export type FaultKind = FaultSpec['kind'];

export interface FaultHandle {
  readonly spec: FaultSpec;
  // Requests (or items) this fault has acted on so far.
  readonly hits: number;
  readonly active: boolean;
  clear(): void;
}

class Fault implements FaultHandle {
  readonly spec: FaultSpec;
  hits = 0;
  cleared = false;
  readonly expiresAt: number | undefined;
  readonly #released: Promise<void>;
  #release!: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pick = 0;
  #random: () => number;

  constructor(spec: FaultSpec) {
    this.spec = spec;
    const ends = [spec.untilMs, spec.forMs === undefined ? undefined : realNow() + spec.forMs].filter(
      (v): v is number => v !== undefined,
    );
    this.expiresAt = ends.length > 0 ? Math.min(...ends) : undefined;
    this.#released = new Promise((resolve) => {
      this.#release = resolve;
    });
    if (this.expiresAt !== undefined) {
      this.#timer = realSetTimeout(() => this.clear(), Math.max(0, this.expiresAt - realNow()));
      this.#timer.unref?.();
    }
    // seeded, so a ratio fault rejects the same items on every run
    this.#random = rng(spec.kind === 'item-status' ? (spec.seed ?? 1) : 1);
  }

  get active(): boolean {
    if (this.cleared) return false;
    if (this.expiresAt !== undefined && realNow() >= this.expiresAt) return false;
    return this.spec.count === undefined || this.hits < this.spec.count;
  }

  clear(): void {
    this.cleared = true;
    if (this.#timer !== undefined) realClearTimeout(this.#timer);
    this.#release();
  }

  // Resolves when held requests may go on.
  released(): Promise<void> {
    return this.#released;
  }

  // For item faults: whether the next item of the stream is hit.
  pickItem(): boolean {
    if (this.spec.kind !== 'item-status') return false;
    const n = this.#pick;
    this.#pick += 1;
    if (this.spec.ratio !== undefined) return this.#random() < this.spec.ratio;
    const every = this.spec.every ?? 1;
    return n % every === 0;
  }
}

export class FaultBoard {
  #faults: Fault[] = [];

  add(spec: FaultSpec): FaultHandle {
    if (spec.kind === 'item-status' && spec.ratio !== undefined && (spec.ratio < 0 || spec.ratio > 1)) {
      throw new RangeError(`item-status ratio must be within [0, 1], got ${spec.ratio}`);
    }
    if (spec.kind === 'item-status' && spec.every !== undefined && !(spec.every >= 1)) {
      throw new RangeError(`item-status every must be >= 1, got ${spec.every}`);
    }
    const fault = new Fault(spec);
    this.#faults.push(fault);
    return fault;
  }

  clear(): void {
    for (const fault of this.#faults) fault.clear();
    this.#faults = [];
  }

  // The first active request-level fault of one of `kinds` for this request, counted as hit.
  take(kinds: ReadonlyArray<Exclude<FaultKind, 'item-status'>>, isBulk: boolean): Fault | undefined {
    this.#prune();
    for (const fault of this.#faults) {
      if (!kinds.includes(fault.spec.kind as Exclude<FaultKind, 'item-status'>)) continue;
      if (!fault.active) continue;
      if (!isBulk && (fault.spec.requests ?? 'bulk') !== 'all') continue;
      fault.hits += 1;
      return fault;
    }
    return undefined;
  }

  // The status to reject one bulk item with, if an item fault picks it.
  itemStatus(index: string): number | undefined {
    for (const fault of this.#faults) {
      const spec = fault.spec;
      if (spec.kind !== 'item-status' || !fault.active) continue;
      if (spec.index !== undefined && spec.index !== index) continue;
      if (!fault.pickItem()) continue;
      fault.hits += 1;
      return spec.status;
    }
    return undefined;
  }

  #prune(): void {
    this.#faults = this.#faults.filter((f) => !f.cleared);
  }
}

export type { Fault };

export { realClearTimeout, realNow, realSetTimeout };

// `unref` lets the process exit during the sleep, for delays nobody awaits to the end (a latency fault on a
// request whose client went away).
export function realSleep(ms: number, opts: { unref?: boolean } = {}): Promise<void> {
  return new Promise((resolve) => {
    const timer = realSetTimeout(resolve, ms);
    if (opts.unref === true) timer.unref?.();
  });
}
