import type { RecordBatch, Sink } from '../pipeline/types.ts';

/**
 * Writes documents as NDJSON to a stream (stdout). A batch is acknowledged when the stream has
 * accepted its bytes (the write callback), so a checkpoint never covers lines that were not
 * written. A slow reader of the pipe holds acknowledgements back, which fills the byte budget and
 * pauses reading: no unbounded buffering in the stream.
 */
export class StreamSink implements Sink {
  readonly #out: NodeJS.WritableStream;
  #inFlight = 0;
  #waiters: Array<() => void> = [];
  #failed: Error | undefined;
  readonly #onFatal: (err: Error) => void;

  constructor(out: NodeJS.WritableStream, onFatal: (err: Error) => void) {
    this.#out = out;
    this.#onFatal = onFatal;
    out.on('error', (err: Error) => this.#fail(err));
  }

  get failed(): Error | undefined {
    return this.#failed;
  }

  write(batch: RecordBatch): void {
    if (this.#failed !== undefined) return;
    this.#inFlight++;
    this.#out.write(batch.body, (err) => {
      this.#inFlight--;
      if (err) this.#fail(err);
      else batch.ack();
      this.#settle();
    });
  }

  flush(): Promise<void> {
    if (this.#inFlight === 0 || this.#failed !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async close(deadline?: number): Promise<void> {
    if (deadline === undefined) return this.flush();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.flush(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      }),
    ]);
    clearTimeout(timer);
  }

  #fail(err: Error): void {
    if (this.#failed !== undefined) return;
    this.#failed = err;
    this.#settle(true);
    this.#onFatal(err);
  }

  #settle(force = false): void {
    if (!force && this.#inFlight > 0) return;
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w();
  }
}
