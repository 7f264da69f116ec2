import type { Client } from '@elastic/elasticsearch';
import { errorMessage } from '../../errors.ts';
import type { RootResponse } from '../server-kind.ts';

/**
 * `GET /` through the client's own connections (so with its TLS settings and credentials) but not
 * through its transport: the transport's product check throws away the body of a server that is not
 * Elasticsearch, and that body is what names it ("OpenSearch 2.19.6"). Nodes are asked in turn until
 * one answers.
 */
export function elasticsearchIdentify(
  client: Client,
  timeoutMs: number,
): () => Promise<{ url: string; response: RootResponse }> {
  return async () => {
    const connections = client.connectionPool.connections;
    let last: { url: string; response: RootResponse } = {
      url: '(no node)',
      response: { status: undefined, headers: {}, body: undefined, error: 'no node configured' },
    };
    for (const conn of connections) {
      const url = conn.url.origin;
      try {
        const res = await conn.request(
          { method: 'GET', path: '/', headers: { accept: 'application/json' } },
          { requestId: 0, name: 'logferry-server-check', context: null, timeout: timeoutMs },
        );
        return { url, response: { status: res.statusCode, headers: res.headers ?? {}, body: res.body } };
      } catch (err) {
        last = {
          url,
          response: { status: undefined, headers: {}, body: undefined, error: errorMessage(err) },
        };
      }
    }
    return last;
  };
}
