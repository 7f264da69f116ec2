// A self-signed certificate for 127.0.0.1 (openssl), for HTTPS fakes in integration tests.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** Writes `<dir>/<name>.key` and `<dir>/<name>.crt`, valid one day for CN/IP 127.0.0.1. */
export function selfSigned(dir: string, name: string): { key: string; cert: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { key, cert };
}
