// The built-in Kubernetes client (src/enrich/kube-client.ts): the watch stream parser, token and CA re-reading,
// connection resolution, and list/watch against a local node:http server.

import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  KubeApiError,
  KubeClient,
  lightClientConfig,
  RefreshedFile,
  TokenFile,
  WatchStreamParser,
} from '../../../src/enrich/kube-client.ts';
import { describeError, errorStatus } from '../../../src/enrich/list-watch.ts';
import { UsageError } from '../../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'logferry-kube-client-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Parsed {
  events: Array<[string, unknown]>;
  garbage: string[];
}

function parse(chunks: readonly Buffer[], end = true): Parsed {
  const out: Parsed = { events: [], garbage: [] };
  const parser = new WatchStreamParser(
    (type, object) => out.events.push([type, object]),
    (line) => out.garbage.push(line),
  );
  for (const chunk of chunks) parser.write(chunk);
  if (end) parser.end();
  return out;
}

const ev = (type: string, name: string, rv: number): string =>
  JSON.stringify({ type, object: { metadata: { name, resourceVersion: String(rv) } } });

describe('WatchStreamParser', () => {
  // Multi-byte characters of 2, 3 and 4 bytes, so some split points fall inside a character.
  const stream = Buffer.from(
    `${[
      ev('ADDED', 'café', 1),
      ev('MODIFIED', '日本-pod', 2),
      ev('BOOKMARK', '🚀', 3),
      '',
      '<html>502 Bad Gateway</html>',
      ev('DELETED', 'last', 4),
    ].join('\n')}\n`,
  );
  const expected: Parsed = {
    events: [
      ['ADDED', { metadata: { name: 'café', resourceVersion: '1' } }],
      ['MODIFIED', { metadata: { name: '日本-pod', resourceVersion: '2' } }],
      ['BOOKMARK', { metadata: { name: '🚀', resourceVersion: '3' } }],
      ['DELETED', { metadata: { name: 'last', resourceVersion: '4' } }],
    ],
    garbage: ['<html>502 Bad Gateway</html>'],
  };

  it('gives the same events in one chunk, one byte at a time, and split at every byte position', () => {
    expect(parse([stream])).toEqual(expected);
    expect(parse([...stream].map((b) => Buffer.from([b])))).toEqual(expected);
    for (let i = 0; i <= stream.length; i++) {
      expect(parse([stream.subarray(0, i), stream.subarray(i)]), `split at ${i}`).toEqual(expected);
    }
  });

  it('splits at every pair of positions (three chunks)', () => {
    const short = Buffer.from(`${ev('ADDED', 'é', 1)}\n${ev('ADDED', '€', 2)}\n`);
    const want = parse([short]);
    expect(want.events).toHaveLength(2);
    for (let i = 0; i <= short.length; i++) {
      for (let j = i; j <= short.length; j++) {
        expect(parse([short.subarray(0, i), short.subarray(i, j), short.subarray(j)])).toEqual(want);
      }
    }
  });

  it.each<[string, string, Parsed]>([
    [
      'a last line without a newline is delivered at the end',
      `${ev('ADDED', 'a', 1)}\n${ev('ADDED', 'b', 2)}`,
      {
        events: [
          ['ADDED', { metadata: { name: 'a', resourceVersion: '1' } }],
          ['ADDED', { metadata: { name: 'b', resourceVersion: '2' } }],
        ],
        garbage: [],
      },
    ],
    [
      'a truncated last line is garbage',
      `${ev('ADDED', 'a', 1)}\n{"type":"ADDED","object":{"meta`,
      {
        events: [['ADDED', { metadata: { name: 'a', resourceVersion: '1' } }]],
        garbage: ['{"type":"ADDED","object":{"meta'],
      },
    ],
    [
      'CRLF line ends and blank lines',
      `\r\n\n${ev('ADDED', 'a', 1)}\r\n   \n\n`,
      { events: [['ADDED', { metadata: { name: 'a', resourceVersion: '1' } }]], garbage: [] },
    ],
    [
      'JSON that is not an event: null, an array, a number, no type',
      'null\n[1,2]\n42\n{"object":{}}\n{"type":7}\n',
      { events: [], garbage: ['null', '[1,2]', '42', '{"object":{}}', '{"type":7}'] },
    ],
    [
      'an ERROR event with its Status',
      '{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}\n',
      { events: [['ERROR', { kind: 'Status', code: 410, reason: 'Expired' }]], garbage: [] },
    ],
    ['nothing', '', { events: [], garbage: [] }],
  ])('%s', (_name, text, want) => {
    expect(parse([Buffer.from(text)])).toEqual(want);
  });

  it('keeps a last line without a newline until the end', () => {
    const text = Buffer.from(ev('ADDED', 'a', 1));
    expect(parse([text], false).events).toEqual([]);
    expect(parse([text], true).events).toHaveLength(1);
  });

  it('refuses a line that never ends', () => {
    const parser = new WatchStreamParser(
      () => {},
      () => {},
      100,
    );
    parser.write(Buffer.alloc(60, 'x'));
    expect(() => parser.write(Buffer.alloc(60, 'x'))).toThrow(/longer than 100 characters/);
  });

  it('lets an exception from the event handler through (the watch ends with it)', () => {
    const parser = new WatchStreamParser(() => {
      throw new Error('handler bug');
    });
    expect(() => parser.write(Buffer.from(`${ev('ADDED', 'a', 1)}\n`))).toThrow('handler bug');
  });
});

describe('TokenFile and RefreshedFile', () => {
  it('re-reads the token once the refresh interval has passed, trimmed', () => {
    const path = join(dir, 'token-rotate');
    writeFileSync(path, 'first\n');
    let now = 1_000;
    const token = new TokenFile(path, 60_000, () => now);
    expect(token.get()).toBe('first');
    writeFileSync(path, 'second');
    now += 59_999;
    expect(token.get()).toBe('first');
    now += 1;
    expect(token.get()).toBe('second');
  });

  it('keeps the last token while the file is briefly missing (a rotation), and retries', () => {
    const path = join(dir, 'token-missing');
    writeFileSync(path, 'kept');
    let now = 0;
    const token = new TokenFile(path, 10, () => now);
    expect(token.get()).toBe('kept');
    unlinkSync(path);
    now = 100;
    expect(token.get()).toBe('kept');
    writeFileSync(path, 'back');
    now = 101;
    expect(token.get()).toBe('back');
  });

  it('says which file cannot be read when there is no token yet; an empty file sends none', () => {
    expect(() => new TokenFile(join(dir, 'nope'), 60_000).get()).toThrow(
      `cannot read the token file ${join(dir, 'nope')}: ENOENT`,
    );
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    expect(new TokenFile(empty, 60_000).get()).toBeUndefined();
  });

  it('returns the same buffer until a re-read', () => {
    const path = join(dir, 'ca');
    writeFileSync(path, 'pem');
    let now = 0;
    const file = new RefreshedFile(path, 'CA file', 1_000, () => now);
    const first = file.get();
    expect(file.get()).toBe(first);
    now = 1_000;
    expect(file.get()).not.toBe(first);
    expect(file.get().toString()).toBe('pem');
  });
});

describe('lightClientConfig', () => {
  const sa = { tokenFile: '/sa/token', caFile: '/sa/ca.crt' };
  it.each<[string, Parameters<typeof lightClientConfig>[0], Record<string, string>, unknown]>([
    [
      'an http URL, trailing slash dropped',
      { kind: 'url', url: 'http://127.0.0.1:8001/' },
      {},
      { server: 'http://127.0.0.1:8001', insecureSkipTlsVerify: false },
    ],
    [
      'an https URL with a path prefix, CA and token files',
      { kind: 'url', url: 'https://api.example/k8s/', caFile: '/ca', tokenFile: '/t' },
      {},
      { server: 'https://api.example/k8s', caFile: '/ca', tokenFile: '/t' },
    ],
    [
      'in-cluster',
      { kind: 'in-cluster' },
      { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
      { server: 'https://10.96.0.1:443', ...sa, insecureSkipTlsVerify: false },
    ],
    [
      'auto in a pod, IPv6 service address',
      { kind: 'auto' },
      { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' },
      { server: 'https://[fd00::1]:6443', ...sa },
    ],
    [
      'in-cluster on a plain-http port (as the library decides)',
      { kind: 'in-cluster' },
      { KUBERNETES_SERVICE_HOST: 'localhost', KUBERNETES_SERVICE_PORT: '8080' },
      { server: 'http://localhost:8080' },
    ],
    ['auto outside a pod: a kubeconfig, for the library', { kind: 'auto' }, {}, undefined],
    [
      'a kubeconfig file: the library',
      { kind: 'kubeconfig', path: '/x' },
      { KUBERNETES_SERVICE_HOST: '10.96.0.1' },
      undefined,
    ],
  ])('%s', (_name, conn, env, want) => {
    const got = lightClientConfig(conn, { env, ...sa });
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toMatchObject(want as object);
  });

  it.each<[string, Parameters<typeof lightClientConfig>[0]]>([
    ['in-cluster outside a pod', { kind: 'in-cluster' }],
    ['a bad URL', { kind: 'url', url: 'not a url' }],
    ['a URL that is not http', { kind: 'url', url: 'ftp://host/' }],
  ])('%s is a usage error', (_name, conn) => {
    expect(() => lightClientConfig(conn, { env: {} })).toThrow(UsageError);
  });
});

// --- against a local server ---------------------------------------------------------------------------------

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let server: Server | undefined;
let handler: Handler = (_req, res) => res.end();
const seen: IncomingMessage[] = [];

async function serve(h: Handler): Promise<string> {
  handler = h;
  if (server === undefined) {
    server = createServer((req, res) => {
      seen.push(req);
      handler(req, res);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  }
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let clients: KubeClient[] = [];
function client(opts: Partial<ConstructorParameters<typeof KubeClient>[0]> & { server: string }): KubeClient {
  const c = new KubeClient(opts);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients) c.close();
  clients = [];
  seen.length = 0;
  if (server !== undefined) {
    server.closeAllConnections();
    await new Promise((r) => server!.close(r));
    server = undefined;
  }
});

interface WatchRun {
  events: Array<[string, unknown]>;
  /** resolves with done's argument */
  done: Promise<unknown>;
  /** resolves with the controller */
  started: Promise<AbortController>;
  order: string[];
}

function watch(c: KubeClient, path = '/api/v1/pods', query = {}): WatchRun {
  const events: Array<[string, unknown]> = [];
  const order: string[] = [];
  let calls = 0;
  let finish: (err: unknown) => void = () => {};
  const done = new Promise<unknown>((r) => {
    finish = r;
  });
  const started = c.watch(
    path,
    query,
    (type, object) => events.push([type, object]),
    (err) => {
      calls += 1;
      if (calls > 1) throw new Error('done called twice');
      order.push('done');
      finish(err);
    },
  );
  void started.then(() => order.push('resolved'));
  return { events, done, started, order };
}

describe('KubeClient.list', () => {
  it('sends the query, JSON Accept, the User-Agent and the bearer token; decodes gzip', async () => {
    const tokenPath = join(dir, 'list-token');
    writeFileSync(tokenPath, 'tok-1\n');
    const url = await serve((req, res) => {
      const body = JSON.stringify({
        kind: 'PodList',
        metadata: { resourceVersion: '42' },
        items: [{ a: 'é' }],
      });
      if (req.headers['accept-encoding']?.includes('gzip')) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync(body));
      } else {
        res.end(body);
      }
    });
    const c = client({ server: `${url}/`, tokenFile: tokenPath, userAgent: 'logferry/9.9.9' });
    const list = await c.list(
      '/api/v1/pods',
      { fieldSelector: 'spec.nodeName=n', resourceVersion: '0', resourceVersionMatch: undefined },
      AbortSignal.timeout(5_000),
    );
    expect(list).toEqual({ kind: 'PodList', metadata: { resourceVersion: '42' }, items: [{ a: 'é' }] });
    const req = seen[0]!;
    expect(req.url).toBe('/api/v1/pods?fieldSelector=spec.nodeName%3Dn&resourceVersion=0');
    expect(req.headers).toMatchObject({
      accept: 'application/json',
      'user-agent': 'logferry/9.9.9',
      authorization: 'Bearer tok-1',
    });
  });

  it('re-reads a rotated token file', async () => {
    const tokenPath = join(dir, 'rotating-token');
    writeFileSync(tokenPath, 'old');
    const url = await serve((_req, res) => res.end('{"items":[]}'));
    let now = 0;
    const c = client({ server: url, tokenFile: tokenPath, refreshMs: 60_000, now: () => now });
    const signal = AbortSignal.timeout(5_000);
    await c.list('/api/v1/pods', {}, signal);
    writeFileSync(tokenPath, 'new');
    await c.list('/api/v1/pods', {}, signal);
    now = 60_000;
    await c.list('/api/v1/pods', {}, signal);
    expect(seen.map((r) => r.headers.authorization)).toEqual(['Bearer old', 'Bearer old', 'Bearer new']);
  });

  it('turns an API error into an error errorStatus and describeError understand', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'Status',
          code: 403,
          reason: 'Forbidden',
          message: 'pods is forbidden: User "system:serviceaccount:x:y" cannot list resource "pods"',
        }),
      );
    });
    const err = await client({ server: url })
      .list('/api/v1/pods', {}, AbortSignal.timeout(5_000))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(errorStatus(err)).toBe(403);
    expect(describeError(err)).toBe(
      'HTTP 403: pods is forbidden: User "system:serviceaccount:x:y" cannot list resource "pods"',
    );
  });

  it('an error without a body still says what it is', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(502);
      res.end();
    });
    const err = await client({ server: url })
      .list('/api/v1/pods', {}, AbortSignal.timeout(5_000))
      .catch((e: unknown) => e);
    expect(describeError(err)).toBe('HTTP 502: Bad Gateway');
  });

  it('rejects with the signal’s reason when it times out or is aborted', async () => {
    const url = await serve(() => {}); // never answers
    const c = client({ server: url });
    const err = await c.list('/api/v1/pods', {}, AbortSignal.timeout(100)).catch((e: unknown) => e);
    expect((err as Error).name).toBe('TimeoutError');
    const ac = new AbortController();
    const pending = c.list('/api/v1/pods', {}, ac.signal).catch((e: unknown) => e);
    ac.abort(new Error('stopping'));
    expect(((await pending) as Error).message).toBe('stopping');
  });

  it('names the API on a connection failure', async () => {
    const url = await serve(() => {});
    await new Promise((r) => server!.close(r));
    server = undefined;
    const err = await client({ server: url })
      .list('/api/v1/pods', {}, AbortSignal.timeout(5_000))
      .catch((e: unknown) => e);
    expect(describeError(err)).toMatch(
      new RegExp(`^cannot reach the Kubernetes API at ${url}: connect ECONNREFUSED`),
    );
  });
});

describe('KubeClient.watch', () => {
  it('resolves once the server answered, delivers events across chunks, and ends with done(null)', async () => {
    let respond: ServerResponse | undefined;
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      respond = res;
    });
    const run = watch(client({ server: url }), '/api/v1/pods', {
      resourceVersion: '5',
      allowWatchBookmarks: true,
      fieldSelector: undefined,
    });
    await run.started;
    expect(seen[0]?.url).toBe('/api/v1/pods?watch=true&resourceVersion=5&allowWatchBookmarks=true');
    const line = Buffer.from(`${ev('ADDED', 'ünïcode', 6)}\n`);
    respond!.write(line.subarray(0, 20));
    respond!.write(line.subarray(20, 43));
    respond!.write(Buffer.concat([line.subarray(43), Buffer.from('garbage\n')]));
    respond!.end(ev('DELETED', 'x', 7)); // no final newline
    expect(await run.done).toBeNull();
    expect(run.events).toEqual([
      ['ADDED', { metadata: { name: 'ünïcode', resourceVersion: '6' } }],
      ['DELETED', { metadata: { name: 'x', resourceVersion: '7' } }],
    ]);
    expect(run.order).toEqual(['resolved', 'done']);
  });

  it('reports a non-200 answer through done first, with its status and Status message', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end('{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (9)"}');
    });
    const run = watch(client({ server: url }));
    const err = await run.done;
    await run.started;
    expect(errorStatus(err)).toBe(410);
    expect(describeError(err)).toBe('HTTP 410: too old resource version: 1 (9)');
    expect(run.order).toEqual(['done', 'resolved']);
  });

  it('ends an idle watch with a TimeoutError, reset by every chunk', async () => {
    let respond: ServerResponse | undefined;
    const url = await serve((_req, res) => {
      res.writeHead(200);
      res.flushHeaders();
      respond = res;
    });
    const run = watch(client({ server: url, watchIdleTimeoutMs: 300 }));
    await run.started;
    const started = Date.now();
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 150));
      respond!.write(`${ev('BOOKMARK', 'b', i + 1)}\n`);
    }
    const err = await run.done;
    expect((err as Error).name).toBe('TimeoutError');
    expect(Date.now() - started).toBeGreaterThanOrEqual(850);
    expect(run.events).toHaveLength(4);
  });

  it('times out a server that never answers', async () => {
    const url = await serve(() => {});
    const run = watch(client({ server: url, watchIdleTimeoutMs: 150 }));
    expect(((await run.done) as Error).name).toBe('TimeoutError');
    await run.started;
    expect(run.order).toEqual(['done', 'resolved']);
  });

  it('stops on abort: done once, no events after it, the connection closed', async () => {
    let respond: ServerResponse | undefined;
    let closed: Promise<void> | undefined;
    const url = await serve((req, res) => {
      res.writeHead(200);
      res.flushHeaders();
      respond = res;
      closed = new Promise<void>((resolve) => req.socket.on('close', () => resolve()));
    });
    const run = watch(client({ server: url }));
    const controller = await run.started;
    controller.abort();
    await run.done;
    respond!.write(`${ev('ADDED', 'late', 1)}\n`);
    await closed;
    expect(run.events).toEqual([]);
  });

  it('reports a connection cut mid-stream as an error', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200);
      res.write(`${ev('ADDED', 'a', 1)}\n{"type":"ADD`);
      setTimeout(() => res.destroy(), 50);
    });
    const run = watch(client({ server: url }));
    const err = await run.done;
    expect(err).toBeInstanceOf(Error);
    expect(run.events).toHaveLength(1);
  });

  it('ends the watch with the error when the event handler throws', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200);
      res.write(`${ev('ADDED', 'a', 1)}\n`);
    });
    const c = client({ server: url });
    const err = await new Promise<unknown>((resolve) => {
      void c.watch(
        '/api/v1/pods',
        {},
        () => {
          throw new Error('handler bug');
        },
        resolve,
      );
    });
    expect((err as Error).message).toBe('handler bug');
  });

  it('reports an unreadable token file through done', async () => {
    const url = await serve((_req, res) => res.end());
    const run = watch(client({ server: url, tokenFile: join(dir, 'no-such-token') }));
    expect(describeError(await run.done)).toMatch(/^cannot read the token file .*no-such-token: ENOENT$/);
    expect(seen).toHaveLength(0);
  });
});
