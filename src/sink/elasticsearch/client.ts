import { Client, errors } from '@elastic/elasticsearch';
import { bulkQuerystring, tlsOptions } from '../connection.ts';
import { type NodeWatcher, watchedConnectionPool } from './node-watcher.ts';
import type { BulkTransport } from './sink.ts';

export interface ConnectionOptions {
  /** one or more base URLs; the client spreads requests over them and skips dead ones */
  nodes: string[];
  cloudId?: string | undefined;
  apiKey?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  bearerToken?: string | undefined;
  caFile?: string | undefined;
  insecure?: boolean | undefined;
  compression: boolean;
  requestTimeoutMs: number;
  pipeline?: string | undefined;
}

/**
 * The official client over `opts.nodes`. With `watcher`, node failures and recoveries are followed
 * (see node-watcher.ts); an Elastic Cloud id keeps the client's own pool (one endpoint).
 */
export function createClient(opts: ConnectionOptions, watcher?: NodeWatcher): Client {
  const auth =
    opts.apiKey !== undefined
      ? { apiKey: opts.apiKey }
      : opts.bearerToken !== undefined
        ? { bearer: opts.bearerToken }
        : opts.username !== undefined
          ? { username: opts.username, password: opts.password ?? '' }
          : undefined;
  const tls = tlsOptions(opts);
  return new Client({
    ...(opts.cloudId !== undefined ? { cloud: { id: opts.cloudId } } : { nodes: opts.nodes }),
    ...(auth !== undefined ? { auth } : {}),
    ...(tls !== undefined ? { tls } : {}),
    compression: opts.compression,
    requestTimeout: opts.requestTimeoutMs,
    // logferry retries itself, per item, with backoff, without giving up. The client only moves a
    // request that got a connection error or a 502/503/504 on to the next node, at most once per
    // other node, so one dead node neither stalls a bulk nor makes the output 'retrying'; what the
    // dead node may have stored of it answers 409 'already stored' on the next node. One URL: no
    // client retry at all.
    maxRetries: Math.max(0, opts.nodes.length - 1),
    ...(opts.cloudId === undefined && watcher !== undefined
      ? {
          ConnectionPool: watchedConnectionPool(watcher),
          // a failed node gets a HEAD / in the background (any status but 502/503/504 revives it,
          // also the 405 of the integ-test distribution) rather than a bulk body sent to find out
          resurrectStrategy: 'ping' as const,
        }
      : // a failed node is retried soon rather than after the default minute
        { resurrectStrategy: 'optimistic' as const }),
    // The default ('replace') deep-copies the whole request, bulk body included, for every error
    // answer: under a 429 storm that took seconds of CPU and gigabytes of memory (bench storm429).
    // 'remove' drops headers (credentials) and connection details without copying anything.
    redaction: { type: 'remove' },
  });
}

/** `_bulk` through the official client's transport: the NDJSON body is sent as built, no re-serialization. */
export function clientTransport(client: Client, pipeline?: string): BulkTransport {
  const querystring = bulkQuerystring(pipeline);
  return {
    async bulk(body: Buffer) {
      try {
        const res = await client.transport.request(
          { method: 'POST', path: '/_bulk', bulkBody: body, querystring },
          { meta: true },
        );
        return { status: res.statusCode ?? 200, body: res.body };
      } catch (err) {
        if (err instanceof errors.ResponseError && typeof err.meta.statusCode === 'number') {
          return { status: err.meta.statusCode, body: err.meta.body };
        }
        throw err;
      }
    },
    close: () => client.close(),
  };
}
