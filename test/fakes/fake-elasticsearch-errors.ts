// Error bodies in the exact shapes Elasticsearch 8.19 returns. Each shape was captured from a real 8.19.21 node
// (scripts/es-test-server.sh) so code under test parses what production will send, not what we imagine.

export interface EsCause {
  type: string;
  reason: string | null;
  caused_by?: EsCause;
  [extra: string]: unknown;
}

export interface EsErrorBody {
  error: EsCause & { root_cause: EsCause[] };
  status: number;
}

// Whole-request error: `root_cause` repeats the top cause without its `caused_by`, as Elasticsearch does.
export function requestError(status: number, cause: EsCause): EsErrorBody {
  const { caused_by: _ignored, ...root } = cause;
  return { error: { root_cause: [root], ...cause }, status };
}

export function illegalArgument(reason: string): EsErrorBody {
  return requestError(400, { type: 'illegal_argument_exception', reason });
}

export function indexNotFound(index: string): EsErrorBody {
  return requestError(404, {
    type: 'index_not_found_exception',
    reason: `no such index [${index}]`,
    'resource.type': 'index_or_alias',
    'resource.id': index,
    index_uuid: '_na_',
    index,
  });
}

export function mediaTypeError(reason: string): EsErrorBody {
  return requestError(400, {
    type: 'media_type_header_exception',
    reason: 'Invalid media-type value on headers [Content-Type, Accept]',
    caused_by: { type: 'status_exception', reason },
  });
}

const WRITE_POOL =
  'EsThreadPoolExecutor[name = fake-node/write, queue capacity = 10000, task execution EWMA = 1.2ms, ' +
  'total task execution time = 1.2s, org.elasticsearch.common.util.concurrent.' +
  'TaskExecutionTimeTrackingEsThreadPoolExecutor@1b2c3d4e[Running, pool size = 2, active threads = 2, ' +
  'queued tasks = 10000, completed tasks = 4242]]';

// The body of a whole-request fault with a given status. 502 and 504 are what a proxy in front of Elasticsearch
// answers, so they come back as plain text (and without the product header, see fake-elasticsearch.ts).
export function statusFaultBody(
  status: number,
  path: string,
): { body: unknown; headers: Record<string, string | string[]> } {
  switch (status) {
    case 429:
      // The write pool's queue is full at the coordinating node, so the whole bulk is refused before it is split
      // per shard. A real 8.19 node with a tiny thread_pool.write.queue_size answered most concurrent bulks this
      // way, and only some with per-item 429s.
      return {
        headers: {},
        body: requestError(429, {
          type: 'es_rejected_execution_exception',
          reason:
            'rejected execution of TimedRunnable{original=org.elasticsearch.action.bulk.TransportAbstractBulkAction$2/' +
            "org.elasticsearch.tasks.TaskManager$1{Task{id=61, type='transport', action='indices:data/write/bulk', " +
            `description='requests[30]', parentTask=unset, headers={}}}} on ${WRITE_POOL}`,
        }),
      };
    case 503:
      return {
        headers: {},
        body: requestError(503, {
          type: 'cluster_block_exception',
          reason: 'blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];',
        }),
      };
    case 401: {
      const challenges = ['Basic realm="security", charset="UTF-8"', 'ApiKey'];
      return {
        headers: { 'www-authenticate': challenges },
        body: requestError(401, {
          type: 'security_exception',
          reason: `missing authentication credentials for REST request [${path}]`,
          header: { 'WWW-Authenticate': challenges },
        }),
      };
    }
    case 403:
      return {
        headers: {},
        body: requestError(403, {
          type: 'security_exception',
          reason:
            'action [indices:data/write/bulk] is unauthorized for user [logferry] with effective roles ' +
            '[viewer], this action is granted by the index privileges [create_doc,create,index,write,all]',
        }),
      };
    case 502:
    case 504:
      return {
        headers: { 'content-type': 'text/plain' },
        body: `${status} from the proxy in front of Elasticsearch`,
      };
    default:
      return {
        headers: {},
        body: requestError(status, {
          type: 'exception',
          reason: `fake-elasticsearch injected status ${status}`,
        }),
      };
  }
}

// Per-item rejection bodies, as found inside a 200 bulk response.
export function itemFaultError(status: number, index: string, ops: number): EsCause {
  if (status === 429) {
    return {
      type: 'es_rejected_execution_exception',
      reason:
        'rejected execution of TimedRunnable{original=org.elasticsearch.action.support.replication.' +
        'TransportWriteAction$1/WrappedActionListener{org.elasticsearch.action.support.replication.' +
        `ReplicationOperation$$Lambda$5245/0x0000000100b93728@66090f82}} on ${WRITE_POOL}`,
    };
  }
  if (status === 503) {
    return {
      type: 'unavailable_shards_exception',
      reason:
        `[${index}][0] primary shard is not active Timeout: [1m], request: ` +
        `[BulkShardRequest [[${index}][0]] containing [${ops}] requests]`,
    };
  }
  return { type: 'exception', reason: `fake-elasticsearch injected item status ${status}` };
}
