import { parseCri } from '../../src/parse/cri.ts';
import { loadCorpus } from '../lib/corpus.ts';
import { MICRO_COLUMNS, type MicroRow, microFigures, microTableRow, timePasses } from '../lib/micro.ts';
import type { BenchOptions, Scenario, ScenarioResult } from '../lib/types.ts';

const WARMUP_LINES = 200_000;

export const parseCriScenario: Scenario = {
  name: 'parse-cri',
  description: 'parseCri (src/parse/cri.ts) over every line of the workload, in process, lines already split',
  async run(opts: BenchOptions): Promise<ScenarioResult> {
    const corpus = loadCorpus(opts.lines, opts.seed);
    const { buf, starts, ends, file } = corpus;
    const pass = (count: number) => () => {
      let sum = 0;
      for (let i = 0; i < count; i++) {
        const line = parseCri(buf, starts[i]!, ends[i]!);
        sum += line.message.length + (line.partial ? 1 : 0) + (line.error === undefined ? 0 : 1e6);
      }
      return sum;
    };
    const n = starts.length;
    const row: MicroRow = {
      name: 'parseCri',
      times: timePasses(pass(n), pass(Math.min(n, WARMUP_LINES)), opts.reps),
      lines: n,
      bytes: file.meta.bytes,
    };
    return {
      params: {
        lines: n,
        bytes: file.meta.bytes,
        seed: opts.seed,
        reps: opts.reps,
        warmupLines: WARMUP_LINES,
      },
      figures: { parseCri: microFigures(row) },
      table: { columns: MICRO_COLUMNS, rows: [microTableRow(row)] },
      notes: [
        `${opts.reps} pass(es) over ${n.toLocaleString('en-US')} lines after a warm-up; median (min–max)`,
      ],
    };
  },
};
