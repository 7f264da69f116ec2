// The SigV4 verifier the OpenSearch SigV4 tests rely on, held to AWS's published SigV4 test suite
// (aws-sig-v4-test-suite: credentials AKIDEXAMPLE, us-east-1, service "service", 20150830T123600Z).
import { describe, expect, it } from 'vitest';
import { type SignedRequest, verifySigV4 } from '../../fakes/sigv4-verifier.ts';

const credentials = new Map([['AKIDEXAMPLE', { secret: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }]]);
const opts = { credentials, region: 'us-east-1', service: 'service' };

function vector(method: string, target: string, signature: string, body = ''): SignedRequest {
  return {
    method,
    target,
    body: Buffer.from(body),
    headers: {
      host: 'example.amazonaws.com',
      'x-amz-date': '20150830T123600Z',
      authorization: `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=${signature}`,
    },
  };
}

const VECTORS = [
  ['get-vanilla', 'GET', '/', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'],
  ['post-vanilla', 'POST', '/', '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b'],
  [
    'get-vanilla-query-order-key-case',
    'GET',
    '/?Param2=value2&Param1=value1',
    'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
  ],
] as const;

describe('verifySigV4 on the AWS test suite', () => {
  it.each(VECTORS)('%s is accepted', (_name, method, target, signature) => {
    expect(verifySigV4(vector(method, target, signature), opts)).toMatchObject({ ok: true });
  });

  it('get-vanilla: the canonical request is the suite’s', () => {
    const v = verifySigV4(vector('GET', '/', VECTORS[0][3]), opts);
    expect(v.ok && v.canonicalRequest).toBe(
      'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it.each<[string, (r: SignedRequest) => SignedRequest, string]>([
    ['another method', (r) => ({ ...r, method: 'PUT' }), 'signature we calculated does not match'],
    ['another path', (r) => ({ ...r, target: '/_bulk' }), 'signature we calculated does not match'],
    ['a body added', (r) => ({ ...r, body: Buffer.from('x') }), 'signature we calculated does not match'],
    [
      'a changed signed header',
      (r) => ({ ...r, headers: { ...r.headers, host: 'evil.example.com' } }),
      'signature we calculated does not match',
    ],
    [
      'a body that does not match X-Amz-Content-Sha256',
      (r) => ({ ...r, headers: { ...r.headers, 'x-amz-content-sha256': '0'.repeat(64) } }),
      'does not match the body',
    ],
    [
      'no Authorization',
      (r) => ({ ...r, headers: { ...r.headers, authorization: undefined } }),
      'no Authorization',
    ],
  ])('%s is refused', (_name, change, reason) => {
    const v = verifySigV4(change(vector('GET', '/', VECTORS[0][3])), opts);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toContain(reason);
  });

  it.each([
    [{ ...opts, region: 'eu-west-1' }, 'region us-east-1, expected eu-west-1'],
    [{ ...opts, service: 'es' }, 'service service, expected es'],
    [{ ...opts, credentials: new Map([['AKIDEXAMPLE', { secret: 'other' }]]) }, 'does not match'],
    [{ ...opts, now: new Date('2015-08-30T13:00:00Z') }, 'signature expired'],
    [
      { ...opts, credentials: new Map([['AKIDEXAMPLE', { secret: 'x', sessionToken: 'T' }]]) },
      'X-Amz-Security-Token',
    ],
  ])('the verifier’s own settings matter: %o', (o, reason) => {
    const v = verifySigV4(vector('GET', '/', VECTORS[0][3]), o);
    expect(!v.ok && v.reason).toContain(reason);
  });
});
