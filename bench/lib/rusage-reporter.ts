// Preloaded into a benchmarked child with `node --import <this file's URL>`: when the process exits,
// it writes its own resource usage to the file named by LOGFERRY_BENCH_RUSAGE. The process measures
// itself, so the figures are exact (all threads, peak RSS from the kernel) and need no external
// tools such as /usr/bin/time.
//
// Keep this file free of type syntax: bench/lib/child.ts runs a .mjs copy of it, so that the measured
// process does not load Node's TypeScript stripper.
import { writeFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { isMainThread } from 'node:worker_threads';

const target = process.env.LOGFERRY_BENCH_RUSAGE;

if (target !== undefined && target !== '' && isMainThread) {
  process.on('exit', (code) => {
    const heap = getHeapStatistics();
    writeFileSync(
      target,
      JSON.stringify({
        // maxRSS in KiB; userCPUTime and systemCPUTime in µs, for every thread of the process
        resourceUsage: process.resourceUsage(),
        uptimeSeconds: process.uptime(),
        exitCode: code,
        heap: {
          totalHeapSize: heap.total_heap_size,
          usedHeapSize: heap.used_heap_size,
          peakMallocedMemory: heap.peak_malloced_memory,
          externalMemory: heap.external_memory,
        },
      }),
    );
  });
}
