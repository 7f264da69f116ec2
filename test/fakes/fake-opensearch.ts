// A small fake OpenSearch on 127.0.0.1 (port 0) for what a real one on loopback cannot show: an Amazon
// OpenSearch Service endpoint that refuses any request whose SigV4 signature does not verify
// (sigv4-verifier.ts), and a fake STS that hands out web identity credentials as EKS's IRSA gets them.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { type VerifyOptions, verifySigV4 } from './sigv4-verifier.ts';

export interface FakeOpenSearch {
  url: string;
  /** documents by index, by _id */
  readonly indices: Map<string, Map<string, unknown>>;
  /** requests refused for their signature, with the reason */
  readonly rejected: string[];
  /** requests whose signature verified, by access key id */
  readonly signedBy: string[];
  /** every request, as `METHOD path` */
  readonly requests: string[];
  count(index: string): number;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
  res.end(text);
}

export async function startFakeOpenSearch(
  opts: { sigv4?: Omit<VerifyOptions, 'now'> } = {},
): Promise<FakeOpenSearch> {
  const indices = new Map<string, Map<string, unknown>>();
  const rejected: string[] = [];
  const signedBy: string[] = [];
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      const target = req.url ?? '/';
      requests.push(`${req.method} ${target.split('?')[0]}`);
      if (opts.sigv4 !== undefined) {
        const v = verifySigV4(
          { method: req.method ?? 'GET', target, headers: req.headers, body: raw },
          {
            ...opts.sigv4,
            now: new Date(),
          },
        );
        if (!v.ok) {
          rejected.push(v.reason);
          // what Amazon OpenSearch Service answers
          send(res, 403, { message: v.reason });
          return;
        }
        signedBy.push(v.accessKeyId);
      }
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      const path = target.split('?')[0]!;
      if (req.method === 'GET' && path === '/') {
        send(res, 200, {
          name: 'fake',
          cluster_name: 'fake',
          version: { distribution: 'opensearch', number: '2.19.6' },
          tagline: 'The OpenSearch Project: https://opensearch.org/',
        });
      } else if (req.method === 'POST' && path === '/_bulk') {
        const lines = body
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== '');
        const items: unknown[] = [];
        for (let i = 0; i + 1 < lines.length; i += 2) {
          const action = JSON.parse(lines[i]!) as { create: { _index: string; _id?: string } };
          const { _index, _id } = action.create;
          const docs = indices.get(_index) ?? new Map<string, unknown>();
          indices.set(_index, docs);
          const id = _id ?? randomBytes(10).toString('base64url');
          if (docs.has(id))
            items.push({
              create: { status: 409, error: { type: 'version_conflict_engine_exception', reason: 'exists' } },
            });
          else {
            docs.set(id, JSON.parse(lines[i + 1]!));
            items.push({ create: { status: 201 } });
          }
        }
        send(res, 200, {
          errors: items.some((it) => (it as { create: { status: number } }).create.status >= 300),
          items,
        });
      } else if (req.method === 'GET' && path === '/_data_stream') {
        send(res, 200, { data_streams: [] });
      } else if (req.method === 'PUT' && path.startsWith('/_index_template/')) {
        send(res, 200, { acknowledged: true });
      } else {
        send(res, 404, { error: `no route ${req.method} ${path}` });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    indices,
    rejected,
    signedBy,
    requests,
    count: (index) => indices.get(index)?.size ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface FakeSts {
  url: string;
  /** the web identity tokens it was given */
  readonly tokens: string[];
  close(): Promise<void>;
}

/** `AssumeRoleWithWebIdentity` answered with fixed temporary credentials, as STS does for IRSA. */
export async function startFakeSts(creds: {
  accessKeyId: string;
  secret: string;
  sessionToken: string;
}): Promise<FakeSts> {
  const tokens: string[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const body = (await readBody(req)).toString('utf8');
      const params = new URLSearchParams(body || (req.url ?? '').split('?')[1] || '');
      if (params.get('Action') !== 'AssumeRoleWithWebIdentity') {
        res.writeHead(400).end('unsupported');
        return;
      }
      tokens.push(params.get('WebIdentityToken') ?? '');
      const expiration = new Date(Date.now() + 3600_000).toISOString();
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(`<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>${creds.accessKeyId}</AccessKeyId>
      <SecretAccessKey>${creds.secret}</SecretAccessKey>
      <SessionToken>${creds.sessionToken}</SessionToken>
      <Expiration>${expiration}</Expiration>
    </Credentials>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/logferry/x</Arn><AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser>
    <SubjectFromWebIdentityToken>system:serviceaccount:logging:logferry</SubjectFromWebIdentityToken>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    tokens,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
