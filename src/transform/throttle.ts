// Per-container rate limits (see docs/filters.md): token buckets for lines/s and bytes/s, with two
// actions: drop (records over the limit are counted and replaced by one summary record per chunk)
// or pause (the file's next read waits until the container is back within its limit).

import { z } from 'zod';
import { parseBytes } from '../cli/values.ts';
import { issueProblems, type ParseResult } from './filters.ts';

/** Milliseconds, monotonic enough: a clock that goes back is treated as standing still. */
export type Clock = () => number;

/** Rounding slack, so that a bucket refilled for exactly the computed wait counts as refilled. */
const EPSILON = 1e-9;

export interface TokenBucketOptions {
  /** tokens added per second (> 0) */
  ratePerSec: number;
  /** capacity (> 0); default one second of rate */
  burst?: number | undefined;
  now?: Clock | undefined;
}

/** A token bucket: starts full, refills continuously at `ratePerSec` up to `capacity`. */
export class TokenBucket {
  readonly rate: number;
  readonly capacity: number;
  readonly #now: Clock;
  #tokens: number;
  #last: number;

  constructor(options: TokenBucketOptions) {
    const { ratePerSec, burst = ratePerSec, now = Date.now } = options;
    if (!(ratePerSec > 0 && Number.isFinite(ratePerSec)))
      throw new RangeError(`rate ${ratePerSec} must be > 0`);
    if (!(burst > 0 && Number.isFinite(burst))) throw new RangeError(`burst ${burst} must be > 0`);
    this.rate = ratePerSec;
    this.capacity = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#last = now();
  }

  #refill(): void {
    const t = this.#now();
    if (t > this.#last) {
      this.#tokens = Math.min(this.capacity, this.#tokens + ((t - this.#last) * this.rate) / 1000);
      this.#last = t;
    }
  }

  /** the tokens now: negative while in debt (after `consume`, or an oversized `take`) */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /**
   * Whether `take(n)` would succeed. More than the capacity is allowed when the bucket is full (it
   * then goes into debt), so that a record larger than the burst is not refused forever.
   */
  canTake(n: number): boolean {
    this.#refill();
    return this.#tokens + EPSILON >= Math.min(n, this.capacity);
  }

  /** Takes n tokens when there are enough (see canTake), else takes nothing. */
  take(n: number): boolean {
    if (!this.canTake(n)) return false;
    this.#tokens -= n;
    return true;
  }

  /** Takes n tokens whatever there is; returns the ms until the bucket is back to >= 0 (0 if now). */
  consume(n: number): number {
    this.#refill();
    this.#tokens -= n;
    return this.waitMs();
  }

  /** ms until the bucket is back to >= 0 tokens; 0 when it is */
  waitMs(): number {
    this.#refill();
    if (this.#tokens + EPSILON >= 0) return 0;
    // less the rounding error of the refills, so that 1.000000000000014 ms is 1 ms, not 2
    return Math.max(1, Math.ceil((-this.#tokens * 1000) / this.rate - 1e-6));
  }

  /** whether the bucket is full: it then behaves exactly like a new one */
  isFull(): boolean {
    this.#refill();
    return this.#tokens + EPSILON >= this.capacity;
  }
}

export type ThrottleAction = 'drop' | 'pause';

/** Limits of one container; an absent limit is unlimited. */
export interface ThrottleLimits {
  linesPerSec?: number | undefined;
  bytesPerSec?: number | undefined;
  /** bucket capacity in seconds of rate (default 1) */
  burstSeconds?: number | undefined;
}

export interface ThrottleConfig extends ThrottleLimits {
  action: ThrottleAction;
}

/** Records dropped since the last summary. Offsets are those of the first and last dropped records. */
export interface ThrottleSummary {
  lines: number;
  bytes: number;
  firstOffset?: number | undefined;
  lastOffset?: number | undefined;
}

export interface ContainerThrottleOptions extends ThrottleConfig {
  now?: Clock | undefined;
  /** told of what was throttled: at `summary()` for drop, at `afterChunk()` with a pause for pause */
  onThrottled?: ((action: ThrottleAction, lines: number, bytes: number) => void) | undefined;
}

/** The rate limits of one container: a lines/s and a bytes/s bucket, either optional. */
export class ContainerThrottle {
  readonly action: ThrottleAction;
  readonly limits: Readonly<ThrottleLimits>;
  readonly #lines: TokenBucket | undefined;
  readonly #bytes: TokenBucket | undefined;
  readonly #now: Clock;
  readonly #onThrottled: ContainerThrottleOptions['onThrottled'];
  #droppedLines = 0;
  #droppedBytes = 0;
  #firstOffset: number | undefined;
  #lastOffset: number | undefined;
  /** clock time of the last admit/afterChunk (or creation) */
  lastUsed: number;

  constructor(options: ContainerThrottleOptions) {
    const { linesPerSec, bytesPerSec, burstSeconds = 1, now = Date.now } = options;
    this.action = options.action;
    this.limits = { linesPerSec, bytesPerSec, burstSeconds };
    this.#now = now;
    this.#onThrottled = options.onThrottled;
    this.#lines =
      linesPerSec === undefined
        ? undefined
        : new TokenBucket({ ratePerSec: linesPerSec, burst: linesPerSec * burstSeconds, now });
    this.#bytes =
      bytesPerSec === undefined
        ? undefined
        : new TokenBucket({ ratePerSec: bytesPerSec, burst: bytesPerSec * burstSeconds, now });
    this.lastUsed = now();
  }

  /**
   * Drop mode, per record: whether a record of `bytes` is within both limits (it is then taken from
   * both buckets); a refused record is counted for the next summary. `offset` is the record's, kept
   * for the summary.
   */
  admit(bytes: number, offset?: number): boolean {
    this.lastUsed = this.#now();
    const lines = this.#lines;
    const bytesBucket = this.#bytes;
    if (
      (lines === undefined || lines.canTake(1)) &&
      (bytesBucket === undefined || bytesBucket.canTake(bytes))
    ) {
      lines?.take(1);
      bytesBucket?.take(bytes);
      return true;
    }
    this.#droppedLines++;
    this.#droppedBytes += bytes;
    if (offset !== undefined) {
      this.#firstOffset ??= offset;
      this.#lastOffset = offset;
    }
    return false;
  }

  /** What was dropped since the last call (reset), or undefined when nothing was; reports it. */
  summary(): ThrottleSummary | undefined {
    if (this.#droppedLines === 0) return undefined;
    const summary: ThrottleSummary = {
      lines: this.#droppedLines,
      bytes: this.#droppedBytes,
      firstOffset: this.#firstOffset,
      lastOffset: this.#lastOffset,
    };
    this.#droppedLines = 0;
    this.#droppedBytes = 0;
    this.#firstOffset = undefined;
    this.#lastOffset = undefined;
    this.#onThrottled?.('drop', summary.lines, summary.bytes);
    return summary;
  }

  /**
   * Pause mode, after a chunk was read (and is kept whole): takes its lines and bytes from the
   * buckets and returns how long the file should wait before its next read (0 within the limits).
   * A chunk that leads to a pause is reported as throttled.
   */
  afterChunk(lines: number, bytes: number): number {
    this.lastUsed = this.#now();
    const wait = Math.max(this.#lines?.consume(lines) ?? 0, this.#bytes?.consume(bytes) ?? 0);
    if (wait > 0) this.#onThrottled?.('pause', lines, bytes);
    return wait;
  }

  /** ms until both buckets are out of debt (0 when they are) */
  pauseMs(): number {
    return Math.max(this.#lines?.waitMs() ?? 0, this.#bytes?.waitMs() ?? 0);
  }

  /** Whether forgetting this throttle changes nothing: buckets full and no drops left to report. */
  isSettled(): boolean {
    return this.#droppedLines === 0 && (this.#lines?.isFull() ?? true) && (this.#bytes?.isFull() ?? true);
  }
}

/** What a summary record carries besides its message: the document's `throttled` object. */
export interface ThrottledField {
  action: 'drop';
  lines: number;
  bytes: number;
  first_offset?: number;
  last_offset?: number;
  lines_per_sec?: number;
  bytes_per_sec?: number;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** `100 lines/s, 1048576 bytes/s` */
export function limitsText(limits: ThrottleLimits): string {
  const parts: string[] = [];
  if (limits.linesPerSec !== undefined) parts.push(`${limits.linesPerSec} lines/s`);
  if (limits.bytesPerSec !== undefined) parts.push(`${limits.bytesPerSec} bytes/s`);
  return parts.join(', ');
}

/**
 * The message and `throttled` field of the summary record emitted in place of dropped records:
 * `logferry: throttled 1234 lines (56789 bytes) from this container (limit 100 lines/s)`.
 */
export function throttleSummaryRecord(
  summary: ThrottleSummary,
  limits: ThrottleLimits,
): { message: string; throttled: ThrottledField } {
  const message = `logferry: throttled ${plural(summary.lines, 'line', 'lines')} (${plural(summary.bytes, 'byte', 'bytes')}) from this container (limit ${limitsText(limits)})`;
  const throttled: ThrottledField = { action: 'drop', lines: summary.lines, bytes: summary.bytes };
  if (summary.firstOffset !== undefined) throttled.first_offset = summary.firstOffset;
  if (summary.lastOffset !== undefined) throttled.last_offset = summary.lastOffset;
  if (limits.linesPerSec !== undefined) throttled.lines_per_sec = limits.linesPerSec;
  if (limits.bytesPerSec !== undefined) throttled.bytes_per_sec = limits.bytesPerSec;
  return { message, throttled };
}

/** Metrics of throttling, per namespace (backed by prom-client counters). */
export interface ThrottleEvents {
  throttled(namespace: string, action: ThrottleAction, lines: number, bytes: number): void;
}

export interface ThrottleRegistryOptions {
  now?: Clock | undefined;
  events?: ThrottleEvents | undefined;
  /** a container unused this long is forgotten (default 5 minutes) */
  idleMs?: number | undefined;
  /** at most this many containers; beyond it the least recently used is forgotten (default 10000) */
  maxContainers?: number | undefined;
}

interface Entry {
  throttle: ContainerThrottle;
  /** clock time of the last `get` (or sweep check): the map's order */
  gotAt: number;
}

/**
 * The throttles of all containers, by a key the caller gives (e.g. the container's log directory),
 * all with one config. Memory is bounded: idle containers are forgotten (checked during `get`, at
 * most every idleMs/4), and beyond maxContainers the least recently used one is. Call `get` for
 * every chunk (cheap): it is what marks a container as in use.
 */
export class ThrottleRegistry {
  readonly config: Readonly<ThrottleConfig>;
  readonly #now: Clock;
  readonly #events: ThrottleEvents | undefined;
  readonly #idleMs: number;
  readonly #max: number;
  /** in least recently used first order: `get` moves an entry to the end */
  readonly #entries = new Map<string, Entry>();
  #lastSweep: number;

  constructor(config: ThrottleConfig, options: ThrottleRegistryOptions = {}) {
    this.config = config;
    this.#now = options.now ?? Date.now;
    this.#events = options.events;
    this.#idleMs = options.idleMs ?? 5 * 60_000;
    this.#max = Math.max(1, options.maxContainers ?? 10_000);
    this.#lastSweep = this.#now();
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The container's throttle, created on first use. `namespace` labels its metrics. */
  get(key: string, namespace: string): ContainerThrottle {
    const now = this.#now();
    if (now - this.#lastSweep >= this.#idleMs / 4) this.sweep();
    let entry = this.#entries.get(key);
    if (entry !== undefined) {
      this.#entries.delete(key);
    } else {
      if (this.#entries.size >= this.#max) this.#evict(this.#entries.keys().next().value!);
      const events = this.#events;
      entry = {
        gotAt: now,
        throttle: new ContainerThrottle({
          ...this.config,
          now: this.#now,
          onThrottled:
            events === undefined
              ? undefined
              : (action, lines, bytes) => events.throttled(namespace, action, lines, bytes),
        }),
      };
    }
    entry.gotAt = now;
    entry.throttle.lastUsed = now;
    this.#entries.set(key, entry);
    return entry.throttle;
  }

  /** Forgets a container (its files are gone), reporting drops not yet summarized. */
  forget(key: string): void {
    if (this.#entries.has(key)) this.#evict(key);
  }

  /**
   * Forgets the containers idle for idleMs or more (by their last use, which may be later than
   * their last `get` when the caller kept the reference); returns how many.
   */
  sweep(): number {
    const now = this.#now();
    this.#lastSweep = now;
    let evicted = 0;
    for (const [key, entry] of this.#entries) {
      // entries are in `get` order: from here on, every one was gotten within idleMs
      if (now - entry.gotAt < this.#idleMs) break;
      if (now - entry.throttle.lastUsed >= this.#idleMs) {
        this.#evict(key);
        evicted++;
      } else {
        // in use through a kept reference: checked again in idleMs (seen again by this loop, which stops there)
        this.#entries.delete(key);
        entry.gotAt = now;
        this.#entries.set(key, entry);
      }
    }
    return evicted;
  }

  #evict(key: string): void {
    const entry = this.#entries.get(key);
    this.#entries.delete(key);
    entry?.throttle.summary();
  }
}

// ---------------------------------------------------------------------------------------------
// Config

/** A bytes-per-second value: 1048576, "1MiB" or "1MiB/s"; undefined when not one. */
export function bytesRate(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  try {
    return parseBytes('', v.replace(/\s*\/\s*s\s*$/i, ''));
  } catch {
    return undefined;
  }
}

const positive = (expected: string) =>
  z
    .number({ error: expected })
    .positive({ error: expected })
    .refine(Number.isFinite, { error: expected, abort: true });

/** The config value `throttle:`, strict; at least one of linesPerSec and bytesPerSec; action defaults to pause. */
export const throttleSchema = z
  .strictObject(
    {
      linesPerSec: positive('expected a positive number of lines per second, e.g. 1000').optional(),
      bytesPerSec: z
        .unknown()
        .transform((v, ctx) => {
          const n = bytesRate(v);
          if (n === undefined) {
            ctx.addIssue({
              code: 'custom',
              message: `${JSON.stringify(v) ?? String(v)} is not valid: expected a positive rate in bytes per second, e.g. 1048576, "1MiB" or "512KiB/s"`,
            });
            return z.NEVER;
          }
          return n;
        })
        .optional(),
      burstSeconds: positive('expected a positive number of seconds of rate, e.g. 1 or 2.5').default(1),
      action: z
        .enum(['drop', 'pause'], {
          error:
            'expected drop (lines over the limit are lost, the file keeps up) or pause (nothing lost, the file lags)',
        })
        .default('pause'),
    },
    { error: 'expected a mapping: linesPerSec, bytesPerSec, burstSeconds, action' },
  )
  .superRefine((t, ctx) => {
    if (t.linesPerSec === undefined && t.bytesPerSec === undefined) {
      ctx.addIssue({ code: 'custom', message: 'needs linesPerSec or bytesPerSec (or both)' });
    }
  });

/** Validates the config value `throttle:` (undefined: no throttling); problems one line each. */
export function parseThrottle(input: unknown, root = 'throttle'): ParseResult<ThrottleConfig | undefined> {
  if (input === undefined || input === null) return { ok: true, value: undefined };
  const result = throttleSchema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  const hint = (path: readonly PropertyKey[]) =>
    path.length === 0 ? 'linesPerSec, bytesPerSec, burstSeconds, action' : undefined;
  return { ok: false, problems: issueProblems(result.error.issues, input, root, hint) };
}
