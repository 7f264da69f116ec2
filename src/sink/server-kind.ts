/**
 * Which kind of server answers `GET /`, and whether the configured output can talk to it. Pure: the
 * transports fetch the answer, this decides. A client pointed at the wrong product (the Elasticsearch
 * client at an OpenSearch answers every bulk with HTTP 406) must not retry forever as if the fault
 * were transient: the output says once what it found and which flag to use, and is not ready.
 */

export type OutputKind = 'elasticsearch' | 'opensearch';

/** `GET /` as a transport saw it; `status` undefined when there was no HTTP answer. */
export interface RootResponse {
  status: number | undefined;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: unknown;
  /** why there was no answer */
  error?: string | undefined;
}

export type ServerIdentity =
  | { kind: 'elasticsearch' | 'opensearch'; version: string | undefined }
  /** no answer, 429 or 5xx: ask again later */
  | { kind: 'unavailable'; detail: string }
  /** 401/403: a writer role may lack the right to `GET /` (Amazon OpenSearch Service, fine-grained access) */
  | { kind: 'forbidden'; status: number }
  | { kind: 'other'; detail: string };

function header(res: RootResponse, name: string): string | undefined {
  const v = res.headers[name] ?? res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function parsedBody(body: unknown): Record<string, unknown> | undefined {
  if (typeof body === 'string') {
    try {
      const v: unknown = JSON.parse(body);
      return typeof v === 'object' && v !== null && !Array.isArray(v)
        ? (v as Record<string, unknown>)
        : undefined;
    } catch {
      return undefined;
    }
  }
  return typeof body === 'object' && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : undefined;
}

export function identifyServer(res: RootResponse): ServerIdentity {
  const { status } = res;
  if (status === undefined) return { kind: 'unavailable', detail: res.error ?? 'no answer' };
  const body = parsedBody(res.body);
  const version = body?.version as { number?: unknown; distribution?: unknown } | undefined;
  const number = typeof version?.number === 'string' ? version.number : undefined;
  // every Elasticsearch answer since 7.14 carries it, errors included (the integ-test zip answers 405)
  if (header(res, 'x-elastic-product') === 'Elasticsearch') return { kind: 'elasticsearch', version: number };
  if (status >= 200 && status < 300 && version !== undefined) {
    if (version.distribution === 'opensearch') return { kind: 'opensearch', version: number };
    // Elasticsearch before 7.14 (and Amazon's Elasticsearch OSS 7.10 domains): no header, no distribution
    if (typeof body?.tagline === 'string' && body.tagline.includes('You Know, for Search')) {
      return { kind: 'elasticsearch', version: number };
    }
  }
  if (status === 401 || status === 403) return { kind: 'forbidden', status };
  if (status === 429 || status >= 500) return { kind: 'unavailable', detail: `HTTP ${status}` };
  const server = header(res, 'server');
  return { kind: 'other', detail: `HTTP ${status}${server !== undefined ? `, Server: ${server}` : ''}` };
}

const PRODUCT: Record<OutputKind, string> = { elasticsearch: 'Elasticsearch', opensearch: 'OpenSearch' };

/** How to point the output at each kind of server: the flags, and the config file's keys. */
const HOW_TO: Record<OutputKind, string> = {
  elasticsearch: '--es URL (config: output.es)',
  opensearch: '--output opensearch --os URL (config: output.type: opensearch, output.os)',
};

export type ServerVerdict =
  | { ok: true; found: string }
  /** permanent: the same request can never succeed; `message` is the one line to log */
  | { ok: false; permanent: true; message: string }
  | { ok: false; permanent: false; message: string };

/**
 * The verdict for output `expected` at `url`. A forbidden `GET /` is let through: the bulk requests
 * themselves then tell whether the credentials can write.
 */
export function checkServer(identity: ServerIdentity, expected: OutputKind, url: string): ServerVerdict {
  const want = PRODUCT[expected];
  switch (identity.kind) {
    case 'elasticsearch':
    case 'opensearch': {
      const found = `${PRODUCT[identity.kind]}${identity.version !== undefined ? ` ${identity.version}` : ''}`;
      if (identity.kind === expected) return { ok: true, found };
      return {
        ok: false,
        permanent: true,
        message: `${url} is ${found}, not ${want}: to ship to it, use ${HOW_TO[identity.kind]}`,
      };
    }
    case 'forbidden':
      return { ok: true, found: `a server that refuses GET / (HTTP ${identity.status})` };
    case 'unavailable':
      return { ok: false, permanent: false, message: `cannot reach ${want}: ${identity.detail}` };
    case 'other':
      return {
        ok: false,
        permanent: true,
        message: `${url} is neither Elasticsearch nor OpenSearch (GET / answered ${identity.detail}): point ${HOW_TO[expected]} at an ${want} node`,
      };
  }
}
