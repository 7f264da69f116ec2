// Tables for scenarios that measure more than one agent (`--compare fluent-bit`): one column per
// agent, then logferry's figure over the reference's.
import type { CountingMode } from './counting-es.ts';
import type { Delivery } from './delivery.ts';
import { fmt } from './stats.ts';
import type { Table } from './types.ts';

/** One row: a value per agent, in the agents' order; numbers are formatted and compared. */
export interface Figure {
  name: string;
  values: Array<number | string | undefined>;
  /** significant digits (default 3) */
  digits?: number;
  target?: string;
}

/** `a / b` as `1.23×`, or '' when either is not a positive figure. */
export function ratioText(a: number | string | undefined, b: number | string | undefined): string {
  if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b)) return '';
  if (b === 0) return '';
  return `${fmt(a / b)}×`;
}

/**
 * `figure | value | target` for one agent; `figure | logferry | fluent-bit | logferry / fluent-bit |
 * target` for two.
 */
export function sideBySide(names: string[], figures: Figure[]): Table {
  const cell = (v: number | string | undefined, digits: number) =>
    v === undefined ? '' : typeof v === 'number' ? fmt(v, digits) : v;
  const two = names.length > 1;
  return {
    columns: [
      'figure',
      ...(two ? names : ['value']),
      ...(two ? [`${names[0]} / ${names[1]}`] : []),
      'target',
    ],
    rows: figures.map((f) => [
      f.name,
      ...names.map((_, i) => cell(f.values[i], f.digits ?? 3)),
      ...(two ? [ratioText(f.values[0], f.values[1])] : []),
      f.target ?? '',
    ]),
  };
}

/** delivered / duplicated / lost, one value per agent's delivery (duplicates need document ids). */
export function deliveryFigures(ds: Delivery[]): Figure[] {
  const n = (x: number) => x.toLocaleString('en-US');
  return [
    { name: 'documents delivered', values: ds.map((d) => n(d.delivered)), target: n(ds[0]?.expected ?? 0) },
    { name: '  duplicated', values: ds.map((d) => (d.idsCounted ? n(d.duplicated) : 'n/a')), target: '0' },
    { name: '  lost', values: ds.map((d) => n(d.lost)), target: '0' },
  ];
}

/** The correctness line of the notes for one agent's delivery, counted in `mode`. */
export function correctnessNote(name: string, d: Delivery, mode: CountingMode): string {
  const checked = mode.fields
    ? ', with its fields (json, partial) and pod labels'
    : mode.parseEvery === 1
      ? ', every document parsed and with pod labels'
      : `, 1 document in ${mode.parseEvery} parsed and with pod labels`;
  if (d.problems.length > 0) return `CORRECTNESS PROBLEMS (${name}): ${d.problems.join('; ')}`;
  return d.idsCounted
    ? `correctness (${name}): every record delivered exactly once${checked}`
    : `correctness (${name}): ${d.delivered.toLocaleString('en-US')} documents for ${d.expected.toLocaleString('en-US')} records (its documents have no _id: a duplicate cannot be told from a new document, and would show as more documents than records)${checked}`;
}

/** A run's numbers for results.jsonl, to 4 significant digits (undefined as null). */
export function roundedFigures(run: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(run).map(([k, v]) => [k, typeof v === 'number' ? Number(v.toPrecision(4)) : (v ?? null)]),
  );
}

/** A delivery's counts for results.jsonl (duplicates null where documents carry no ids). */
export function deliveryFields(d: Delivery): Record<string, unknown> {
  return {
    delivered: d.delivered,
    duplicated: d.idsCounted ? d.duplicated : null,
    lost: d.lost,
    problems: d.problems,
  };
}
