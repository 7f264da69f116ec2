import type { SkipEntry } from '../transform/types.ts';

/**
 * What a restart at a checkpoint must know besides the offset: where reading resumes in the middle
 * of a line that was cut into pieces (max-line-bytes), and which records of each stream after the
 * checkpoint were already delivered (in multiline groups, or joined from partial lines that began
 * before it): see parse/multiline/grouper.ts, `resumePoint`.
 */
export interface ContinuationState {
  /** number of the next piece of the cut line; 0 when the checkpoint is not inside a cut line */
  part: number;
  time: string | undefined;
  stream: 'stdout' | 'stderr' | undefined;
  skip?: SkipEntry[] | undefined;
}

export interface AckEntry {
  readonly end: number;
  readonly continuation: ContinuationState | undefined;
  done: boolean;
}

/**
 * Turns out-of-order batch acknowledgements of one file into a checkpoint: the end of the longest
 * prefix of batches that are all acknowledged. Bookkeeping is per batch, never per line.
 */
export class AckTracker {
  #queue: AckEntry[] = [];
  #head = 0;
  #committed: number;
  #continuation: ContinuationState | undefined;
  readonly #onAdvance: (committed: number, delta: number) => void;

  constructor(
    start: number,
    continuation: ContinuationState | undefined,
    onAdvance: (committed: number, delta: number) => void,
  ) {
    this.#committed = start;
    this.#continuation = continuation;
    this.#onAdvance = onAdvance;
  }

  /** offset up to which every byte's records are acknowledged */
  get committed(): number {
    return this.#committed;
  }

  get continuation(): ContinuationState | undefined {
    return this.#continuation;
  }

  get pending(): number {
    return this.#queue.length - this.#head;
  }

  /** Registers a batch that ends (for checkpoint purposes) at `end`; batches must be added in file order. */
  add(end: number, continuation: ContinuationState | undefined): AckEntry {
    const entry: AckEntry = { end, continuation, done: false };
    this.#queue.push(entry);
    return entry;
  }

  ack(entry: AckEntry): void {
    if (entry.done) return;
    entry.done = true;
    const before = this.#committed;
    let advanced = false;
    while (this.#head < this.#queue.length && this.#queue[this.#head]!.done) {
      const head = this.#queue[this.#head++]!;
      if (head.end >= this.#committed) {
        this.#committed = head.end;
        this.#continuation = head.continuation;
        advanced = true;
      }
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (advanced && this.#committed > before) this.#onAdvance(this.#committed, this.#committed - before);
  }
}
