import type { FileRow, TopView } from './view.ts';

/**
 * The view as text lines, none wider than `width` (pure: the tests render recorded agent answers at
 * several widths). Plain characters only, so the same lines serve the terminal and `--once` into a
 * pipe; a terminal's height, when given, bounds the file table, and the rest is summed up in a line.
 */
export interface RenderOptions {
  width: number;
  /** total lines available (the terminal's rows); undefined: no bound but `maxFiles` */
  height?: number | undefined;
  /** file rows at most; default: all that fit */
  maxFiles?: number | undefined;
  /** a last line, e.g. the interactive view's key help */
  footer?: string | undefined;
}

const LABEL_WIDTH = 11;
const ELLIPSIS = '…';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '-';
  if (n < 1024) return `${Math.round(n)} B`;
  let v = n;
  let unit = 0;
  while (v >= 1024 && unit < UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  return `${v.toFixed(1)} ${UNITS[unit]}`;
}

const WHOLE = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const ONE_DECIMAL = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

/** 0, 0.4, 12, 12,345: a decimal only where it says something */
export function formatCount(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  if (n === 0) return '0';
  return n < 10 ? ONE_DECIMAL.format(n) : WHOLE.format(n);
}

export function formatInteger(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? '-' : WHOLE.format(Math.round(n));
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (x: number) => String(x).padStart(2, '0');
  if (d > 0) return `${d}d ${pad(h)}h`;
  if (h > 0) return `${h}h ${pad(m)}m`;
  if (m > 0) return `${m}m ${pad(s % 60)}s`;
  return `${s}s`;
}

/** Cuts the end off: `abcdef` -> `abc…` */
export function truncateEnd(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  if (width <= 0) return '';
  return chars.slice(0, width - 1).join('') + ELLIPSIS;
}

/** Keeps the end, where a path says the most (container and file): `…/checkout/0.log` */
export function truncateStart(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  if (width <= 0) return '';
  return ELLIPSIS + chars.slice(chars.length - (width - 1)).join('');
}

/** Keeps both ends: a pod's namespace and its generated suffix tell pods apart */
export function truncateMiddle(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  if (width <= 1) return truncateEnd(text, width);
  const head = Math.ceil((width - 1) / 2);
  const tail = width - 1 - head;
  return chars.slice(0, head).join('') + ELLIPSIS + (tail > 0 ? chars.slice(-tail).join('') : '');
}

function bar(fraction: number, width: number): string {
  if (width < 3) return '';
  const inner = width - 2;
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * inner);
  return `[${'#'.repeat(filled)}${'-'.repeat(inner - filled)}]`;
}

const row = (label: string, text: string) => `${label.padEnd(LABEL_WIDTH)}${text}`;

function summary(view: TopView, width: number): string[] {
  const { input, output, buffer, files } = view;
  const lines: string[] = [];
  if (view.stale !== undefined) lines.push(`! ${view.stale}`);
  lines.push(
    `logferry ${view.version} at ${view.url}, up ${formatDuration(view.uptimeSeconds)}, ` +
      `pod metadata ${view.metadata.state}${view.metadata.state === 'disabled' ? '' : ` (${view.metadata.cachedPods} pods)`}`,
  );
  const perSec = (n: number | undefined) => (n === undefined ? '-' : `${formatBytes(n)}/s`);
  const rates = (count: number | undefined, unit: string, bytes: number | undefined) =>
    `${`${formatCount(count).padStart(9)} ${unit}/s`.padEnd(17)}${perSec(bytes).padStart(12)}`;
  lines.push(row('in', rates(input.linesPerSec, 'lines', input.bytesPerSec)));
  lines.push(row('out', rates(output.docsPerSec, 'docs', output.bytesPerSec)));
  // the sink's own word too where it says more (idle, unauthorized)
  const state = output.state === 'ok' || output.state === 'retrying' ? '' : ` (${output.state})`;
  lines.push(row('output', `${output.kind}: ${output.health}${state}`));
  lines.push(row('last error', output.lastError?.replace(/[:\s]+$/, '') || 'none'));
  const fraction = buffer.limitBytes > 0 ? buffer.usedBytes / buffer.limitBytes : 0;
  const fill = `${formatBytes(buffer.usedBytes)} of ${formatBytes(buffer.limitBytes)} (${Math.round(fraction * 100)}%)`;
  const barWidth = Math.min(32, width - LABEL_WIDTH - fill.length - 1);
  lines.push(row('buffer', barWidth >= 7 ? `${fill} ${bar(fraction, barWidth)}` : fill));
  lines.push(
    row(
      'in output',
      output.queuedDocs === undefined
        ? '-'
        : `${formatInteger(output.queuedDocs)} docs, ${formatInteger(output.inflightRequests)} requests in flight`,
    ),
  );
  lines.push(
    row(
      'per minute',
      `${formatCount(output.retriesPerMin)} retries, ${formatCount(output.deadLettersPerMin)} dead letters`,
    ),
  );
  lines.push(
    row(
      'files',
      `${files.total} followed, ${files.lagging} behind` +
        (files.lagging > 0 ? ` by ${formatBytes(files.lagBytes)}` : ''),
    ),
  );
  return lines;
}

const LAG_WIDTH = 10;
const STATE_WIDTH = 8;
/** below this, the path column is left out and the pod gets the room */
const MIN_PATH_WIDTH = 16;

/** The widths of the pod and path columns for the rows shown, within `width`. */
export function columnWidths(rows: readonly FileRow[], width: number): { pod: number; path: number } {
  const room = Math.max(0, width - LAG_WIDTH - 1 - STATE_WIDTH - 1);
  const podNeed = Math.max(3, ...rows.map((r) => [...(r.pod ?? '-')].length));
  const pathNeed = Math.max(4, ...rows.map((r) => [...r.path].length));
  if (podNeed + 1 + pathNeed <= room) return { pod: podNeed, path: pathNeed };
  // the pod column gets what it needs up to half the room; the path the rest, if that is enough
  const pod = Math.min(podNeed, Math.max(12, Math.floor(room / 2)));
  const path = room - pod - 1;
  if (path < MIN_PATH_WIDTH) return { pod: Math.min(podNeed, room), path: 0 };
  return { pod, path };
}

function table(rows: readonly FileRow[], total: number, width: number): string[] {
  const { pod, path } = columnWidths(rows, width);
  const line = (lag: string, state: string, podText: string, pathText: string) => {
    const cells = [
      lag.padStart(LAG_WIDTH),
      state.padEnd(STATE_WIDTH),
      path > 0 ? truncateMiddle(podText, pod).padEnd(pod) : truncateMiddle(podText, pod),
    ];
    if (path > 0) cells.push(truncateStart(pathText, path));
    return cells.join(' ').trimEnd();
  };
  const out = [line('LAG', 'STATE', 'POD', 'PATH')];
  for (const r of rows) out.push(line(formatBytes(r.lagBytes), r.state, r.pod ?? '-', r.path));
  if (total > rows.length) out.push(`${''.padStart(LAG_WIDTH)} ... ${total - rows.length} more files`);
  else if (total === 0) out.push(`${''.padStart(LAG_WIDTH)} (no files followed: none match yet)`);
  return out;
}

export function renderView(view: TopView, options: RenderOptions): string[] {
  const width = Math.max(20, Math.floor(options.width));
  const top = summary(view, width);
  const footer = options.footer === undefined ? [] : [options.footer];
  let maxRows = options.maxFiles ?? view.files.rows.length;
  if (options.height !== undefined) {
    // summary, a blank line, the table header, the "more" line, the footer
    maxRows = Math.min(maxRows, Math.max(0, options.height - top.length - 3 - footer.length));
  }
  const shown = view.files.rows.slice(0, maxRows);
  const lines = [...top, '', ...table(shown, view.files.rows.length, width), ...footer];
  return lines.map((l) => truncateEnd(l, width));
}
