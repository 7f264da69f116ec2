import { Tailer, type TailerOptions } from '../source/tailer.ts';
import type { Transforms } from '../transform/types.ts';
import type { FileWorkFactory } from '../worker/file-work.ts';
import { ByteBudget } from './budget.ts';
import type { Enricher, Sink, SourceEvents } from './types.ts';

export interface PipelineOptions {
  tailer: TailerOptions;
  /** bytes read but not yet acknowledged, at most (the backpressure point) */
  maxBufferBytes: number;
}

export interface PipelineDeps {
  sink: Sink;
  events: SourceEvents;
  enricher?: Enricher | undefined;
  transforms?: Transforms | undefined;
  work?: FileWorkFactory | undefined;
}

/**
 * Wires source -> parse -> encode -> sink and the acknowledgements back to the checkpoints. The CLI
 * and the agent are thin shells around this.
 */
export class Pipeline {
  readonly budget: ByteBudget;
  readonly tailer: Tailer;
  readonly #sink: Sink;
  #stopping: Promise<void> | undefined;

  constructor(opts: PipelineOptions, deps: PipelineDeps) {
    this.budget = new ByteBudget(opts.maxBufferBytes);
    this.#sink = deps.sink;
    this.tailer = new Tailer(opts.tailer, {
      sink: deps.sink,
      budget: this.budget,
      events: deps.events,
      enricher: deps.enricher,
      transforms: deps.transforms,
      work: deps.work,
    });
  }

  start(): Promise<void> {
    return this.tailer.start();
  }

  /** `--once`: read everything found at start, wait for every acknowledgement, save, close. */
  async runOnce(): Promise<void> {
    await this.tailer.whenIdle();
    await this.#sink.flush();
    await this.#finish();
  }

  /** Shutdown: stop reading, give the sink until the deadline to deliver, save what was acknowledged. */
  stop(timeoutMs: number): Promise<void> {
    this.#stopping ??= (async () => {
      const deadline = Date.now() + timeoutMs;
      await this.tailer.stopReading();
      await this.#sink.close(deadline);
      await this.#finish();
    })();
    return this.#stopping;
  }

  async #finish(): Promise<void> {
    await this.tailer.stopReading();
    await this.tailer.saveCheckpoints(true);
    await this.tailer.close();
  }
}
