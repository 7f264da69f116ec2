/** What to do with one bulk item, from its status. */
export type ItemOutcome = 'ok' | 'duplicate' | 'retry' | 'dead-letter';

/**
 * Per-item classification. 409 on `create` is a document already stored (a re-send): success.
 * 429 and 5xx are transient: retry that item only. Other 4xx (mapping and parse errors, 400) are
 * the document's fault: dead-letter it. Matching is on status codes, never on error names.
 */
export function classifyItem(status: number): ItemOutcome {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 409) return 'duplicate';
  if (status === 429 || status >= 500) return 'retry';
  return 'dead-letter';
}

export interface BulkItemResult {
  status: number;
  error?: { type?: string; reason?: string } | undefined;
}

/** Extracts per-item results from a bulk response body (the `create` action's result). */
export function bulkItems(body: unknown, expected: number): BulkItemResult[] | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const items = (body as { items?: unknown }).items;
  if (!Array.isArray(items) || items.length !== expected) return undefined;
  const out: BulkItemResult[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as Record<string, { status?: unknown; error?: unknown }> | null;
    const result = item === null || typeof item !== 'object' ? undefined : (item.create ?? item.index);
    if (result === undefined || typeof result.status !== 'number') return undefined;
    out[i] = { status: result.status, error: result.error as BulkItemResult['error'] };
  }
  return out;
}

/** What to do when the whole request failed. */
export type RequestOutcome = 'retry' | 'split' | 'auth';

/**
 * Whole-request classification: no response, timeouts, 429 and 5xx are retried with backoff; 413
 * (body too large) splits the batch; 401/403 are loud, make the agent not ready, and are retried;
 * 400 on the whole request means the body itself was refused: split down to the document at fault.
 * Anything else unexpected is retried too: giving up would lose data while the process runs.
 */
export function classifyRequest(status: number | undefined): RequestOutcome {
  if (status === undefined) return 'retry';
  if (status === 413) return 'split';
  if (status === 401 || status === 403) return 'auth';
  if (status === 400) return 'split';
  return 'retry';
}
