// TLS to Elasticsearch: a CA that does not match is a clear, retried error; the right CA works.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { criLine, runCli, stderrOfRun, tempDir } from '../helpers/cli.ts';
import { selfSigned as selfSignedIn } from '../helpers/tls.ts';

let dir: string;
let cleanup: () => Promise<void>;
let server: Server | undefined;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
  await cleanup();
});

const selfSigned = (name: string) => selfSignedIn(dir, name);

/** Just enough of Elasticsearch over HTTPS: every bulk item created. */
async function startTlsElasticsearch(
  key: string,
  cert: string,
): Promise<{ url: string; stored: () => number }> {
  let stored = 0;
  server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      const n = body.split('\n').filter((l) => l !== '').length / 2;
      stored += n;
      res.writeHead(200, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
      res.end(
        JSON.stringify({
          errors: false,
          items: Array.from({ length: n }, () => ({ create: { status: 201 } })),
        }),
      );
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { url: `https://127.0.0.1:${(server!.address() as AddressInfo).port}`, stored: () => stored };
}

const openssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!openssl)('TLS', () => {
  it('the right CA file works; a wrong one is a clear error, retried, nothing acknowledged', async () => {
    const serverCert = selfSigned('server');
    const otherCa = selfSigned('other');
    const es = await startTlsElasticsearch(serverCert.key, serverCert.cert);
    const log = join(dir, '0.log');
    await writeFile(log, criLine(1, 'over tls'));

    const ok = await runCli([
      'tail',
      '--once',
      '--from-beginning',
      '--es',
      es.url,
      '--es-ca-file',
      serverCert.cert,
      log,
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/1 stored/);
    expect(es.stored()).toBe(1);

    const stderr = await stderrOfRun(
      [
        'tail',
        '--from-beginning',
        '--retry-max-ms',
        '200',
        '--es',
        es.url,
        '--es-ca-file',
        otherCa.cert,
        log,
      ],
      // 2 s was too short on a loaded machine: the CLI had not sent its first request yet (empty stderr)
      5000,
    );
    expect(stderr).toMatch(/cannot reach Elasticsearch: .*(self[- ]signed|certificate|verify)/i);
    expect(stderr.split('\n').filter((l) => l.includes('cannot reach'))).toHaveLength(1);
    expect(es.stored()).toBe(1);
  });
});
