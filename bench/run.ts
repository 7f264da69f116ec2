// The benchmark runner: `npm run bench [scenario...] [-- --lines N --reps N --seed N --profile]`.
// One file per scenario under bench/scenarios/; each run prints a table and appends one JSON line
// to bench/results/results.jsonl. See bench/README.md.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findFluentBit } from './lib/fluent-bit.ts';
import { appendResult, gitInfo, machineInfo, printTable } from './lib/report.ts';
import type { BenchOptions, Scenario } from './lib/types.ts';
import { agentEs } from './scenarios/agent-es.ts';
import { encodeScenario } from './scenarios/encode.ts';
import { idle } from './scenarios/idle.ts';
import { parseCriScenario } from './scenarios/parse-cri.ts';
import { processorScenario } from './scenarios/processor.ts';
import { steady } from './scenarios/steady.ts';
import { storm429 } from './scenarios/storm429.ts';
import { tailOnce } from './scenarios/tail-once.ts';

/** In the order `npm run bench` runs them: the end-to-end headlines first, on a quiet process. */
const SCENARIOS: Scenario[] = [
  agentEs,
  steady,
  storm429,
  idle,
  tailOnce,
  parseCriScenario,
  encodeScenario,
  processorScenario,
];

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench/results/results.jsonl');

const USAGE = `Usage: npm run bench [scenario...] [-- options]
       node bench/run.ts [scenario...] [options]

Scenarios (all when none is named):
${SCENARIOS.map((s) => `  ${s.name.padEnd(10)} ${s.description}`).join('\n')}

Options:
  --lines <n>    CRI lines in the workload; k and m suffixes allowed (default: 1m)
  --reps <n>     timed repetitions, the median is reported (default: 3)
  --seed <n>     workload seed (default: 1)
  --profile      tail-once, agent-es: one more run under --cpu-prof, and each thread's top functions by self time
  --cli <path>   agent scenarios: run this CLI script instead of bin/logferry.js (which needs dist/),
                 e.g. bench/lib/cli-source.ts to run src/ without a build
  --duration <s> steady: seconds of writing; idle: the quiet window (default: 60)
  --rate <n>     steady: lines per second over all containers; k suffix allowed (default: 10k)
  --compare fluent-bit
                 agent-es, steady, storm429, idle: also run Fluent Bit (FLUENT_BIT=path, else
                 ../shared/peers/fluent-bit/fluent-bit) on the same workload; both rows and their ratio
  --no-save      do not append to bench/results/results.jsonl
  -h, --help     show this help
`;

function count(name: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(text.replaceAll('_', ''));
  const n = m === null ? Number.NaN : Number(m[1]) * ({ k: 1e3, m: 1e6 }[m[2]!.toLowerCase()] ?? 1);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${text}'`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      lines: { type: 'string', default: '1000000' },
      reps: { type: 'string', default: '3' },
      seed: { type: 'string', default: '1' },
      profile: { type: 'boolean', default: false },
      cli: { type: 'string' },
      duration: { type: 'string' },
      rate: { type: 'string' },
      compare: { type: 'string' },
      'no-save': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const unknown = positionals.filter((p) => !SCENARIOS.some((s) => s.name === p));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown scenario ${unknown.join(', ')}\n\n${USAGE}`);
    return 2;
  }
  const chosen = positionals.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => positionals.includes(s.name));
  if (values.compare !== undefined && values.compare !== 'fluent-bit') {
    process.stderr.write(`bench: --compare ${values.compare}: only fluent-bit is known\n`);
    return 2;
  }
  const fluentBit = values.compare === undefined ? undefined : findFluentBit(ROOT);
  const opts: BenchOptions = {
    lines: count('--lines', values.lines),
    reps: count('--reps', values.reps),
    seed: count('--seed', values.seed),
    profile: values.profile,
    root: ROOT,
    cli: values.cli,
    duration: values.duration === undefined ? undefined : count('--duration', values.duration),
    rate: values.rate === undefined ? undefined : count('--rate', values.rate),
    fluentBit: typeof fluentBit === 'object' ? fluentBit : undefined,
  };
  const git = gitInfo(ROOT);
  const m = machineInfo();
  process.stdout.write(
    `logferry bench: ${m.cpuModel}, ${m.cores} cores, ${(m.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB, node ${m.node} ${m.platform}-${m.arch}; ` +
      `commit ${git.commit ?? 'unknown'}${git.dirty ? ' + uncommitted changes' : ''}; ${opts.lines.toLocaleString('en-US')} lines, ${opts.reps} rep(s)\n`,
  );

  if (typeof fluentBit === 'string') process.stdout.write(`${fluentBit}\n`);
  else if (fluentBit !== undefined) {
    process.stdout.write(
      `compared with ${fluentBit.version}: ${fluentBit.binary}, config ${fluentBit.config}\n`,
    );
  }

  const [load1] = m.loadAverage;
  if (load1 !== undefined && load1 > 0.5) {
    process.stdout.write(
      `warning: load average ${m.loadAverage.join(' ')} on ${m.cores} cores: something else is running, figures will be slower and noisier\n`,
    );
  }

  let failed = 0;
  for (const s of chosen) {
    const started = Date.now();
    const machine = machineInfo();
    try {
      const result = await s.run(opts);
      result.notes.push(`(${((Date.now() - started) / 1000).toFixed(1)} s including workload generation)`);
      printTable(`${s.name}: ${s.description}`, result.table, result.notes);
      if (!values['no-save']) appendResult(RESULTS, s.name, git, machine, result);
    } catch (err) {
      failed++;
      process.stderr.write(`\n== ${s.name}: FAILED\n${(err as Error)?.stack ?? String(err)}\n`);
    }
  }
  if (!values['no-save']) process.stdout.write(`\nresults appended to ${RESULTS}\n`);
  return failed === 0 ? 0 : 1;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench: ${(err as Error)?.message ?? String(err)}\n`);
  process.exitCode = 2;
}
