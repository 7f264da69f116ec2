import type { SourceEvents } from '../pipeline/types.ts';
import type { Logger } from './logger.ts';

/**
 * Source-side counters in plain numbers. The agent mirrors them into prom-client; the CLI reads them
 * for its progress line and tests read them directly.
 */
export class SourceCounters implements SourceEvents {
  bytes = 0;
  lines = 0;
  parseErrors = 0;
  splits = 0;
  filtered = 0;
  truncated = 0;
  /** throttled records and bytes by namespace and action (`<namespace>\u0000<action>`) */
  readonly throttled = new Map<string, { lines: number; bytes: number }>();
  filesOpen = 0;
  /** records worker threads running now, and how often one was started */
  workersRunning = 0;
  workerStarts = 0;
  rotations = 0;
  skipped = 0;
  /** files that became unreadable, by errno code (a short, fixed set: a fine label, unlike the path) */
  readonly unreadable = new Map<string, number>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  bytesRead(n: number): void {
    this.bytes += n;
  }
  linesRead(n: number): void {
    this.lines += n;
  }
  parseError(_kind: string): void {
    this.parseErrors++;
  }
  lineSplit(): void {
    this.splits++;
  }
  recordsFiltered(n: number): void {
    this.filtered += n;
  }
  recordsTruncated(n: number): void {
    this.truncated += n;
  }
  /** ThrottleEvents (transform/throttle.ts) */
  throttledRecords(namespace: string, action: 'drop' | 'pause', lines: number, bytes: number): void {
    const key = `${namespace}\u0000${action}`;
    const t = this.throttled.get(key) ?? { lines: 0, bytes: 0 };
    t.lines += lines;
    t.bytes += bytes;
    this.throttled.set(key, t);
  }
  workerChanged(change: 'started' | 'stopped'): void {
    if (change === 'started') {
      this.workersRunning++;
      this.workerStarts++;
    } else this.workersRunning--;
  }
  fileOpened(_path: string): void {
    this.filesOpen++;
  }
  fileClosed(_path: string): void {
    this.filesOpen--;
  }
  rotated(_path: string, _kind: 'rename' | 'truncate' | 'delete'): void {
    this.rotations++;
  }
  skippedBytes(_path: string, bytes: number): void {
    this.skipped += bytes;
  }
  fileUnreadable(_path: string, code: string): void {
    this.unreadable.set(code, (this.unreadable.get(code) ?? 0) + 1);
  }
  warn(message: string, context?: Record<string, unknown>): void {
    this.#log.warn(message, context);
  }
}
