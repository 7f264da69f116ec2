// What the Elasticsearch and OpenSearch clients are given alike. Kept apart from both client modules
// so that neither output loads the other's client library.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from './elasticsearch/client.ts';

/** TLS settings for a client: the CA file's contents, or no verification; undefined: the defaults. */
export function tlsOptions(
  opts: Pick<ConnectionOptions, 'caFile' | 'insecure'>,
): { ca?: Buffer; rejectUnauthorized?: boolean } | undefined {
  if (opts.caFile === undefined && !opts.insecure) return undefined;
  return {
    ...(opts.caFile !== undefined ? { ca: readFileSync(opts.caFile) } : {}),
    ...(opts.insecure ? { rejectUnauthorized: false } : {}),
  };
}

/** The `_bulk` query: only what classification needs (much smaller responses), and the pipeline. */
export function bulkQuerystring(pipeline: string | undefined): Record<string, string> {
  const querystring: Record<string, string> = {
    filter_path: 'errors,items.*.status,items.*.error.type,items.*.error.reason',
  };
  if (pipeline !== undefined) querystring.pipeline = pipeline;
  return querystring;
}
