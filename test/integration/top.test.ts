// `logferry top` against a real agent (the built CLI, a kubelet-style pods directory, a fake
// Kubernetes API and a fake Elasticsearch): `--once` as scripts see it, and the interactive view in a
// real terminal (tmux), quit with q and with Ctrl-C.
import { execFile } from 'node:child_process';
import { mkdir, readFile, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeElasticsearch, startFakeElasticsearch } from '../fakes/fake-elasticsearch.ts';
import { type FakeKubernetes, makePod, startFakeKubernetes } from '../fakes/fake-kubernetes.ts';
import { type Agent, type AgentEnv, NODE, podLog, startAgent } from '../helpers/agent.ts';
import { BIN, criLine, runCli, sleep, tempDir } from '../helpers/cli.ts';

const run = promisify(execFile);

let dir: string;
let cleanup: () => Promise<void>;
let es: FakeElasticsearch;
let kube: FakeKubernetes;
let env: AgentEnv;

const POD = { ns: 'shop', name: 'checkout-7d9f8b6c5-x2k4q', uid: '0f3c2a91-5b7e-4d2a-9c1e-6a8b4f2d1e00' };

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('logferry-top-'));
  es = await startFakeElasticsearch();
  kube = await startFakeKubernetes();
  kube.addPod(
    makePod({
      name: POD.name,
      namespace: POD.ns,
      nodeName: NODE,
      uid: POD.uid,
      containers: [{ name: 'web', image: 'shop/checkout:1.2' }],
    }),
  );
  env = { dir, kubeUrl: kube.url, esUrl: es.url, children: [] };
});
afterEach(async () => {
  for (const c of env.children.splice(0)) c.kill('SIGKILL');
  await es.close();
  await kube.close();
  await cleanup();
});

async function writeLines(n: number, from = 0): Promise<string> {
  const lines = Array.from({ length: n }, (_, i) => criLine(from + i, `{"msg":"request ${from + i}"}`));
  return podLog(dir, POD.ns, POD.name, POD.uid, 'web', lines);
}

async function started(extra: string[] = []): Promise<{ agent: Agent; url: string }> {
  const agent = startAgent(env, extra);
  return { agent, url: await agent.url() };
}

describe('logferry top --once', () => {
  it('prints one table of a live agent: healthy output, its file and pod, rates', async () => {
    await writeLines(200);
    const { url } = await started();
    await es.waitForCount(200);
    const res = await runCli(['top', '--once', '--http', url], { env: { COLUMNS: '120' } });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const lines = res.stdout.trimEnd().split('\n');
    for (const line of lines) expect([...line].length).toBeLessThanOrEqual(120);
    expect(lines[0]).toMatch(
      new RegExp(`^logferry \\d+\\.\\d+\\.\\d+ at ${url}, up \\d+s, pod metadata synced \\(1 pods\\)$`),
    );
    expect(lines).toContainEqual('output     elasticsearch: healthy');
    expect(lines).toContainEqual('last error none');
    // two samples a second apart: rates are numbers, not "-"
    expect(lines.find((l) => l.startsWith('in '))).toMatch(/^in\s+[\d.,]+ lines\/s\s+[\d.]+ (B|KiB|MiB)\/s$/);
    expect(lines.find((l) => l.startsWith('out '))).toMatch(
      /^out\s+[\d.,]+ docs\/s\s+[\d.]+ (B|KiB|MiB)\/s$/,
    );
    expect(lines.find((l) => l.startsWith('per minute'))).toBe('per minute 0 retries, 0 dead letters');
    expect(lines.find((l) => l.startsWith('files'))).toBe('files      1 followed, 0 behind');
    const row = lines.at(-1)!;
    expect(row).toMatch(/^\s+0 B active\s+shop\/checkout-7d9f8b6c5-x2k4q\/web\s+\S*\/web\/0\.log$/);
  });

  it('shows an output that is retrying, its last error, and the file falling behind', async () => {
    es.fault({ kind: 'status', status: 503 });
    await writeLines(20_000);
    const { url } = await started(['--max-buffer-bytes', '256KiB', '--retry-max-ms', '200']);
    // the agent has read up to its budget and is retrying
    const state = async () =>
      ((await (await fetch(`${url}/status`)).json()) as { output: { state: string } }).output.state;
    for (let i = 0; i < 200 && (await state()) !== 'retrying'; i++) await sleep(50);
    const res = await runCli(['top', '--once', '--http', url], { env: { COLUMNS: '100' } });
    expect(res.code).toBe(0);
    const lines = res.stdout.trimEnd().split('\n');
    expect(lines).toContainEqual('output     elasticsearch: retrying');
    expect(lines.find((l) => l.startsWith('last error'))).toMatch(/HTTP 503/);
    expect(lines.find((l) => l.startsWith('per minute'))).toMatch(
      /^per minute [\d,.]+ retries, 0 dead letters$/,
    );
    expect(lines.find((l) => l.startsWith('per minute'))).not.toMatch(/^per minute 0 retries/);
    expect(lines.find((l) => l.startsWith('files'))).toMatch(
      /^files\s+1 followed, 1 behind by [\d.]+ (KiB|MiB)$/,
    );
  });

  it('an agent that is not there is one line on stderr and exit code 1', async () => {
    // a port that was just free: the fake Elasticsearch's, closed
    const port = es.port;
    await es.close();
    const res = await runCli(['top', '--once', '--http', `127.0.0.1:${port}`]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toBe(
      `logferry: top: cannot reach the agent at http://127.0.0.1:${port}/status (ECONNREFUSED); is the agent running? (set --http ADDR)\n`,
    );
    es = await startFakeElasticsearch();
  });

  it('a server that is not an agent is one line and exit code 1', async () => {
    const res = await runCli(['top', '--once', '--http', kube.url]);
    expect(res.code).toBe(1);
    expect(res.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(
      /^logferry: top: .*\/status (answered HTTP 404|is not a logferry agent's status)/,
    );
  });

  it('runs as `logferry top` through a symlink on the PATH, as the image links it', async () => {
    await writeLines(10);
    const { url } = await started();
    const bin = join(dir, 'usr-local-bin');
    await mkdir(bin);
    await symlink(BIN, join(bin, 'logferry'));
    const { stdout } = await run('logferry', ['top', '--once', '--http', url], {
      env: { ...process.env, PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin` },
    });
    expect(stdout).toMatch(/^logferry \d+\.\d+\.\d+ at /);
  });

  it('bad flags exit 2 with one line', async () => {
    const res = await runCli(['top', '--interval', '5']);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe("logferry: top: unknown option '--interval' (see logferry top --help)\n");
  });
});

// The interactive view in a real terminal. tmux is installed by .ci/run (block "top (#16)").
const tmux = await run('tmux', ['-V']).then(
  () => true,
  () => false,
);

describe.skipIf(!tmux)('logferry top in a terminal (tmux)', () => {
  let socket: string;
  const tm = async (...args: string[]) => (await run('tmux', ['-L', socket, ...args])).stdout;
  const pane = () => tm('capture-pane', '-p', '-t', 'top');
  const flags = async () =>
    (
      await tm(
        'display-message',
        '-p',
        '-t',
        'top',
        '#{alternate_on} #{cursor_flag} #{pane_dead} #{pane_dead_status}',
      )
    )
      .trim()
      .split(' ');

  async function until(what: string, check: () => Promise<boolean>): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (await check()) return;
      await sleep(50);
    }
    throw new Error(`timed out waiting for ${what}; pane:\n${await pane().catch(() => '')}`);
  }

  beforeEach(() => {
    socket = `logferry-top-${process.pid}-${Date.now()}`;
  });
  afterEach(async () => {
    await run('tmux', ['-L', socket, 'kill-server']).catch(() => {});
  });

  it.each([
    ['q', 'q'],
    ['Ctrl-C', 'C-c'],
  ])('draws the live view, refreshes it, and %s restores the terminal and exits 0', async (_name, key) => {
    await writeLines(100);
    const { url } = await started();
    await es.waitForCount(100);
    const after = join(dir, 'after.txt');
    // after top exits, the same shell reports the exit code and the terminal's mode, then waits for
    // a line (tmux reports a dead pane's cursor as hidden, so it is looked at while the shell lives)
    const script = `${process.execPath} ${BIN} top --http ${url}; echo "exit=$?" > ${after}; stty -a >> ${after}; read line`;
    await tm('new-session', '-d', '-s', 'top', '-x', '120', '-y', '30', 'sh', '-c', script);
    await tm('set-option', '-t', 'top', 'remain-on-exit', 'on');
    await until('the first frame', async () => (await pane()).includes('q quits; refreshed every second'));
    // the alternate screen is on and the cursor hidden
    expect((await flags()).slice(0, 2)).toEqual(['1', '0']);
    // a refresh has two samples: the rates are numbers
    await until('a refresh', async () => /^in\s+[\d.,]+ lines\/s/m.test(await pane()));
    const frame = await pane();
    expect(frame).toContain('output     elasticsearch: healthy');
    expect(frame).toMatch(/shop\/checkout-7d9f8b6c5-x2k4q\/web/);
    for (const line of frame.split('\n')) expect([...line].length).toBeLessThanOrEqual(120);

    await tm('send-keys', '-t', 'top', key);
    await until('top to exit', async () => {
      const text = await readFile(after, 'utf8').catch(() => '');
      return text.includes('exit=') && text.includes('speed');
    });
    const report = await readFile(after, 'utf8');
    expect(report).toMatch(/^exit=0$/m);
    // raw mode is off again: line editing and echo are back
    expect(report).toMatch(/(^|\s)icanon(\s|$)/m);
    expect(report).toMatch(/(^|\s)echo(\s|$)/m);
    // the shell's own screen is back, with its cursor
    expect((await flags()).slice(0, 3)).toEqual(['0', '1', '0']);
    await tm('send-keys', '-t', 'top', 'Enter');
    await until('the pane to close', async () => (await flags())[2] === '1');
    // the view is not left on it
    expect(await pane()).not.toContain('q quits');
  });

  it('says so when the agent goes away, keeps its last answer, and still quits with q', async () => {
    await writeLines(10);
    const { agent, url } = await started();
    const after = join(dir, 'after.txt');
    await tm(
      'new-session',
      '-d',
      '-s',
      'top',
      '-x',
      '120',
      '-y',
      '30',
      'sh',
      '-c',
      `${process.execPath} ${BIN} top --http ${url}; echo "exit=$?" > ${after}; read line`,
    );
    await until('the first frame', async () => (await pane()).includes('output     elasticsearch: healthy'));
    agent.child.kill('SIGKILL');
    await agent.exited;
    await until('the agent to be missed', async () =>
      (await pane()).includes(`! cannot reach the agent at ${url}/status (ECONNREFUSED)`),
    );
    expect(await pane()).toContain('output     elasticsearch: healthy');
    await tm('send-keys', '-t', 'top', 'q');
    await until('top to exit', async () => (await readFile(after, 'utf8').catch(() => '')).includes('exit='));
    expect(await readFile(after, 'utf8')).toBe('exit=0\n');
  });

  it('an agent not there at start: one line on the terminal, exit 1, the screen never switched', async () => {
    const port = es.port;
    await es.close();
    const after = join(dir, 'after.txt');
    await tm(
      'new-session',
      '-d',
      '-s',
      'top',
      '-x',
      '150',
      '-y',
      '10',
      'sh',
      '-c',
      `${process.execPath} ${BIN} top --http 127.0.0.1:${port}; echo "exit=$?" > ${after}; read line`,
    );
    await until('top to exit', async () => (await readFile(after, 'utf8').catch(() => '')).includes('exit='));
    expect(await readFile(after, 'utf8')).toBe('exit=1\n');
    expect((await flags()).slice(0, 2)).toEqual(['0', '1']);
    expect((await pane()).trim()).toBe(
      `logferry: top: cannot reach the agent at http://127.0.0.1:${port}/status (ECONNREFUSED); is the agent running? (set --http ADDR)`,
    );
    es = await startFakeElasticsearch();
  });
});
