// Amazon OpenSearch Service: `--os-aws-region` signs every request with SigV4. The endpoint here is a fake
// OpenSearch that verifies each signature with its own verifier (test/fakes/sigv4-verifier.ts, held to
// AWS's test vectors) and refuses anything else with 403, as the managed service does; credentials come
// from the AWS SDK's default chain: environment variables, or a web identity token file and a role
// (EKS's IRSA) exchanged at a fake STS.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeOpenSearch, startFakeOpenSearch, startFakeSts } from '../fakes/fake-opensearch.ts';
import { BIN, criLine, runCli, sleep, tempDir } from '../helpers/cli.ts';

let dir: string;
let cleanup: () => Promise<void>;
let fake: FakeOpenSearch;
const KEY = {
  id: 'AKIAIOSFODNN7EXAMPLE',
  secret: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  token: 'FwoGZXIvYXdzEXAMPLE//token+=',
};

/** No credentials from the machine running the tests, and no instance metadata lookups. */
const NO_AWS: NodeJS.ProcessEnv = {
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
  AWS_ROLE_ARN: undefined,
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
};

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  fake = await startFakeOpenSearch({
    sigv4: {
      region: 'eu-west-1',
      service: 'es',
      credentials: new Map([[KEY.id, { secret: KEY.secret, sessionToken: KEY.token }]]),
    },
  });
});
afterEach(async () => {
  await fake.close();
  await cleanup();
});

async function logFile(n: number): Promise<string> {
  const log = join(dir, '0.log');
  await writeFile(log, Array.from({ length: n }, (_, i) => criLine(i + 1, `{"seq":${i}}`)).join(''));
  return log;
}

const envCredentials = {
  ...NO_AWS,
  AWS_ACCESS_KEY_ID: KEY.id,
  AWS_SECRET_ACCESS_KEY: KEY.secret,
  AWS_SESSION_TOKEN: KEY.token,
};

describe('SigV4 for Amazon OpenSearch Service', () => {
  it.each([
    ['plain bodies', []],
    ['gzip bodies (the signature covers the compressed bytes)', ['--es-compression']],
  ])('credentials from the environment: every request verifies (%s)', async (_label, extra) => {
    const log = await logFile(50);
    const res = await runCli(
      [
        'tail',
        '--once',
        '--from-beginning',
        '--os',
        fake.url,
        '--os-aws-region',
        'eu-west-1',
        '--batch-docs',
        '20',
        '--index',
        'logs-aws',
        ...extra,
        log,
      ],
      { env: envCredentials },
    );
    expect(res.stderr).toMatch(/shipped: 50 stored, 0 already stored/);
    expect(res.code).toBe(0);
    expect(fake.rejected).toEqual([]);
    expect(fake.count('logs-aws')).toBe(50);
    // the server check and three bulk requests, all signed with the key
    expect(fake.requests).toEqual(['GET /', 'POST /_bulk', 'POST /_bulk', 'POST /_bulk']);
    expect(new Set(fake.signedBy)).toEqual(new Set([KEY.id]));
  });

  it('a signature for another region is refused by the verifier, and the agent says the credentials were refused', async () => {
    const log = await logFile(3);
    const child = spawn(
      process.execPath,
      [
        BIN,
        'tail',
        '--once',
        '--from-beginning',
        '--os',
        fake.url,
        '--os-aws-region',
        'us-east-1',
        '--retry-max-ms',
        '200',
        log,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...envCredentials } },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    for (let i = 0; i < 100 && !stderr.includes('refused the credentials'); i++) await sleep(100);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    expect(stderr).toContain('output: OpenSearch refused the credentials (HTTP 403)');
    expect(fake.rejected[0]).toBe('credential scope region us-east-1, expected eu-west-1');
    expect(fake.count('logs-kubernetes.container_logs-default')).toBe(0);
  });

  it('IRSA: a web identity token file and a role are exchanged at STS for the credentials that sign', async () => {
    const sts = await startFakeSts({ accessKeyId: KEY.id, secret: KEY.secret, sessionToken: KEY.token });
    try {
      const tokenFile = join(dir, 'token');
      await writeFile(tokenFile, 'eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig');
      const log = await logFile(5);
      const res = await runCli(
        [
          'tail',
          '--once',
          '--from-beginning',
          '--os',
          fake.url,
          '--os-aws-region',
          'eu-west-1',
          '--index',
          'logs-irsa',
          log,
        ],
        {
          env: {
            ...NO_AWS,
            AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
            AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/logferry',
            AWS_REGION: 'eu-west-1',
            AWS_ENDPOINT_URL_STS: sts.url,
          },
        },
      );
      expect(res.stderr).toMatch(/shipped: 5 stored/);
      expect(res.code).toBe(0);
      expect(sts.tokens).toEqual(['eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig']);
      expect(fake.rejected).toEqual([]);
      expect(fake.count('logs-irsa')).toBe(5);
    } finally {
      await sts.close();
    }
  });
});
