import type { Tailer } from '../source/tailer.ts';
import type { SourceCounters } from '../telemetry/counters.ts';

function mib(n: number): string {
  return (n / (1024 * 1024)).toFixed(1);
}

/** A one-line progress display on stderr for `--once` runs on a terminal. */
export function startProgress(tailer: Tailer, counters: SourceCounters): { stop(): void } {
  const files = tailer.status();
  const total = files.reduce((sum, f) => sum + Math.max(0, f.size - f.readPos), 0);
  const started = Date.now();
  const draw = () => {
    const secs = Math.max(0.001, (Date.now() - started) / 1000);
    const rate = Math.round(counters.lines / secs);
    process.stderr.write(
      `\r\x1b[2Kread ${mib(counters.bytes)} of ${mib(total)} MiB, ${counters.lines} lines, ${rate} lines/s`,
    );
  };
  const timer = setInterval(draw, 250);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      draw();
      process.stderr.write('\n');
    },
  };
}
