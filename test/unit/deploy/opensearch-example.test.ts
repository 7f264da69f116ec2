// examples/k8s/config-opensearch.yaml: the OpenSearch variant of k8s/config.yaml must load as the agent loads it
// and build an OpenSearch output, as must its commented Amazon OpenSearch Service variant.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { outputConfig } from '../../../src/cli/output-flags.ts';
import { validateFile } from '../../../src/config/load.ts';

const FILE = new URL('../../../examples/k8s/config-opensearch.yaml', import.meta.url);
const text = readFileSync(FILE, 'utf8');

function output(doc: Record<string, unknown>) {
  const values = validateFile(doc, 'config-opensearch.yaml');
  const o = doc.output as Record<string, unknown>;
  process.env.LOGFERRY_ES_PASSWORD = 'from-the-secret';
  try {
    return {
      values,
      config: outputConfig(
        {
          output: values.get('output.type') as string,
          os: (values.get('output.os') as string[] | undefined)?.join(','),
          index: values.get('output.index') as string,
          'es-user': o.user as string | undefined,
          'os-aws-region': o.awsRegion as string | undefined,
          'os-aws-service': o.awsService as string | undefined,
          'manage-templates': o.manageTemplates as boolean,
        },
        'x',
        'node-1',
      ),
    };
  } finally {
    delete process.env.LOGFERRY_ES_PASSWORD;
  }
}

describe('examples/k8s/config-opensearch.yaml', () => {
  it('is valid agent config and selects the OpenSearch output with basic auth and templates', () => {
    const { values, config } = output(parseYaml(text) as Record<string, unknown>);
    expect(values.get('output.type')).toBe('opensearch');
    expect(config?.kind).toBe('opensearch');
    expect(config?.connection).toMatchObject({
      nodes: ['https://opensearch.logging.svc:9200'],
      username: 'logferry',
    });
    expect(config?.manageTemplates).toBe(true);
  });

  it('its commented Amazon OpenSearch Service lines, uncommented, sign with SigV4', () => {
    const doc = parseYaml(text) as { output: Record<string, unknown> };
    const commented = text
      .split('\n')
      .filter((l) => /^ {2}# {3}(os|awsRegion|awsService):/.test(l))
      .map((l) => l.replace(/^ {2}# {3}/, '').replace(/ +#.*$/, ''));
    expect(commented).toHaveLength(3);
    const aws = parseYaml(commented.join('\n')) as Record<string, unknown>;
    const { user: _user, caFile: _ca, ...rest } = doc.output;
    const { config } = output({ ...doc, output: { ...rest, ...aws } });
    expect(config?.connection.aws).toEqual({ region: 'eu-west-1', service: 'es' });
    expect(config?.connection.nodes).toEqual(['https://search-logs-abc123.eu-west-1.es.amazonaws.com']);
  });
});
