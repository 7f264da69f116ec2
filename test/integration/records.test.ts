// The records stage end to end, through the built CLI: multiline grouping (`tail --once`, follow
// mode with a flush on silence, the agent with pod annotations, a restart in the middle of a
// group), message parsers chosen by annotation, and per-container throttling (pause and drop)
// against a fake Elasticsearch and a fake Kubernetes API.
import type { ChildProcess } from 'node:child_process';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type FakeElasticsearch,
  type StoredDoc,
  startFakeElasticsearch,
} from '../fakes/fake-elasticsearch.ts';
import { type FakeKubernetes, makePod, startFakeKubernetes } from '../fakes/fake-kubernetes.ts';
import {
  type Agent,
  type AgentEnv,
  agentArgs as agentArgsOf,
  NODE,
  startAgent as startAgentIn,
  podLog as writePodLog,
} from '../helpers/agent.ts';
import { criLine, type Doc, Follower, runCli, sleep, tempDir } from '../helpers/cli.ts';

let dir: string;
let cleanup: () => Promise<void>;
const followers: Follower[] = [];
const children: ChildProcess[] = [];

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  await Promise.all(followers.splice(0).map((f) => f.stop('SIGKILL')));
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await cleanup();
});

/** CRI lines of `messages` on one stream, numbered from `from` (each line its own timestamp). */
function cri(messages: string[], stream = 'stdout', from = 1): string[] {
  return messages.map((m, i) => criLine(from + i, m, stream));
}

const byteLength = (lines: string[]) => Buffer.byteLength(lines.join(''));

const JAVA = [
  '2024-05-14 10:21:09,877 ERROR [http-nio-8080-exec-3] com.example.orders.OrderController - Failed to place order 8812',
  'java.lang.IllegalStateException: Inventory reservation failed for order 8812',
  '\tat com.example.orders.InventoryClient.reserve(InventoryClient.java:88)',
  '\tat com.example.orders.OrderService.place(OrderService.java:142)',
  'Caused by: java.net.ConnectException: Connection refused',
  '\tat java.base/sun.nio.ch.Net.pollConnect(Native Method)',
  '\t... 12 more',
];
const JAVA2 = [
  '2024-05-14 10:21:11,310 ERROR [scheduling-1] c.e.orders.jobs.ReconcileJob - Reconciliation aborted',
  'org.postgresql.util.PSQLException: ERROR: relation "order_audit" does not exist',
  '  Position: 15',
  '\tat org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QueryExecutorImpl.java:2725)',
  '\t... 3 common frames omitted',
];
const PYTHON = [
  '2024-05-14 10:30:03,000 ERROR app.tasks: task crashed',
  'Traceback (most recent call last):',
  '  File "/app/tasks.py", line 12, in run',
  '    total = sum(items) / len(items)',
  'ZeroDivisionError: division by zero',
];

describe('logferry tail: multiline', () => {
  it('--once --multiline java: one document per trace, at its header offset, the last trace too', async () => {
    const file = join(dir, '0.log');
    const lines = [
      ...cri(['2024-05-14 10:21:07,412 INFO  [main] com.example.orders.Application - Started']),
      ...cri(JAVA, 'stdout', 2),
      ...cri(
        ['2024-05-14 10:21:10,002 WARN  [http-nio-8080-exec-4] OrderController - Retrying'],
        'stdout',
        9,
      ),
      // the file ends inside a trace: --once reads files to their end, the trace is complete
      ...cri(JAVA2, 'stdout', 10),
    ];
    await writeFile(file, lines.join(''));
    const res = await runCli(['tail', '--once', '--from-beginning', '--multiline', 'java', file]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.docs.map((d) => [d.log.offset, d.message, d.log.flags])).toEqual([
      [0, expect.stringContaining('Started'), undefined],
      [byteLength(lines.slice(0, 1)), JAVA.join('\n'), ['multiline']],
      [byteLength(lines.slice(0, 8)), expect.stringContaining('Retrying'), undefined],
      [byteLength(lines.slice(0, 9)), JAVA2.join('\n'), ['multiline']],
    ]);
    // a group has its first line's time
    expect(res.docs[1]!['@timestamp']).toBe('2026-11-22T01:02:03.000000002Z');

    // the same file without --multiline: a document per line
    const plain = await runCli(['tail', '--once', '--from-beginning', file]);
    expect(plain.docs).toHaveLength(lines.length);
  });

  it('--once --multiline auto leaves JSON, logfmt and ordinary lines alone, and still groups traces', async () => {
    const file = join(dir, '0.log');
    const singles = [
      '2024-05-14T10:30:00.000Z INFO  starting worker pool (size=4)',
      '{"level":"info","ts":"2024-05-14T10:30:00.120Z","msg":"connected","db":"orders"}',
      '{"level":"error","msg":"query failed","stack":"Error: timeout\\n    at Query.run (/app/db.js:10:5)"}',
      'Error: could not resolve host: api.example.com',
      'level=info msg="cache warmed" entries=10432 took=812ms',
      '2024-05-14T10:30:01.000Z WARN  request to api.example.com took 3021ms',
      '{"level":"warn","msg":"retrying","attempt":2}',
      'GET /healthz 200 0.3ms',
    ];
    const lines = [...cri(singles), ...cri(PYTHON, 'stderr', 20), ...cri(['done'], 'stdout', 30)];
    await writeFile(file, lines.join(''));
    const res = await runCli(['tail', '--once', '--from-beginning', '--multiline', 'auto', file]);
    expect(res.code).toBe(0);
    const docs = [...res.docs].sort((a, b) => a.log.offset - b.log.offset);
    expect(docs.map((d) => d.log.offset)).toEqual([
      ...singles.map((_, i) => byteLength(lines.slice(0, i))),
      byteLength(lines.slice(0, singles.length)),
      byteLength(lines.slice(0, singles.length + PYTHON.length)),
    ]);
    expect(docs.filter((d) => d.log.flags?.includes('multiline')).map((d) => d.message)).toEqual([
      PYTHON.join('\n'),
    ]);
    // JSON lines are still parsed
    expect(docs[1]!.json).toMatchObject({ msg: 'connected' });
    expect(docs[1]!.message).toBe('connected');
  });

  it('follow mode: a traceback then silence arrives as one document (flushed); later lines are their own', async () => {
    const file = join(dir, '0.log');
    await writeFile(file, '');
    const t = new Follower([
      'tail',
      '--from-beginning',
      '--poll-interval-ms',
      '50',
      '--multiline',
      'python',
      '--multiline-flush-ms',
      '300',
      file,
    ]);
    followers.push(t);
    await t.opened(file);
    await appendFile(file, cri(PYTHON, 'stderr').join(''));
    // nothing follows the traceback: only the flush on silence can emit it
    await t.waitForCount(1);
    expect(t.docs[0]).toMatchObject({ message: PYTHON.join('\n'), stream: 'stderr', log: { offset: 0 } });
    expect(t.docs[0]!.log.flags).toEqual(['multiline']);
    const size = byteLength(cri(PYTHON, 'stderr'));

    // after the flush, a frame line is not glued to the traceback that went out: it is a record of
    // its own (flushed on silence too)
    const frame = '  File "/app/late.py", line 3, in g';
    await appendFile(file, cri([frame], 'stderr', 10).join(''));
    await t.waitForCount(2);
    // then ordinary lines, each a document
    const more = cri(['2024-05-14 10:30:04,000 INFO app.tasks: next task'], 'stdout', 11).concat(
      cri(['2024-05-14 10:30:05,000 INFO app.tasks: done'], 'stderr', 12),
    );
    await appendFile(file, more.join(''));
    await t.waitForCount(4);
    const frameSize = byteLength(cri([frame], 'stderr', 10));
    expect(t.docs.map((d) => [d.log.offset, d.message])).toEqual([
      [0, PYTHON.join('\n')],
      [size, frame],
      [size + frameSize, '2024-05-14 10:30:04,000 INFO app.tasks: next task'],
      [size + frameSize + byteLength(more.slice(0, 1)), '2024-05-14 10:30:05,000 INFO app.tasks: done'],
    ]);
    // a second traceback written at once is grouped again
    await appendFile(file, cri(PYTHON, 'stderr', 20).join(''));
    await t.waitForCount(5);
    expect(t.docs[4]!.message).toBe(PYTHON.join('\n'));
    expect(t.docs).toHaveLength(5);
    expect(await t.stop()).toBe(0);
  });
});

// --- the agent ----------------------------------------------------------------------------------------

const INDEX = 'logs-kubernetes.container_logs-default';

type Source = Doc & {
  kubernetes?: { namespace?: string; pod?: { name?: string }; container?: { name?: string } };
};

describe('logferry agent: records', () => {
  let es: FakeElasticsearch;
  let kube: FakeKubernetes;

  beforeEach(async () => {
    es = await startFakeElasticsearch();
    kube = await startFakeKubernetes();
  });
  afterEach(async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    await es.close();
    await kube.close();
  });

  const env = (): AgentEnv => ({ dir, kubeUrl: kube.url, esUrl: es.url, children });
  const podLog = (ns: string, pod: string, uid: string, container: string, lines: string[]) =>
    writePodLog(dir, ns, pod, uid, container, lines);
  const agentArgs = (extra: string[] = []) => agentArgsOf(env(), extra);
  const startAgent = (extra: string[] = []): Agent => startAgentIn(env(), extra, 'ignore');

  const stored = (): StoredDoc[] => es.docs(INDEX);
  const sources = (): Source[] => stored().map((d) => d.source as Source);

  /** Polls `pred` until it holds; fails with `what` after `timeoutMs`. */
  async function until(
    pred: () => boolean,
    what: () => string,
    timeoutMs = 20_000,
    refresh: () => Promise<void> = async () => {},
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (await refresh(); !pred(); await refresh()) {
      if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
      await sleep(25);
    }
  }

  it('pod annotations choose the multiline rule and the parser, per pod and per container', async () => {
    const javaUid = '10000000-5b7e-4d2a-9c1e-6a8b4f2d1e10';
    const mixedUid = '20000000-5b7e-4d2a-9c1e-6a8b4f2d1e20';
    const plainUid = '30000000-5b7e-4d2a-9c1e-6a8b4f2d1e30';
    kube.addPod(
      makePod({
        name: 'orders',
        namespace: 'shop',
        nodeName: NODE,
        uid: javaUid,
        annotations: { 'logferry.io/multiline': 'java', 'logferry.io/parser': 'logfmt' },
      }),
    );
    kube.addPod(
      makePod({
        name: 'tasks',
        namespace: 'shop',
        nodeName: NODE,
        uid: mixedUid,
        annotations: { 'logferry.io/multiline-worker': 'python' },
        containers: [
          { name: 'worker', image: 'tasks:1' },
          { name: 'web', image: 'web:1' },
        ],
      }),
    );
    kube.addPod(makePod({ name: 'plain', namespace: 'shop', nodeName: NODE, uid: plainUid }));
    const logfmt = 'level=WARN msg="slow checkout" took=812ms';
    const content = [
      ...cri([logfmt]),
      ...cri(JAVA, 'stdout', 2),
      ...cri(['level=info msg=ok'], 'stdout', 9),
      ...cri(JAVA2, 'stdout', 10),
    ];
    await podLog('shop', 'orders', javaUid, 'app', content);
    await podLog('shop', 'plain', plainUid, 'app', content);
    await podLog('shop', 'tasks', mixedUid, 'worker', cri(PYTHON, 'stderr'));
    await podLog('shop', 'tasks', mixedUid, 'web', cri(PYTHON, 'stderr'));

    const res = await runCli([...agentArgs(), '--once']);
    expect(res.code).toBe(0);
    const of = (pod: string, container = 'app') =>
      sources()
        .filter((d) => d.kubernetes?.pod?.name === pod && d.kubernetes?.container?.name === container)
        .sort((a, b) => a.log.offset - b.log.offset);

    const orders = of('orders');
    expect(orders.map((d) => d.message)).toEqual(['slow checkout', JAVA.join('\n'), 'ok', JAVA2.join('\n')]);
    expect(orders[0]).toMatchObject({
      json: { level: 'WARN', msg: 'slow checkout', took: '812ms' },
      log: { level: 'warn' },
    });
    expect(orders[1]!.log.flags).toEqual(['multiline']);
    expect(orders[1]!.log.offset).toBe(byteLength(content.slice(0, 1)));

    // no annotations: a document per line, logfmt stays text under the default (json) parser
    const plain = of('plain');
    expect(plain).toHaveLength(content.length);
    expect(plain[0]).toMatchObject({ message: logfmt });
    expect(plain[0]!.json).toBeUndefined();
    expect(plain.some((d) => d.log.flags !== undefined)).toBe(false);

    // the per-container annotation: the worker container groups, its sibling does not
    expect(of('tasks', 'worker').map((d) => d.message)).toEqual([PYTHON.join('\n')]);
    expect(of('tasks', 'web').map((d) => d.message)).toEqual(PYTHON);
  });

  it('a restart in the middle of a group: the trace is one document under the header id, nothing duplicated', async () => {
    const uid = '40000000-5b7e-4d2a-9c1e-6a8b4f2d1e40';
    kube.addPod(makePod({ name: 'orders', namespace: 'shop', nodeName: NODE, uid }));
    // stdout: a line, then a trace whose header is H; stderr: a trace that starts before H and ends
    // after it (delivered before the kill: a restart at H must not send its tail again)
    const first = [
      criLine(1, '2024-05-14 10:21:07,412 INFO  [main] App - Started'),
      criLine(2, '2024-05-14 10:21:08,000 ERROR [worker] Job - job 7 failed', 'stderr'),
      criLine(3, 'java.lang.RuntimeException: job 7', 'stderr'),
      criLine(4, JAVA[0]!),
      criLine(5, JAVA[1]!),
      criLine(6, '\tat com.example.Job.run(Job.java:12)', 'stderr'),
      criLine(7, JAVA[2]!),
      criLine(8, '2024-05-14 10:21:09,900 INFO  [worker] Job - next job', 'stderr'),
    ];
    const header = byteLength(first.slice(0, 3));
    const file = await podLog('shop', 'orders', uid, 'app', first);
    // no flush on silence before the kill: the group stays pending, the checkpoint stays at H
    const agent = startAgent(['--multiline', 'java', '--multiline-flush-ms', '600000']);
    await agent.url();
    await es.waitForCount(2, { index: INDEX, timeoutMs: 15_000 });
    const positions = join(dir, 'state', 'positions.json');
    type Saved = { files: Array<{ offset: number; continuation?: unknown }> };
    let saved: Saved = { files: [] };
    await until(
      () => saved.files[0]?.offset === header,
      () => `no checkpoint at the header (${header}): ${JSON.stringify(saved)}`,
      15_000,
      async () => {
        saved = JSON.parse(await readFile(positions, 'utf8').catch(() => '{"files":[]}')) as Saved;
      },
    );
    expect(saved.files[0]).toMatchObject({
      offset: header,
      continuation: { skip: [{ stream: 'stderr', through: byteLength(first.slice(0, 5)) }] },
    });
    const before = stored().map((d) => [d.id, (d.source as Source).message]);
    expect(before.map(([, m]) => m)).toEqual([
      '2024-05-14 10:21:07,412 INFO  [main] App - Started',
      [first[1]!, first[2]!, first[5]!].map((l) => l.slice(l.indexOf(' stderr F ') + 10, -1)).join('\n'),
    ]);
    agent.child.kill('SIGKILL');
    await agent.exited;

    const rest = [
      criLine(9, JAVA[3]!),
      criLine(10, JAVA[4]!),
      criLine(11, JAVA[5]!),
      criLine(12, JAVA[6]!),
      criLine(13, '2024-05-14 10:21:10,002 WARN  [exec-4] OrderController - Retrying order 8812'),
    ];
    await appendFile(file, rest.join(''));
    const again = startAgent(['--multiline', 'java', '--multiline-flush-ms', '300']);
    await again.url();
    await es.waitForCount(5, { index: INDEX, timeoutMs: 15_000 });
    await sleep(800);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);

    const docs = stored();
    const fileId = before[0]![0]!.replace(/-0$/, '');
    expect(docs.map((d) => [d.id, (d.source as Source).message]).sort()).toEqual(
      [
        [`${fileId}-0`, '2024-05-14 10:21:07,412 INFO  [main] App - Started'],
        before[1]!,
        [`${fileId}-${header}`, JAVA.join('\n')],
        [
          `${fileId}-${byteLength(first.slice(0, 7))}`,
          '2024-05-14 10:21:09,900 INFO  [worker] Job - next job',
        ],
        [
          `${fileId}-${byteLength([...first, ...rest.slice(0, 4)])}`,
          '2024-05-14 10:21:10,002 WARN  [exec-4] OrderController - Retrying order 8812',
        ],
      ].sort(),
    );
    // written once each: nothing was sent again under its id either
    expect(docs.map((d) => d.version)).toEqual(docs.map(() => 1));
  });

  // --- throttling: a noisy pod must not starve a quiet one ---------------------------------------------

  const NOISY = '50000000-5b7e-4d2a-9c1e-6a8b4f2d1e50';
  const QUIET = '60000000-5b7e-4d2a-9c1e-6a8b4f2d1e60';
  const BURST = 50_000;
  const noisyLines = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, i) => criLine(from + i, `noisy ${from + i}`)).join('');
  const quietLines = Array.from({ length: 100 }, (_, i) => criLine(i, `quiet ${i}`));
  const ns = (d: Source) => d.kubernetes?.namespace;

  async function throttledLines(url: string, action: string): Promise<number> {
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const line = metrics
      .split('\n')
      .find(
        (l) =>
          l.startsWith('logferry_throttled_lines_total{') &&
          l.includes('namespace="noisy"') &&
          l.includes(`action="${action}"`),
      );
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  function throttlePods(): void {
    kube.addPod(makePod({ name: 'noisy', namespace: 'noisy', nodeName: NODE, uid: NOISY }));
    kube.addPod(makePod({ name: 'quiet', namespace: 'quiet', nodeName: NODE, uid: QUIET }));
  }

  it('pause: while the noisy pod is paused the quiet one flows; in the end every line arrives exactly once', async () => {
    throttlePods();
    // both files exist (empty) before the agent starts: it has them open, no discovery delay
    const noisy = await podLog('noisy', 'noisy', NOISY, 'app', []);
    const quiet = await podLog('quiet', 'quiet', QUIET, 'app', []);
    const agent = startAgent([
      '--throttle-lines-per-sec',
      '1000',
      '--throttle-burst-seconds',
      '1',
      '--throttle-action',
      'pause',
      // reads of up to 4 MiB: the rest of the burst is one read once the pause is over (with 1 MiB
      // reads it would be paused again after each, ~20 s at 1000 lines/s: the test would be slow)
      '--max-line-bytes',
      '4MiB',
    ]);
    const url = await agent.url();
    // the burst starts: 8,000 lines, 7,000 over the 1 s burst: the file waits ~7 s after that read
    const first = 8_000;
    await appendFile(noisy, noisyLines(0, first));
    await until(
      () => sources().some((d) => ns(d) === 'noisy'),
      () => 'no noisy line arrived',
    );
    // the burst goes on, and the quiet pod writes right after
    await appendFile(noisy, noisyLines(first, BURST));
    await appendFile(quiet, quietLines.join(''));
    let seen: Source[] = [];
    await until(
      () => seen.filter((d) => ns(d) === 'quiet').length === 100,
      () => `quiet ${seen.filter((d) => ns(d) === 'quiet').length}/100, noisy ${seen.length}`,
      20_000,
      async () => {
        seen = sources();
      },
    );
    // the quiet pod is complete while the noisy one is held after its first read
    const noisyThen = seen.filter((d) => ns(d) === 'noisy').length;
    expect(noisyThen).toBeGreaterThan(0);
    // (without the pause, the rest of the burst is read at once: 15,000 to 50,000 of them are there)
    expect(noisyThen).toBeLessThanOrEqual(first);
    expect(await throttledLines(url, 'pause')).toBeGreaterThan(0);

    // pause loses nothing: every line once
    await es.waitForCount(BURST + 100, { index: INDEX, timeoutMs: 30_000 });
    await sleep(300);
    const all = stored();
    expect(all).toHaveLength(BURST + 100);
    expect(all.every((d) => d.version === 1)).toBe(true);
    const seqs = new Set(all.map((d) => (d.source as Source).message));
    for (let i = 0; i < BURST; i++) if (!seqs.has(`noisy ${i}`)) throw new Error(`noisy ${i} is missing`);
    for (let i = 0; i < 100; i++) expect(seqs.has(`quiet ${i}`)).toBe(true);
    expect(all.some((d) => (d.source as Source).log.flags?.includes('throttled'))).toBe(false);
    // the file is paused again for ~40 s (the rest of the burst was one read): stopping does not
    // wait for that (a bound far below the pause, far above a normal stop)
    agent.child.kill('SIGTERM');
    expect(await Promise.race([agent.exited, sleep(20_000).then(() => 'still running')])).toBe(0);
  });

  it('drop: fewer noisy records plus summaries flagged throttled that account for the rest; the quiet pod complete', async () => {
    throttlePods();
    const noisy = await podLog('noisy', 'noisy', NOISY, 'app', []);
    const quiet = await podLog('quiet', 'quiet', QUIET, 'app', []);
    const agent = startAgent(['--throttle-lines-per-sec', '1000', '--throttle-action', 'drop']);
    const url = await agent.url();
    await appendFile(noisy, noisyLines(0, BURST));
    await appendFile(quiet, quietLines.join(''));
    const summaryLines = (d: Source) =>
      Number(/^logferry: throttled (\d+) lines? /.exec(d.message)?.[1] ?? 'NaN');
    let seen: Source[] = [];
    const count = () => {
      const noisy = seen.filter((d) => ns(d) === 'noisy');
      const records = noisy.filter((d) => d.log.flags === undefined);
      const summaries = noisy.filter((d) => d.log.flags?.includes('throttled'));
      const dropped = summaries.reduce((n, d) => n + summaryLines(d), 0);
      return { records, summaries, dropped, quiet: seen.filter((d) => ns(d) === 'quiet').length };
    };
    // every noisy line is either a record or counted in a summary
    await until(
      () => {
        const c = count();
        return c.quiet === 100 && c.records.length + c.dropped === BURST;
      },
      () =>
        JSON.stringify({ ...count(), records: count().records.length, summaries: count().summaries.length }),
      20_000,
      async () => {
        seen = sources();
      },
    );
    const { records, summaries, dropped } = count();
    expect(records.length).toBeLessThan(BURST);
    expect(records.length).toBeGreaterThanOrEqual(1000);
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    for (const s of summaries) {
      expect(s.message).toMatch(
        /^logferry: throttled \d+ lines? \(\d+ bytes?\) from this container \(limit 1000 lines\/s\)$/,
      );
    }
    // a summary's offset (its id) is never a record's
    const recordOffsets = new Set(records.map((d) => d.log.offset));
    expect(summaries.filter((s) => recordOffsets.has(s.log.offset))).toEqual([]);
    // kept records are distinct lines, in file order of their offsets
    expect(new Set(records.map((d) => d.message)).size).toBe(records.length);
    expect(await throttledLines(url, 'drop')).toBe(dropped);
    expect(stored().every((d) => d.version === 1)).toBe(true);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });
});
