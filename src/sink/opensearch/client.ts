import { Client, errors } from '@opensearch-project/opensearch';
import { errorMessage } from '../../errors.ts';
import { bulkQuerystring, tlsOptions } from '../connection.ts';
import type { ConnectionOptions } from '../elasticsearch/client.ts';
import type { BulkTransport } from '../elasticsearch/sink.ts';
import type { TemplateApi } from '../elasticsearch/templates.ts';

/** Amazon OpenSearch Service: SigV4-signed requests. */
export interface AwsSigningOptions {
  region: string;
  /** `es`: a managed domain; `aoss`: OpenSearch Serverless */
  service: 'es' | 'aoss';
}

export interface OpenSearchConnectionOptions extends ConnectionOptions {
  aws?: AwsSigningOptions | undefined;
}

/**
 * The official OpenSearch client with the same settings as the Elasticsearch output's client:
 * logferry retries itself, per item, so the client never retries; a dead node is tried again soon.
 * With `aws`, every request is signed by the client's AwsSigv4Signer with credentials from the AWS
 * SDK's default chain (environment, web identity token file as EKS's IRSA sets it, profile, IMDS).
 */
export async function createOpenSearchClient(opts: OpenSearchConnectionOptions): Promise<Client> {
  const tls = tlsOptions(opts);
  let signer: object = {};
  if (opts.aws !== undefined) {
    const [{ AwsSigv4Signer }, { defaultProvider }] = await Promise.all([
      import('@opensearch-project/opensearch/aws-v3'),
      import('@aws-sdk/credential-provider-node'),
    ]);
    // one provider for the process: it caches credentials and refreshes them before they expire
    const provider = defaultProvider();
    signer = AwsSigv4Signer({
      region: opts.aws.region,
      service: opts.aws.service,
      getCredentials: () => provider(),
    });
  }
  return new Client({
    ...signer,
    nodes: opts.nodes,
    ...(opts.username !== undefined
      ? { auth: { username: opts.username, password: opts.password ?? '' } }
      : {}),
    ...(opts.bearerToken !== undefined ? { headers: { authorization: `Bearer ${opts.bearerToken}` } } : {}),
    ...(tls !== undefined ? { ssl: tls } : {}),
    ...(opts.compression ? { compression: 'gzip' as const } : {}),
    requestTimeout: opts.requestTimeoutMs,
    maxRetries: 0,
    resurrectStrategy: 'optimistic',
  });
}

function responseOf(
  err: unknown,
): { status: number; body: unknown; headers: Record<string, unknown> } | undefined {
  if (err instanceof errors.ResponseError && typeof err.meta.statusCode === 'number') {
    return { status: err.meta.statusCode, body: err.meta.body, headers: err.meta.headers ?? {} };
  }
  return undefined;
}

/** `_bulk` and `GET /` through the OpenSearch client's transport; the NDJSON body is sent as built. */
export function openSearchTransport(client: Client, pipeline?: string): BulkTransport {
  const querystring = bulkQuerystring(pipeline);
  return {
    async bulk(body: Buffer) {
      try {
        const res = await client.transport.request(
          { method: 'POST', path: '/_bulk', bulkBody: body, querystring },
          { maxRetries: 0 },
        );
        return { status: res.statusCode ?? 200, body: res.body };
      } catch (err) {
        const res = responseOf(err);
        if (res !== undefined) return res;
        throw err;
      }
    },
    async identify() {
      const url = client.connectionPool.connections[0]?.url.origin ?? '(no node)';
      try {
        const res = await client.transport.request({ method: 'GET', path: '/' }, { maxRetries: 0 });
        return {
          url: res.meta.connection?.url.origin ?? url,
          response: { status: res.statusCode ?? 200, headers: res.headers ?? {}, body: res.body },
        };
      } catch (err) {
        const res = responseOf(err);
        if (res !== undefined) return { url, response: res as never };
        return {
          url,
          response: { status: undefined, headers: {}, body: undefined, error: errorMessage(err) },
        };
      }
    },
    close: () => client.close(),
  };
}

/** Index templates through the OpenSearch client (data streams are part of OpenSearch's core). */
export function openSearchTemplateApi(client: Client): TemplateApi {
  return {
    async hasDataStreams() {
      try {
        const res = await client.transport.request(
          { method: 'GET', path: '/_data_stream' },
          { maxRetries: 0 },
        );
        return (res.statusCode ?? 0) < 300;
      } catch {
        return false;
      }
    },
    async putIndexTemplate(name, body) {
      await client.transport.request(
        { method: 'PUT', path: `/_index_template/${encodeURIComponent(name)}`, body },
        { maxRetries: 0 },
      );
    },
  };
}
