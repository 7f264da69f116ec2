import { documentContext, encodeDocument, mayCarryJson } from '../../src/encode/document.ts';
import { jsonObjectText } from '../../src/parse/json-message.ts';
import { BENCH_HOST, BENCH_PATH, corpusRecords, loadCorpus, releaseRecords } from '../lib/corpus.ts';
import { MICRO_COLUMNS, type MicroRow, microFigures, microTableRow, timePasses } from '../lib/micro.ts';
import type { BenchOptions, Scenario, ScenarioResult } from '../lib/types.ts';

const WARMUP_RECORDS = 200_000;

/**
 * The per-record work after parsing, in the three pieces FileProcessor#encode does: find and
 * normalize a JSON message, then build the document. Per input line, so the figures add up with
 * parse-cri's and compare with processor's.
 */
export const encodeScenario: Scenario = {
  name: 'encode',
  description:
    'jsonObjectText (src/parse/json-message.ts) and encodeDocument (src/encode/document.ts) over the records of the workload',
  async run(opts: BenchOptions): Promise<ScenarioResult> {
    const corpus = loadCorpus(opts.lines, opts.seed);
    const records = corpusRecords(corpus);
    const ctx = documentContext(BENCH_PATH, BENCH_HOST);
    const fallbackTime = `"${new Date().toISOString()}"`;
    const json = records.map((r) => (mayCarryJson(r) ? jsonObjectText(r.message) : undefined));
    const withJson = json.reduce((n, j) => n + (j === undefined ? 0 : 1), 0);
    if (withJson !== corpus.file.meta.jsonRecords) {
      throw new Error(
        `encode: ${withJson} JSON messages, the generator wrote ${corpus.file.meta.jsonRecords}`,
      );
    }

    const jsonPass = (count: number) => () => {
      let sum = 0;
      for (let i = 0; i < count; i++) {
        const r = records[i]!;
        const j = mayCarryJson(r) ? jsonObjectText(r.message) : undefined;
        sum += j === undefined ? 1 : j.length;
      }
      return sum;
    };
    const encodePass = (count: number) => () => {
      let sum = 0;
      for (let i = 0; i < count; i++) {
        const j = json[i];
        sum += encodeDocument(
          records[i]!,
          ctx,
          fallbackTime,
          j === undefined ? undefined : { text: j },
        ).length;
      }
      return sum;
    };
    const bothPass = (count: number) => () => {
      let sum = 0;
      for (let i = 0; i < count; i++) {
        const r = records[i]!;
        const j = mayCarryJson(r) ? jsonObjectText(r.message) : undefined;
        sum += encodeDocument(r, ctx, fallbackTime, j === undefined ? undefined : { text: j }).length;
      }
      return sum;
    };
    const n = records.length;
    const warm = Math.min(n, WARMUP_RECORDS);
    const { lines, bytes } = corpus.file.meta;
    const time = (name: string, pass: (count: number) => () => number): MicroRow => ({
      name,
      times: timePasses(pass(n), pass(warm), opts.reps),
      lines,
      bytes,
    });
    let rows: MicroRow[];
    try {
      rows = [
        time('jsonObjectText', jsonPass),
        time('encodeDocument', encodePass),
        time('both (as the processor)', bothPass),
      ];
    } finally {
      // ~1 GB of records and strings would slow the garbage collector in the scenarios after this one
      releaseRecords();
    }
    return {
      params: { lines, records: n, jsonRecords: withJson, bytes, seed: opts.seed, reps: opts.reps },
      figures: {
        jsonObjectText: microFigures(rows[0]!),
        encodeDocument: microFigures(rows[1]!),
        both: microFigures(rows[2]!),
      },
      table: { columns: MICRO_COLUMNS, rows: rows.map(microTableRow) },
      notes: [
        `${n.toLocaleString('en-US')} records (${withJson.toLocaleString('en-US')} JSON) from ${lines.toLocaleString('en-US')} lines; times per input line; records built outside the timing`,
        'encodeDocument gets the JSON text computed beforehand; "both" is what FileProcessor#encode does per record',
      ],
    };
  },
};
