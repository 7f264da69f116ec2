// The contract suite against a real Elasticsearch. It needs a running node, which takes a JVM and ~10 s to
// start, so it runs only when LOGFERRY_TEST_ES_URL names one (scripts/es-test-server.sh start prints it); without
// it the suite is skipped rather than failed, so `vitest run` works on a machine without Java.

import { Client, errors } from '@elastic/elasticsearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeElasticsearchContract } from '../fakes/elasticsearch-contract.ts';

const url = process.env.LOGFERRY_TEST_ES_URL;

describe.skipIf(!url)('real Elasticsearch at LOGFERRY_TEST_ES_URL', () => {
  let client: Client;

  beforeAll(() => {
    client = new Client({ node: url!, maxRetries: 0 });
  });

  afterAll(async () => {
    await client?.close();
  });

  it('runs Elasticsearch 8.x', async () => {
    // The integ-test-zip from Maven Central has no rest-root module, so GET / answers 405 there; a full
    // distribution answers info. Either way the node's version is readable from the nodes API.
    const info = await client.info().catch((e: unknown) => e);
    if (info instanceof errors.ResponseError) {
      expect(info.statusCode).toBe(405);
    } else {
      expect((info as { version: { number: string } }).version.number).toMatch(/^8\./);
    }
    const nodes = await client.nodes.info({ node_id: '_local', metric: 'http' });
    const versions = Object.values(nodes.nodes).map((node) => node.version);
    expect(versions).toHaveLength(1);
    expect(versions[0]).toMatch(/^8\./);
  });

  describeElasticsearchContract('real', () => ({ url: url! }));
});
