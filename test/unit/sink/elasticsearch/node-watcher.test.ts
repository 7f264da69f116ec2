import { describe, expect, it } from 'vitest';
import { NodeWatcher, nodeName } from '../../../../src/sink/elasticsearch/node-watcher.ts';
import type { Logger } from '../../../../src/telemetry/logger.ts';

function recorder() {
  const lines: Array<{ level: string; message: string }> = [];
  const log: Logger = {
    info: (message) => lines.push({ level: 'info', message }),
    warn: (message) => lines.push({ level: 'warn', message }),
    error: (message) => lines.push({ level: 'error', message }),
  };
  return { log, lines };
}

type Event = ['failed' | 'answered', string];

const A = 'http://127.0.0.1:9460';
const B = 'http://127.0.0.1:9461';

describe('NodeWatcher', () => {
  it.each<
    [string, number, Event[], { failures: number; recoveries: number; down: number; logged: string[] }]
  >([
    [
      'a failure repeated by every retry is one failure',
      3,
      [
        ['failed', A],
        ['failed', A],
        ['failed', A],
      ],
      {
        failures: 1,
        recoveries: 0,
        down: 1,
        logged: [`warn ${A} failed`],
      },
    ],
    [
      'failure then recovery, each once',
      3,
      [
        ['failed', A],
        ['failed', A],
        ['answered', A],
        ['answered', A],
      ],
      {
        failures: 1,
        recoveries: 1,
        down: 0,
        logged: [`warn ${A} failed`, `info ${A} answers again`],
      },
    ],
    [
      'a healthy node answering is nothing to log',
      3,
      [
        ['answered', A],
        ['answered', B],
      ],
      {
        failures: 0,
        recoveries: 0,
        down: 0,
        logged: [],
      },
    ],
    [
      'two nodes down, one back',
      3,
      [
        ['failed', A],
        ['failed', B],
        ['answered', B],
      ],
      {
        failures: 2,
        recoveries: 1,
        down: 1,
        logged: [`warn ${A} failed`, `warn ${B} failed`, `info ${B} answers again`],
      },
    ],
    [
      'a node that fails again after recovering is a second failure',
      3,
      [
        ['failed', A],
        ['answered', A],
        ['failed', A],
      ],
      {
        failures: 2,
        recoveries: 1,
        down: 1,
        logged: [`warn ${A} failed`, `info ${A} answers again`, `warn ${A} failed`],
      },
    ],
    // the output's own "cannot reach Elasticsearch" says it once already
    [
      'one URL: counted, not logged',
      1,
      [
        ['failed', A],
        ['answered', A],
      ],
      {
        failures: 1,
        recoveries: 1,
        down: 0,
        logged: [],
      },
    ],
  ])('%s', (_name, nodeCount, events, want) => {
    const { log, lines } = recorder();
    const w = new NodeWatcher(log, nodeCount);
    for (const [kind, node] of events) w[kind](node);
    expect({ failures: w.failures, recoveries: w.recoveries, down: w.down }).toEqual({
      failures: want.failures,
      recoveries: want.recoveries,
      down: want.down,
    });
    expect(
      lines.map(
        (l) =>
          `${l.level} ${/node (\S+)/.exec(l.message)?.[1]} ${l.level === 'warn' ? 'failed' : 'answers again'}`,
      ),
    ).toEqual(want.logged);
  });

  it('says where requests go meanwhile', () => {
    const { log, lines } = recorder();
    const w = new NodeWatcher(log, 3, 10_000);
    w.failed(A);
    w.failed(B);
    w.failed('http://127.0.0.1:9462');
    expect(lines.map((l) => l.message)).toEqual([
      `output: Elasticsearch node ${A} failed (connection error or HTTP 502/503/504); requests go to the 2 other node(s), and it is tried again every 10 s`,
      `output: Elasticsearch node ${B} failed (connection error or HTTP 502/503/504); requests go to the 1 other node(s), and it is tried again every 10 s`,
      'output: Elasticsearch node http://127.0.0.1:9462 failed (connection error or HTTP 502/503/504); no node answers, requests are retried with backoff, and it is tried again every 10 s',
    ]);
  });

  it.each([
    ['http://127.0.0.1:9200/', 'http://127.0.0.1:9200'],
    ['https://elastic:secret@es.example:9243/prefix/', 'https://es.example:9243'],
  ])('names %s as %s (no credentials, no path)', (url, name) => {
    expect(nodeName({ url: new URL(url) })).toBe(name);
  });
});
