import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { metricValue, parsePrometheusText } from '../../../src/cli/top/prometheus.ts';
import {
  columnWidths,
  formatBytes,
  formatCount,
  formatDuration,
  renderView,
  truncateEnd,
  truncateMiddle,
  truncateStart,
} from '../../../src/cli/top/render.ts';
import type { AgentSample } from '../../../src/cli/top/sample.ts';
import { buildView, outputHealth, rate, type TopView } from '../../../src/cli/top/view.ts';
import { ROOT } from '../../helpers/cli.ts';

// Recorded from real agents by test/helpers/record-top-fixtures.ts: /status and /metrics, twice a
// second apart. expected-<width>.txt is the golden rendering (UPDATE_GOLDEN=1 rewrites them; read
// the diff before committing it).
const FIXTURES = join(ROOT, 'test/fixtures/top');
const URL = 'http://127.0.0.1:2020';

function load(name: string, i: number): AgentSample {
  const raw = JSON.parse(readFileSync(join(FIXTURES, name, `sample-${i}.json`), 'utf8')) as {
    atMs: number;
    status: AgentSample['status'];
    metrics: string;
  };
  return { atMs: raw.atMs, status: raw.status, metrics: parsePrometheusText(raw.metrics) };
}

function view(name: string): TopView {
  return buildView(URL, load(name, 1), load(name, 0));
}

const CASES = ['healthy', 'retrying', 'unauthorized', 'stdout'] as const;
const WIDTHS = [40, 60, 80, 100, 160] as const;

/** the file table's rows: the lines after the LAG header, up to a blank or the end */
function tableRows(lines: string[]): string[] {
  const header = lines.findIndex((l) => /^\s+LAG STATE/.test(l));
  expect(header, 'the table header').toBeGreaterThan(0);
  return lines.slice(header + 1).filter((l) => /^\s+[\d.]+ (B|KiB|MiB|GiB|TiB) /.test(l));
}

describe.each(CASES)('recorded agent: %s', (name) => {
  it.each(WIDTHS)('at width %i renders as the golden file, no line wider', (width) => {
    const lines = renderView(view(name), { width });
    for (const line of lines) expect([...line].length, line).toBeLessThanOrEqual(width);
    const text = `${lines.join('\n')}\n`;
    const golden = join(FIXTURES, name, `expected-${width}.txt`);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, text);
    expect(text).toBe(readFileSync(golden, 'utf8'));
  });

  it('lists every file, most lag first, with its pod', () => {
    const v = view(name);
    const status = load(name, 1).status;
    expect(v.files.rows).toHaveLength(status.files.length);
    const lags = v.files.rows.map((r) => r.lagBytes);
    expect(lags).toEqual([...lags].sort((a, b) => b - a));
    for (const r of v.files.rows) expect(r.pod).toMatch(/^[a-z0-9-]+\/[a-z0-9.-]+\/[a-z0-9-]+$/);
    const rows = tableRows(renderView(v, { width: 160 }));
    expect(rows).toHaveLength(v.files.rows.length);
  });
});

describe('what the recorded agents show', () => {
  it.each([
    // case, health line, in lines/s > 0, out docs/s shown
    ['healthy', 'elasticsearch: healthy', true, true],
    ['retrying', 'elasticsearch: retrying', false, true],
    ['unauthorized', 'elasticsearch: down (unauthorized)', false, true],
    ['stdout', 'stdout: healthy', true, false],
  ] as const)('%s: output %s', (name, health, reading, hasOutput) => {
    const v = view(name);
    const lines = renderView(v, { width: 120 });
    expect(lines).toContainEqual(`output     ${health}`);
    expect((v.input.linesPerSec ?? 0) > 0).toBe(reading);
    expect(v.output.docsPerSec !== undefined).toBe(hasOutput);
    if (!hasOutput) {
      // no output metrics: "-", never a made-up 0
      expect(lines.find((l) => l.startsWith('out'))).toMatch(/- docs\/s\s+-$/);
      expect(lines.find((l) => l.startsWith('per minute'))).toBe('per minute - retries, - dead letters');
    }
  });

  it('a failing output shows its last error, retries per minute and the files falling behind', () => {
    const v = view('retrying');
    const lines = renderView(v, { width: 120 });
    expect(lines).toContainEqual('last error bulk request failed with HTTP 503');
    expect(v.output.retriesPerMin).toBeGreaterThan(0);
    expect(v.files.lagging).toBe(4);
    expect(lines.find((l) => l.startsWith('files'))).toMatch(/^files\s+4 followed, 4 behind by \d/);
    // the rate is the counter's increase over the interval between the two samples
    const [a, b] = [load('retrying', 0), load('retrying', 1)];
    const retried = (s: AgentSample) =>
      metricValue(s.metrics, 'logferry_records_total', { outcome: 'retried' })!;
    expect(v.output.retriesPerMin).toBeCloseTo(((retried(b) - retried(a)) / ((b.atMs - a.atMs) / 1000)) * 60);
  });

  it('a healthy agent has no last error and counts documents in the output', () => {
    const lines = renderView(view('healthy'), { width: 120 });
    expect(lines).toContainEqual('last error none');
    expect(lines.find((l) => l.startsWith('in output'))).toMatch(
      /^in output\s+[\d,]+ docs, \d+ requests in flight$/,
    );
  });
});

describe('one sample (the first frame)', () => {
  it('has no rates yet, and says "-" for them', () => {
    const v = buildView(URL, load('healthy', 0));
    expect(v.input.linesPerSec).toBeUndefined();
    const lines = renderView(v, { width: 100 });
    expect(lines.find((l) => l.startsWith('in '))).toMatch(/^in\s+- lines\/s\s+-$/);
  });
});

describe('an agent from before /status had `pod`', () => {
  it('gets the pod from the kubelet path; a file outside that layout has none', () => {
    const cur = load('retrying', 1);
    const files = cur.status.files.map(({ pod: _pod, ...f }) => f);
    files.push({ ...files[0]!, path: '/var/log/app/server.log', lag: 0 });
    const v = buildView(URL, { ...cur, status: { ...cur.status, files } });
    expect(v.files.rows.map((r) => r.pod)).toEqual([
      'shop/cart-5c8d7f9b4-pq7rt/cart',
      'shop/checkout-7d9f8b6c5-x2k4q/web',
      'kube-system/coredns-76f75df574-8xk2m/coredns',
      'payments-production/ledger-reconciliation-worker-6b9c8d7f5d-zz9k2/reconciler',
      undefined,
    ]);
    expect(renderView(v, { width: 160 }).at(-1)).toMatch(
      /^\s+0 B active\s+-\s+\/var\/log\/app\/server\.log$/,
    );
  });
});

describe('fitting a terminal', () => {
  it.each([10, 12, 20, 30])(
    'a height of %i rows bounds the table and says how many are left out',
    (height) => {
      const lines = renderView(view('retrying'), { width: 100, height, footer: 'q quits' });
      expect(lines.length).toBeLessThanOrEqual(Math.max(height, 14));
      expect(lines.at(-1)).toBe('q quits');
      const shown = tableRows(lines).length;
      if (shown < 4)
        expect(lines).toContainEqual(expect.stringMatching(new RegExp(`\\.\\.\\. ${4 - shown} more files$`)));
      else expect(lines.some((l) => l.includes('more files'))).toBe(false);
    },
  );

  it('an agent following no files says so under the header', () => {
    const v = view('stdout');
    const lines = renderView({ ...v, files: { total: 0, lagging: 0, lagBytes: 0, rows: [] } }, { width: 80 });
    expect(lines.slice(-2)).toEqual([
      '       LAG STATE    POD PATH',
      '           (no files followed: none match yet)',
    ]);
  });

  it('maxFiles limits the rows, keeping the most lag', () => {
    const lines = renderView(view('retrying'), { width: 100, maxFiles: 2 });
    expect(tableRows(lines)).toHaveLength(2);
    expect(tableRows(lines)[0]).toMatch(/^\s+404\.2 KiB/);
    expect(lines.at(-1)).toMatch(/\.\.\. 2 more files$/);
  });

  it('a failed refresh is shown above the last answer', () => {
    const v = { ...view('healthy'), stale: 'cannot reach the agent (ECONNREFUSED); retrying' };
    expect(renderView(v, { width: 100 })[0]).toBe('! cannot reach the agent (ECONNREFUSED); retrying');
  });

  it.each([
    // width, pod need, path need -> widths
    [160, 20, 40, { pod: 20, path: 40 }],
    [100, 40, 90, { pod: 40, path: 39 }],
    [60, 40, 90, { pod: 20, path: 19 }],
    [40, 40, 90, { pod: 20, path: 0 }],
  ])('columnWidths at %i (pod %i, path %i)', (width, podLen, pathLen, expected) => {
    const rows = [{ path: 'p'.repeat(pathLen), pod: 'x'.repeat(podLen), lagBytes: 1, state: 'active' }];
    expect(columnWidths(rows, width)).toEqual(expected);
  });
});

describe('formatting', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [64 * 1024 * 1024, '64.0 MiB'],
    [3 * 1024 ** 4, '3.0 TiB'],
    [-1, '-'],
  ])('formatBytes(%d) = %s', (n, text) => expect(formatBytes(n)).toBe(text));

  it.each([
    [undefined, '-'],
    [0, '0'],
    [0.25, '0.3'],
    [9.94, '9.9'],
    [12.4, '12'],
    [12345.6, '12,346'],
  ])('formatCount(%s) = %s', (n, text) => expect(formatCount(n)).toBe(text));

  it.each([
    [0, '0s'],
    [59, '59s'],
    [61, '1m 01s'],
    [3600 + 120, '1h 02m'],
    [86400 * 3 + 3600 * 4, '3d 04h'],
  ])('formatDuration(%d) = %s', (s, text) => expect(formatDuration(s)).toBe(text));

  it.each([
    ['abcdef', 6, 'abcdef', 'abcdef', 'abcdef'],
    ['abcdef', 4, 'abc…', '…def', 'ab…f'],
    ['abcdef', 1, '…', '…', '…'],
    ['abcdef', 0, '', '', ''],
  ])('truncating %s to %i', (text, width, end, start, middle) => {
    expect(truncateEnd(text, width)).toBe(end);
    expect(truncateStart(text, width)).toBe(start);
    expect(truncateMiddle(text, width)).toBe(middle);
  });
});

describe('rates and health', () => {
  it.each([
    [undefined, 10, 1, undefined],
    [10, undefined, 1, undefined],
    [10, 30, 2, 10],
    [10, 10, 1, 0],
    // the agent restarted between the samples: its counter started again from 0
    [500, 30, 1, 30],
    [10, 30, 0, undefined],
  ])('rate(%s, %s, %s s) = %s', (prev, cur, seconds, expected) => {
    expect(rate(prev, cur, seconds)).toBe(expected);
  });

  it.each([
    [true, 'ok', 'healthy'],
    [true, 'idle', 'healthy'],
    [false, 'retrying', 'retrying'],
    [false, 'unauthorized', 'down'],
  ] as const)('healthy=%s state=%s is %s', (healthy, state, health) => {
    expect(outputHealth({ healthy, state })).toBe(health);
  });
});

describe('parsePrometheusText', () => {
  const text = [
    '# HELP logferry_records_total Records by outcome.',
    '# TYPE logferry_records_total counter',
    'logferry_records_total{outcome="sent"} 120',
    'logferry_records_total{outcome="retried"} 7',
    'logferry_throttled_lines_total{namespace="a\\"b",action="drop"} 3 1700000000000',
    'logferry_buffer_bytes 1.5e3',
    'logferry_bulk_request_duration_seconds_bucket{le="+Inf"} 4',
    'logferry_odd{broken 1',
    'logferry_nan NaN',
    '',
  ].join('\n');
  const m = parsePrometheusText(text);

  it.each([
    ['logferry_records_total', {}, 127],
    ['logferry_records_total', { outcome: 'sent' }, 120],
    ['logferry_records_total', { outcome: 'dropped' }, 0],
    ['logferry_throttled_lines_total', { namespace: 'a"b' }, 3],
    ['logferry_buffer_bytes', {}, 1500],
    ['logferry_bulk_request_duration_seconds_bucket', { le: '+Inf' }, 4],
    ['logferry_not_exported', {}, undefined],
    ['logferry_odd', {}, undefined],
  ])('%s %o = %s', (name, labels, value) => {
    expect(metricValue(m, name, labels)).toBe(value);
  });

  it('reads NaN as a value and skips comments', () => {
    expect(metricValue(m, 'logferry_nan')).toBeNaN();
    expect(m.has('#')).toBe(false);
  });
});
