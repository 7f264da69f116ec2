import { ClusterConnectionPool, type Connection, type ConnectionPoolOptions } from '@elastic/elasticsearch';
import type { Logger } from '../../telemetry/logger.ts';

/** What the node watcher counts, for the metrics (read at scrape time). */
export interface NodeCounters {
  /** times a node went from answering to failing */
  readonly failures: number;
  /** times a failed node answered again */
  readonly recoveries: number;
  /** nodes failed now */
  readonly down: number;
}

/** A failed node is tried again (a HEAD / in the background) this long after each failure. */
export const RESURRECT_MS = 10_000;

/**
 * Follows the health of each Elasticsearch node as the client's connection pool sees it: a node is
 * failed when a request to it gets a connection error or a 502/503/504 (the pool then takes it out
 * and sends requests to the other nodes), and recovered when a request or the pool's ping answers
 * again. Each failure and each recovery is logged once, however many requests fail in between.
 *
 * With one URL there is nowhere else to send: the output's own message ("cannot reach
 * Elasticsearch", once) already says it, so the watcher only counts.
 */
export class NodeWatcher implements NodeCounters {
  failures = 0;
  recoveries = 0;
  readonly #down = new Set<string>();
  readonly #log: Logger;
  readonly #nodeCount: number;
  readonly resurrectMs: number;

  constructor(log: Logger, nodeCount: number, resurrectMs = RESURRECT_MS) {
    this.#log = log;
    this.#nodeCount = nodeCount;
    this.resurrectMs = resurrectMs;
  }

  get down(): number {
    return this.#down.size;
  }

  failed(node: string): void {
    if (this.#down.has(node)) return;
    this.#down.add(node);
    this.failures++;
    if (this.#nodeCount > 1) {
      const others = this.#nodeCount - this.#down.size;
      this.#log.warn(
        `output: Elasticsearch node ${node} failed (connection error or HTTP 502/503/504); ` +
          `${others === 0 ? 'no node answers, requests are retried with backoff' : `requests go to the ${others} other node(s)`}, ` +
          `and it is tried again every ${Math.round(this.resurrectMs / 1000)} s`,
        { node, nodesDown: this.#down.size },
      );
    }
  }

  answered(node: string): void {
    if (!this.#down.delete(node)) return;
    this.recoveries++;
    if (this.#nodeCount > 1) {
      this.#log.info(`output: Elasticsearch node ${node} answers again`, {
        node,
        nodesDown: this.#down.size,
      });
    }
  }
}

/** A node's name in logs and metrics: scheme, host and port, never credentials or a path. */
export function nodeName(connection: Pick<Connection, 'url'>): string {
  return `${connection.url.protocol}//${connection.url.host}`;
}

/**
 * The client's connection pool class for a list of URLs: the transport's ClusterConnectionPool
 * (round robin over the nodes that answer, failed nodes out until they are tried again), telling
 * `watcher` of each change. The client's default, WeightedConnectionPool, was tried first: it only
 * lowers a failed node's weight, and with the others healthy a failed node was never picked again,
 * so a restarted node was never used nor its recovery seen (the three-node test failed on it).
 * The retry delay is flat (`resurrectTimeoutCutoff` 0): the pool's default doubles it after every
 * failed ping, up to 32 minutes, so a node that took a minute to restart stayed out for many more.
 */
export function watchedConnectionPool(watcher: NodeWatcher): typeof ClusterConnectionPool {
  return class WatchedConnectionPool extends ClusterConnectionPool {
    constructor(opts: ConnectionPoolOptions) {
      super(opts);
      this.resurrectTimeout = watcher.resurrectMs;
      this.resurrectTimeoutCutoff = 0;
    }

    override markDead(connection: Connection): this {
      super.markDead(connection);
      watcher.failed(nodeName(connection));
      return this;
    }

    override markAlive(connection: Connection): this {
      super.markAlive(connection);
      watcher.answered(nodeName(connection));
      return this;
    }
  };
}
