import { createHash } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { errorMessage } from '../../errors.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { IndexTemplate } from './encode.ts';

/** The index pattern a name template writes to: every `{...}` becomes `*`. */
export function indexPattern(template: string): string {
  return template.replace(/\{[^}]*\}/g, '*');
}

/**
 * A composable index template for logferry's documents: a data stream where the cluster has data
 * streams (they need `create` and `@timestamp`, which every document has), and mappings that fix the
 * types of logferry's own fields so that the first document of a new index cannot decide them
 * wrongly; the merge key (`json`) is `flattened`; everything else stays dynamic, with strings as
 * keywords (kubernetes.*).
 */
export function templateBody(
  pattern: string,
  dataStream: boolean,
  mergeKey = 'json',
  mergeKeyMapping: Record<string, unknown> = FLATTENED,
): Record<string, unknown> {
  return {
    index_patterns: [pattern],
    priority: 200,
    ...(dataStream ? { data_stream: {} } : {}),
    template: {
      mappings: {
        dynamic_templates: [
          {
            strings_as_keyword: {
              match_mapping_type: 'string',
              mapping: { type: 'keyword', ignore_above: 1024 },
            },
          },
        ],
        properties: {
          '@timestamp': { type: 'date_nanos' },
          message: { type: 'text' },
          stream: { type: 'keyword' },
          log: {
            properties: {
              file: { properties: { path: { type: 'keyword' } } },
              offset: { type: 'long' },
              level: { type: 'keyword', ignore_above: 1024 },
              flags: { type: 'keyword' },
              part: { type: 'integer' },
            },
          },
          host: { properties: { name: { type: 'keyword' } } },
          error: { properties: { type: { type: 'keyword' }, message: { type: 'text' } } },
          [mergeKey]: mergeKeyMapping,
        },
      },
    },
    _meta: { managed_by: 'logferry' },
  };
}

/**
 * Applications disagree on types (`user` an object in one, a string in another): under `flattened`
 * every leaf is a keyword and no document is ever rejected for a conflict. Depth as deep as logferry
 * parses (parse/json-message.ts); longer leaves are kept in _source but not indexed. The cost: no
 * numeric range queries on application fields. (OpenSearch: `flat_object`, sink/opensearch/templates.ts.)
 */
export const FLATTENED: Readonly<Record<string, unknown>> = {
  type: 'flattened',
  depth_limit: 64,
  ignore_above: 1024,
};

/** What installing templates needs from a client: both outputs' clients provide it. */
export interface TemplateApi {
  /** true when the cluster has data streams */
  hasDataStreams(): Promise<boolean>;
  putIndexTemplate(name: string, body: Record<string, unknown>): Promise<void>;
}

/** The Elasticsearch client as a TemplateApi. */
export function elasticsearchTemplateApi(client: Client): TemplateApi {
  return {
    async hasDataStreams() {
      try {
        // the integ-test and some minimal distributions have no data streams module: fall back to indices
        const res = await client.transport.request({ method: 'GET', path: '/_data_stream' }, { meta: true });
        return (res.statusCode ?? 0) < 300;
      } catch {
        return false;
      }
    },
    async putIndexTemplate(name, body) {
      await client.indices.putIndexTemplate({ name, ...(body as object) });
    },
  };
}

export function templateName(pattern: string): string {
  return `logferry-${createHash('sha256').update(pattern).digest('hex').slice(0, 12)}`;
}

/**
 * `--manage-templates`: installs the index templates for the target and the dead-letter index once
 * at start. A failure is logged and shipping goes on: the cluster's own templates (or dynamic
 * mapping) still apply, and a missing permission should not stop logs.
 */
export async function installTemplates(
  api: TemplateApi,
  targets: ReadonlyArray<IndexTemplate | string>,
  log: Logger,
  mergeKey?: string,
  mergeKeyMapping?: Record<string, unknown>,
): Promise<void> {
  const dataStreams = await api.hasDataStreams();
  for (const target of targets) {
    const pattern = indexPattern(typeof target === 'string' ? target : target.source);
    const name = templateName(pattern);
    try {
      await api.putIndexTemplate(name, templateBody(pattern, dataStreams, mergeKey, mergeKeyMapping));
      log.info(`installed index template ${name} for ${pattern}${dataStreams ? ' (data stream)' : ''}`);
    } catch (err) {
      log.warn(
        `could not install index template ${name} for ${pattern}: ${errorMessage(err)}; shipping anyway`,
      );
    }
  }
}
