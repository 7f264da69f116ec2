// What reached the counting Elasticsearch against what the generator wrote: delivered, duplicated,
// lost, and the fields checked.
import { type RunningAgent, waitUntil } from './agent.ts';
import type { CountingEs } from './counting-es.ts';
import type { CriTree } from './workload.ts';

/**
 * Waits until `expected` distinct documents are stored (true), or until nothing new arrived for
 * `stallMs` once `settled()` holds (e.g. the writers are done), or `timeoutMs` (false): an agent that
 * loses records ends the wait and shows them as lost instead of failing the run. Throws if it exits.
 */
export async function waitForDelivery(
  es: CountingEs,
  expected: number,
  agent: RunningAgent,
  o: { stallMs: number; timeoutMs: number; settled?: () => boolean },
): Promise<{ caughtUp: boolean; ms: number }> {
  const t0 = performance.now();
  let seen = -1;
  let seenAt = t0;
  let caughtUp = false;
  await waitUntil(
    () => {
      const now = performance.now();
      caughtUp = es.uniqueIds >= expected;
      if (es.uniqueIds !== seen || !(o.settled?.() ?? true)) {
        seen = es.uniqueIds;
        seenAt = now;
      }
      return caughtUp || now - seenAt > o.stallMs || now - t0 > o.timeoutMs;
    },
    Number.POSITIVE_INFINITY,
    'waiting for delivery',
    agent,
  );
  return { caughtUp, ms: performance.now() - t0 };
}

/** What the tree's files hold in total: the expectations a run is checked against. */
export function treeTotals(tree: CriTree): { records: number; jsonRecords: number; partialRecords: number } {
  let records = 0;
  let jsonRecords = 0;
  let partialRecords = 0;
  for (const f of tree.files) {
    records += f.meta.records;
    jsonRecords += f.meta.jsonRecords;
    partialRecords += f.meta.partialRecords;
  }
  return { records, jsonRecords, partialRecords };
}

/** What reached the counting Elasticsearch, against what the generator wrote. */
export interface Delivery {
  expected: number;
  /** distinct documents stored */
  delivered: number;
  /** documents sent again after they were stored (409s to `create`); 0 unless `idsCounted` */
  duplicated: number;
  /**
   * whether documents carried ids (logferry's): without them (Fluent Bit sends none) every document
   * counts as a new one, a duplicate cannot be told apart and shows only as `extra`
   */
  idsCounted: boolean;
  /** expected documents that never arrived */
  lost: number;
  /** distinct documents beyond the expected count (a record split in two, say) */
  extra: number;
  /** source lines that were not JSON objects */
  invalid: number;
  /** with a json object, a partial flag, kubernetes labels from the fake API: 0 unless fields were counted */
  json: number;
  partial: number;
  labelled: number;
  /** empty when every record arrived exactly once, with its fields */
  problems: string[];
}

export function delivery(es: CountingEs, tree: CriTree, idsCounted = true): Delivery {
  const t = treeTotals(tree);
  const s = es.stats;
  const d: Delivery = {
    expected: t.records,
    delivered: es.uniqueIds,
    duplicated: s.duplicates,
    idsCounted,
    lost: Math.max(0, t.records - es.uniqueIds),
    extra: Math.max(0, es.uniqueIds - t.records),
    invalid: s.invalid,
    json: s.withJson,
    partial: s.withPartial,
    labelled: s.withLabels,
    problems: [],
  };
  const n = (x: number) => x.toLocaleString('en-US');
  if (d.lost > 0) d.problems.push(`${n(d.lost)} lost`);
  if (d.extra > 0) {
    d.problems.push(
      `${n(d.extra)} more documents than records${idsCounted ? '' : ' (records split in two, or duplicates: these documents have no _id to tell)'}`,
    );
  }
  if (d.duplicated > 0) d.problems.push(`${n(d.duplicated)} duplicated`);
  if (d.invalid > 0) d.problems.push(`${n(d.invalid)} source lines not JSON objects`);
  if (s.fieldsCounted) {
    if (d.json !== t.jsonRecords) d.problems.push(`${n(d.json)} with json, expected ${n(t.jsonRecords)}`);
    if (d.partial !== t.partialRecords) {
      d.problems.push(`${n(d.partial)} flagged partial, expected ${n(t.partialRecords)}`);
    }
    if (d.labelled !== d.delivered) d.problems.push(`${n(d.delivered - d.labelled)} without pod labels`);
  } else if (s.parsedWithoutLabels > 0) {
    d.problems.push(`${n(s.parsedWithoutLabels)} of ${n(s.parsed)} sampled documents without pod labels`);
  }
  if (s.unexpected.length > 0) {
    d.problems.push(`unexpected requests: ${[...new Set(s.unexpected)].slice(0, 5).join(', ')}`);
  }
  return d;
}
