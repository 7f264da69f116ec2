/**
 * The samples of a Prometheus text exposition (format 0.0.4), as `logferry top` reads them from the
 * agent's /metrics. Only what top needs: metric name, labels and value per sample line; comments,
 * HELP/TYPE lines and timestamps are skipped, and a line that does not parse is ignored rather than
 * failing the whole scrape (one odd metric must not blank the screen).
 *
 * Hand-written (~40 lines) rather than a dependency: the one parser on npm
 * (parse-prometheus-text-format) has not been released for years, brings a dependency of its own into
 * the agent's image, and turns the text into nested objects per metric family that top would have to
 * walk again.
 */

export interface Sample {
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** name -> its samples, in exposition order */
export type MetricSamples = ReadonlyMap<string, readonly Sample[]>;

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/gy;

function number(text: string): number | undefined {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  const n = Number(text);
  return text.trim() === '' || Number.isNaN(n) ? undefined : n;
}

function labels(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  LABEL.lastIndex = 0;
  let end = 0;
  for (let m = LABEL.exec(text); m !== null; m = LABEL.exec(text)) {
    out[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    end = LABEL.lastIndex;
  }
  return text.slice(end).trim() === '' ? out : undefined;
}

export function parsePrometheusText(text: string): MetricSamples {
  const out = new Map<string, Sample[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE_LINE.exec(line);
    if (m === null) continue;
    const value = number(m[3]!);
    const parsed = m[2] === undefined ? {} : labels(m[2]);
    if (value === undefined || parsed === undefined) continue;
    const list = out.get(m[1]!);
    if (list === undefined) out.set(m[1]!, [{ labels: parsed, value }]);
    else list.push({ labels: parsed, value });
  }
  return out;
}

/**
 * The sum of a metric's samples whose labels include `match`; undefined when the agent does not
 * export the metric at all (e.g. the output metrics of an agent writing to stdout), so that "none"
 * and "zero" are told apart.
 */
export function metricValue(
  metrics: MetricSamples,
  name: string,
  match: Readonly<Record<string, string>> = {},
): number | undefined {
  const samples = metrics.get(name);
  if (samples === undefined) return undefined;
  let sum = 0;
  for (const s of samples) {
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}
