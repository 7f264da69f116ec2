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
  filesOpen = 0;
  rotations = 0;
  skipped = 0;
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
  warn(message: string, context?: Record<string, unknown>): void {
    this.#log.warn(message, context);
  }
}
