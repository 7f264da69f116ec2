// The contract suite and the client-version decision against a real Elasticsearch. It needs a running node, which
// takes a JVM and 10-60 s to start, so it runs only when LOGFERRY_TEST_ES_URL names one (scripts/es-test-server.sh
// start prints it); without it the suite is skipped rather than failed, so `vitest run` works on a machine without
// Java. `npm test` in .ci/run runs it against 8.19, `npm run test:es9` against 9.x (LOGFERRY_TEST_ES_MAJOR says
// which major the run expects, so a 9 run that reached an 8 node fails instead of passing as 8).

import { randomBytes } from 'node:crypto';
import { Client, errors } from '@elastic/elasticsearch';
import { Client as Client9, errors as errors9 } from 'elasticsearch-client-9';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientTransport, createClient } from '../../src/sink/elasticsearch/client.ts';
import {
  elasticsearchTemplateApi,
  installTemplates,
  templateName,
} from '../../src/sink/elasticsearch/templates.ts';
import type { Logger } from '../../src/telemetry/logger.ts';
import { describeElasticsearchContract } from '../fakes/elasticsearch-contract.ts';

const url = process.env.LOGFERRY_TEST_ES_URL;
const wantMajor = process.env.LOGFERRY_TEST_ES_MAJOR;

interface NodeFacts {
  version: string;
  major: number;
  /** the data-streams module is there (a full distribution); the integ-test zip has none */
  dataStreams: boolean;
}

// Read before the suites are declared, so each test's name says which behaviour this node exercises.
async function probe(base: string): Promise<NodeFacts> {
  const nodes = (await (await fetch(`${base}/_nodes/_local/http`)).json()) as {
    nodes: Record<string, { version: string }>;
  };
  const version = Object.values(nodes.nodes)[0]!.version;
  const ds = await fetch(`${base}/_data_stream`);
  await ds.arrayBuffer();
  return { version, major: Number(version.split('.')[0]), dataStreams: ds.status < 300 };
}

const facts = url === undefined ? undefined : await probe(url);
const major = facts?.major ?? 0;
const distribution = facts?.dataStreams
  ? 'full distribution (data streams)'
  : 'integ-test distribution (no data streams)';

describe.skipIf(!url)(`real Elasticsearch ${facts?.version ?? ''} at LOGFERRY_TEST_ES_URL`, () => {
  let client: Client;
  const prefix = `logs-logferry-infra-${randomBytes(3).toString('hex')}`;
  const silent: Logger = { info: () => {}, warn: () => {}, error: () => {} };

  beforeAll(() => {
    client = new Client({ node: url!, maxRetries: 0 });
  });

  afterAll(async () => {
    if (client === undefined) return;
    await client.indices.delete({ index: `${prefix}*`, ignore_unavailable: true }).catch(() => undefined);
    await client.indices.deleteDataStream({ name: `${prefix}*` }).catch(() => undefined);
    await client.close();
  });

  it(`runs Elasticsearch ${wantMajor ?? '8 or 9'}.x`, async () => {
    // The integ-test-zip from Maven Central has no rest-root module, so GET / answers 405 there; a full
    // distribution answers info. Either way the node's version is readable from the nodes API.
    const info = await client.info().catch((e: unknown) => e);
    if (info instanceof errors.ResponseError) {
      expect(info.statusCode).toBe(405);
    } else {
      expect((info as { version: { number: string } }).version.number).toBe(facts!.version);
    }
    if (wantMajor !== undefined) expect(major).toBe(Number(wantMajor));
    else expect([8, 9]).toContain(major);
  });

  // The decision (README, "Elasticsearch output"): logferry ships with client 8.x, for both majors.
  it(`client 8.x, as logferry builds it, ships to ${major}.x`, async () => {
    const transport = clientTransport(
      createClient({ nodes: [url!], compression: true, requestTimeoutMs: 30_000 }),
    );
    try {
      const index = `${prefix}-client8`;
      const body = Buffer.from(
        `{"create":{"_index":"${index}","_id":"a"}}\n{"@timestamp":"2026-12-07T00:00:00Z","message":"m"}\n`,
      );
      const first = await transport.bulk(body);
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ errors: false, items: [{ create: { status: 201 } }] });
      // a re-send is "already stored"
      const again = await transport.bulk(body);
      expect(again.body).toMatchObject({ errors: true, items: [{ create: { status: 409 } }] });
    } finally {
      await transport.close();
    }
  });

  // Why not client 9.x: its compatible-with=9 headers are refused by every 8.x node.
  it(
    major >= 9
      ? 'client 9.x ships to 9.x as well (not used: it would refuse 8.x)'
      : 'client 9.x is refused by 8.x (400 media_type_header_exception)',
    async () => {
      const c9 = new Client9({ node: url!, maxRetries: 0 });
      try {
        const res = await c9
          .bulk({
            operations: [{ create: { _index: `${prefix}-client9`, _id: 'a' } }, { message: 'm' }],
          })
          .catch((e: unknown) => e);
        if (major >= 9) {
          expect(res).toMatchObject({ errors: false });
        } else {
          expect(res).toBeInstanceOf(errors9.ResponseError);
          const err = res as InstanceType<typeof errors9.ResponseError>;
          expect(err.statusCode).toBe(400);
          expect(JSON.stringify(err.body)).toContain('media_type_header_exception');
        }
      } finally {
        await c9.close();
      }
    },
  );

  // What the agent asks at start is GET /_data_stream and PUT _index_template (--manage-templates); it never
  // needs GET / (405 here) nor a version or licence check: the client's product check reads the
  // x-elastic-product header every response carries.
  it(`${distribution}: the managed template ${facts?.dataStreams ? 'makes' : 'falls back from'} a data stream`, async () => {
    const index = `${prefix}-tpl`;
    const lines: string[] = [];
    const log: Logger = { ...silent, info: (m) => lines.push(m), warn: (m) => lines.push(`warn ${m}`) };
    await installTemplates(elasticsearchTemplateApi(client), [index], log);
    expect(lines).toEqual([
      `installed index template ${templateName(index)} for ${index}${facts!.dataStreams ? ' (data stream)' : ''}`,
    ]);
    const tpl = await client.indices.getIndexTemplate({ name: templateName(index) });
    expect(tpl.index_templates[0]!.index_template.data_stream !== undefined).toBe(facts!.dataStreams);
    const res = await client.bulk({
      refresh: true,
      operations: [
        { create: { _index: index, _id: 'x' } },
        { '@timestamp': '2026-12-07T00:00:00Z', message: 'm' },
      ],
    });
    expect(res.errors).toBe(false);
    const resolved = await client.indices.resolveIndex({ name: index });
    if (facts!.dataStreams) expect(resolved.data_streams.map((d) => d.name)).toEqual([index]);
    else expect(resolved.indices.map((i) => i.name)).toEqual([index]);
    // the template's mappings applied either way
    const mapping = await client.indices.getMapping({ index });
    const props = Object.values(mapping)[0]!.mappings.properties!;
    expect(props['@timestamp']).toMatchObject({ type: 'date_nanos' });
    await client.indices.deleteIndexTemplate({ name: templateName(index) });
  });

  describeElasticsearchContract('real', () => ({ url: url!, major }));
});
