// `npm run chaos [-- --seed N --duration-s S --pods P --rate R --rotation kubelet|reuse --rotate-kib K]`:
// a chaos run with a summary; exits non-zero on any loss, duplicate or out-of-order line. The seed
// replays a run's decisions. `--rotation reuse` makes new 0.log files take freed inodes (issue #12).
import { parseArgs } from 'node:util';
import { type RotationMode, runChaos } from './harness.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    'duration-s': { type: 'string' },
    pods: { type: 'string' },
    rate: { type: 'string' },
    quiet: { type: 'boolean' },
    calm: { type: 'boolean' },
    rotation: { type: 'string' },
    'rotate-kib': { type: 'string' },
  },
});
const rotation = values.rotation ?? 'kubelet';
if (rotation !== 'kubelet' && rotation !== 'reuse') {
  process.stderr.write(`chaos: --rotation must be kubelet or reuse, not ${rotation}\n`);
  process.exit(2);
}
const seed = Number(values.seed ?? Date.now() % 1_000_000);
const summary = await runChaos({
  seed,
  durationMs: Number(values['duration-s'] ?? 120) * 1000,
  pods: Number(values.pods ?? 6),
  rate: Number(values.rate ?? 200),
  rotateBytes: Number(values['rotate-kib'] ?? 256) * 1024,
  keepRotated: 5,
  calm: values.calm === true,
  rotation: rotation satisfies RotationMode,
  log: values.quiet ? undefined : (l) => process.stderr.write(`${new Date().toISOString()} ${l}\n`),
});
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
const ok =
  summary.lost === 0 &&
  summary.duplicates === 0 &&
  summary.outOfOrder === 0 &&
  summary.delivered === summary.written;
process.stdout.write(ok ? 'chaos: every line delivered exactly once\n' : `chaos: FAILED (seed ${seed})\n`);
process.exitCode = ok ? 0 : 1;
