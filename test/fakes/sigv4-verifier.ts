// An AWS Signature Version 4 verifier written from AWS's specification ("Create a signed AWS API request"),
// independent of the signer logferry uses (aws4, inside @opensearch-project/opensearch): it recomputes the
// signature of a received request and compares. Its own tests hold it to AWS's published test vectors
// (test/unit/fakes/sigv4-verifier.test.ts), so a request it accepts is signed the way AWS checks it.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface SignedRequest {
  method: string;
  /** the request target as sent: path and query, percent-encoded */
  target: string;
  /** header names in lower case */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Buffer;
}

export interface VerifyOptions {
  /** secret access key (and session token, when the credentials are temporary) by access key id */
  credentials: ReadonlyMap<string, { secret: string; sessionToken?: string | undefined }>;
  region: string;
  service: string;
  /** the verifier's clock; a request older or newer than 15 minutes is refused, as AWS does */
  now?: Date | undefined;
}

export type Verdict =
  | { ok: true; accessKeyId: string; signedHeaders: string[]; canonicalRequest: string; signature: string }
  | { ok: false; reason: string };

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 unreserved characters stay, everything else is %XX (upper case), as SigV4 requires. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function headerValue(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v.join(',') : v).trim().replace(/\s+/g, ' ');
}

function canonicalQuery(query: string): string {
  if (query === '') return '';
  const pairs = query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const k = eq === -1 ? p : p.slice(0, eq);
      const v = eq === -1 ? '' : p.slice(eq + 1);
      const dec = (x: string) => decodeURIComponent(x.replace(/\+/g, '%20'));
      return [uriEncode(dec(k)), uriEncode(dec(v))] as const;
    });
  pairs.sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** Each path segment decoded, then encoded once (the test suite's form; logferry's paths are plain ASCII). */
function canonicalUri(path: string): string {
  if (path === '') return '/';
  return path
    .split('/')
    .map((seg) => uriEncode(decodeURIComponent(seg)))
    .join('/');
}

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

export function verifySigV4(req: SignedRequest, opts: VerifyOptions): Verdict {
  const auth = headerValue(req.headers.authorization);
  if (auth === undefined) return { ok: false, reason: 'no Authorization header' };
  const m = AUTH.exec(auth);
  if (m === null) return { ok: false, reason: `malformed Authorization header: ${auth}` };
  const [, accessKeyId, date, region, service, signedList, signature] = m as unknown as string[];
  const cred = opts.credentials.get(accessKeyId!);
  if (cred === undefined) return { ok: false, reason: `unknown access key ${accessKeyId}` };
  if (region !== opts.region)
    return { ok: false, reason: `credential scope region ${region}, expected ${opts.region}` };
  if (service !== opts.service) {
    return { ok: false, reason: `credential scope service ${service}, expected ${opts.service}` };
  }
  const amzDate = headerValue(req.headers['x-amz-date']);
  if (amzDate === undefined || !/^\d{8}T\d{6}Z$/.test(amzDate))
    return { ok: false, reason: 'no valid X-Amz-Date' };
  if (!amzDate.startsWith(date!))
    return { ok: false, reason: 'X-Amz-Date and the credential scope disagree' };
  if (opts.now !== undefined) {
    const t = Date.UTC(
      Number(amzDate.slice(0, 4)),
      Number(amzDate.slice(4, 6)) - 1,
      Number(amzDate.slice(6, 8)),
      Number(amzDate.slice(9, 11)),
      Number(amzDate.slice(11, 13)),
      Number(amzDate.slice(13, 15)),
    );
    if (Math.abs(opts.now.getTime() - t) > 15 * 60_000) return { ok: false, reason: 'signature expired' };
  }
  const signedHeaders = signedList!.split(';');
  for (const required of ['host', 'x-amz-date']) {
    if (!signedHeaders.includes(required)) return { ok: false, reason: `${required} is not signed` };
  }
  const token = headerValue(req.headers['x-amz-security-token']);
  if (cred.sessionToken !== undefined) {
    if (token !== cred.sessionToken) return { ok: false, reason: 'missing or wrong X-Amz-Security-Token' };
    if (!signedHeaders.includes('x-amz-security-token')) {
      return { ok: false, reason: 'x-amz-security-token is not signed' };
    }
  }
  const bodyHash = sha256(req.body);
  const declared = headerValue(req.headers['x-amz-content-sha256']);
  if (declared !== undefined && declared !== 'UNSIGNED-PAYLOAD' && declared !== bodyHash) {
    return { ok: false, reason: 'X-Amz-Content-Sha256 does not match the body' };
  }
  const q = req.target.indexOf('?');
  const path = q === -1 ? req.target : req.target.slice(0, q);
  const query = q === -1 ? '' : req.target.slice(q + 1);
  let headerBlock = '';
  for (const name of signedHeaders) {
    const v = headerValue(req.headers[name]);
    if (v === undefined) return { ok: false, reason: `signed header ${name} is missing` };
    headerBlock += `${name}:${v}\n`;
  }
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(path),
    canonicalQuery(query),
    headerBlock,
    signedHeaders.join(';'),
    declared ?? bodyHash,
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256(canonicalRequest)}`;
  const key = hmac(hmac(hmac(hmac(`AWS4${cred.secret}`, date!), region!), service!), 'aws4_request');
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest();
  const got = Buffer.from(signature!, 'hex');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    return {
      ok: false,
      reason: 'The request signature we calculated does not match the signature you provided',
    };
  }
  return { ok: true, accessKeyId: accessKeyId!, signedHeaders, canonicalRequest, signature: signature! };
}
