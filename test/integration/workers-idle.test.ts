// Records workers start with work and end after --worker-idle-ms without it (worker/pool.ts), and a
// file's state crosses a stop exactly: the agent as a child process, a fake Kubernetes API and a
// fake Elasticsearch, every line a unique token.
import { appendFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { agentFixture, podLog, startAgent } from '../helpers/agent.ts';
import { criLine, sleep } from '../helpers/cli.ts';

const fixture = agentFixture();

const IDLE_MS = 400;

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^logferry_${name} (\\S+)$`, 'm').exec(text);
  if (m === null) throw new Error(`no metric logferry_${name}`);
  return Number(m[1]);
}

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const messages = () =>
  fixture
    .es()
    .docs()
    .map((d) => (d.source as { message: string }).message);

describe('records workers on demand', () => {
  it('ends an idle worker, starts it again for new lines, and a line cut in pieces across a stop arrives whole, once', async () => {
    const env = fixture.env();
    const es = fixture.es();
    const files = await Promise.all(
      ['a', 'b', 'c'].map((pod, p) =>
        podLog(
          env.dir,
          'default',
          pod,
          `uid-${pod}`,
          'app',
          [0, 1, 2, 3, 4].map((i) => criLine(i, `tok-${p}-${i}`)),
        ),
      ),
    );
    const agent = startAgent(env, ['--workers', '1', '--worker-idle-ms', String(IDLE_MS), '--no-kube']);
    const url = await agent.url();
    await until('15 documents', async () => es.docs().length === 15);
    expect(await metric(url, 'records_worker_starts_total')).toBe(1);
    await until('the idle worker to end', async () => (await metric(url, 'records_workers_running')) === 0);

    // new lines start it again
    await appendFile(files[0]!, criLine(5, 'tok-0-5'));
    await until('16 documents', async () => es.docs().length === 16);
    expect(await metric(url, 'records_worker_starts_total')).toBe(2);
    await until(
      'the idle worker to end again',
      async () => (await metric(url, 'records_workers_running')) === 0,
    );

    // the first pieces of a cut line: the worker holds them, so it must not end while they wait
    await appendFile(
      files[1]!,
      criLine(6, 'cut-first-', 'stdout', 'P') + criLine(7, 'cut-middle-', 'stdout', 'P'),
    );
    await until('the worker to start', async () => (await metric(url, 'records_worker_starts_total')) === 3);
    await sleep(IDLE_MS * 4);
    expect(await metric(url, 'records_workers_running')).toBe(1);
    expect(es.docs().length).toBe(16);
    await appendFile(files[1]!, criLine(8, 'cut-last', 'stdout', 'F') + criLine(9, 'tok-1-9'));
    await until('18 documents', async () => es.docs().length === 18);
    await until(
      'the worker to end after the whole line',
      async () => (await metric(url, 'records_workers_running')) === 0,
    );

    // and after that stop the next line of that file still follows on exactly
    await appendFile(files[1]!, criLine(10, 'tok-1-10'));
    await until('19 documents', async () => es.docs().length === 19);

    const want = [
      ...[0, 1, 2].flatMap((p) => [0, 1, 2, 3, 4].map((i) => `tok-${p}-${i}`)),
      'tok-0-5',
      'cut-first-cut-middle-cut-last',
      'tok-1-9',
      'tok-1-10',
    ];
    expect(messages().sort()).toEqual(want.sort());
    expect(await metric(url, 'records_worker_starts_total')).toBe(4);
  });
});
