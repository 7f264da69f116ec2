import type { Budget } from './types.ts';

/**
 * The one byte budget: bytes read from files and not yet acknowledged by the sink. Readers wait in
 * `waitForRoom()` while it is spent, so memory is bounded by the limit plus at most one read chunk
 * per reader (a reader checks for room before reading, not after).
 */
export class ByteBudget implements Budget {
  #used = 0;
  #waiters: Array<() => void> = [];
  readonly limit: number;
  /** when bytes were last released (an acknowledgement): the pipeline's progress signal */
  lastReleaseMs = Date.now();

  constructor(limit: number) {
    if (!(limit > 0)) throw new RangeError(`budget limit must be positive, got ${limit}`);
    this.limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  hasRoom(): boolean {
    return this.#used < this.limit;
  }

  acquire(bytes: number): void {
    this.#used += bytes;
  }

  release(bytes: number): void {
    this.lastReleaseMs = Date.now();
    this.#used -= bytes;
    if (this.#used < 0) this.#used = 0;
    if (this.#used < this.limit && this.#waiters.length > 0) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const wake of waiters) wake();
    }
  }

  waitForRoom(): Promise<void> {
    if (this.hasRoom()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
