import { AGENT_OPTIONS, envName } from './options.ts';

function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

function showDefault(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'object' && v !== null) return `\`${JSON.stringify(v)}\``;
  return `\`${String(v)}\``;
}

/** docs/configuration.md, generated from the option table (test/unit/config keeps the file in sync). */
export function renderConfigReference(): string {
  const out = [
    '# Configuration reference',
    '',
    '<!-- generated from src/config/options.ts by `npm run docs`; do not edit by hand -->',
    '',
    '`logferry agent` reads, in increasing precedence: the defaults below, the YAML file given with',
    '`--config`, `LOGFERRY_*` environment variables, and flags. Keys with a dot are nested in the',
    'file (`output.batchDocs` is `batchDocs:` under `output:`). An unknown key or a bad value stops the',
    'agent with exit code 2 and one line per problem naming the key, the value and what was expected;',
    '`logferry check-config FILE` checks a file without running. Sizes take `KiB`, `MiB`, `GiB`;',
    'lists are YAML lists in the file and comma-separated in flags and environment variables.',
    'Options marked "reload" take effect on SIGHUP; others need a restart (SIGHUP says so).',
    '',
    '| key | flag | environment | type | default | description |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const s of AGENT_OPTIONS) {
    const flag = s.flag === undefined ? '' : s.type === 'bool' ? `\`--[no-]${s.flag}\`` : `\`--${s.flag}\``;
    const type =
      s.type === 'enum'
        ? s.choices!.join(' \\| ')
        : s.type === 'structured'
          ? cell(`\`${s.shape}\``)
          : s.type;
    const desc = `${cell(s.description)}${s.reloadable ? ' (reload)' : ''}`;
    out.push(
      `| \`${s.key}\` | ${flag} | \`${envName(s) ?? ''}\` | ${type} | ${showDefault(s.default)} | ${desc} |`,
    );
  }
  out.push('');
  return out.join('\n');
}
