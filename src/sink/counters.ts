/** Output-side counters: every record's outcome is counted (the agent mirrors them into prom-client). */
export class SinkCounters {
  /** documents stored (2xx) */
  sent = 0;
  /** documents already stored (409 on create: a re-send) */
  duplicates = 0;
  /** item retries (per-item 429/5xx, and every item of a retried request) */
  retried = 0;
  /** documents written to the dead-letter index */
  deadLettered = 0;
  /** documents that could be neither stored nor dead-lettered (logged loudly each time) */
  dropped = 0;
  /** bulk requests sent, and those that failed as a whole */
  requests = 0;
  requestFailures = 0;
  /** server checks (GET /) that found another kind of server than the output's */
  wrongServer = 0;
  /** request bodies split after 413 / whole-request 400 */
  splits = 0;
  bytesSent = 0;
  /** sum and count of bulk request durations, in seconds */
  requestSeconds = 0;
  inFlight = 0;
  /** called with each bulk request's duration (the agent feeds a histogram with it) */
  observeRequest: ((seconds: number) => void) | undefined;
  /** documents waiting in the output (queued, in flight or waiting to be retried) */
  queued = 0;
}
