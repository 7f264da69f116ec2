export interface Summary {
  median: number;
  min: number;
  max: number;
  values: number[];
}

export function summarize(values: number[]): Summary {
  if (values.length === 0) throw new Error('summarize: no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, values };
}

/** A figure with a fixed number of significant digits, grouped for reading (1,234,567). */
export function fmt(n: number, digits = 3): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 10 ** digits) return Math.round(n).toLocaleString('en-US');
  return Number(n.toPrecision(digits)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

/** `median (min–max)` */
export function fmtRange(s: Summary, digits = 3): string {
  return s.values.length === 1
    ? fmt(s.median, digits)
    : `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

/** Rounds for the results file: enough digits to compare runs, not float noise. */
export function round(n: number, digits = 4): number {
  return Number(n.toPrecision(digits));
}

export function roundSummary(
  s: Summary,
  digits = 4,
): { median: number; min: number; max: number; values: number[] } {
  return {
    median: round(s.median, digits),
    min: round(s.min, digits),
    max: round(s.max, digits),
    values: s.values.map((v) => round(v, digits)),
  };
}
