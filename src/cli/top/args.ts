import { parseArgs } from 'node:util';
import { AGENT_OPTIONS, envName } from '../../config/options.ts';
import { UsageError } from '../../errors.ts';
import { parseListenAddress } from '../../server/address.ts';
import { argvError } from '../values.ts';

const HTTP_ADDR = AGENT_OPTIONS.find((o) => o.key === 'http.addr')!;

export const TOP_USAGE = `Usage: logferry top [--http ADDR] [--once]

A running agent's live view, refreshed every second: lines and bytes in and out, the output's
state and last error, the buffer against its budget, documents in the output, retries and dead
letters per minute, and the files with the most lag. q or Ctrl-C quits.

Options:
  --http <addr>   the agent's server: host:port, [ipv6]:port, :port or an http(s):// URL
                  (default: LOGFERRY_HTTP_ADDR, else the agent's default listen address, ${HTTP_ADDR.default};
                  a wildcard address means this machine, 127.0.0.1 or [::1])
  --once          print one plain table (rates over one second) and exit, for scripts and kubectl exec
  -h, --help      show this help

Exit codes: 0 done, 1 the agent cannot be reached or did not answer as one, 2 bad flags.
`;

export interface TopArgs {
  /** base URL of the agent's server, without a trailing slash */
  url: string;
  once: boolean;
}

/** The agent's listen address (what `--http-addr` and LOGFERRY_HTTP_ADDR take), as a URL to connect to. */
export function agentUrl(addr: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(addr)) {
    let url: URL;
    try {
      url = new URL(addr);
    } catch {
      throw new UsageError(`top: --http '${addr}' is not a URL; expected e.g. http://127.0.0.1:2020`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UsageError(`top: --http '${addr}': only http:// and https:// URLs are served by the agent`);
    }
    return url.href.replace(/\/+$/, '');
  }
  let host: string;
  let port: number;
  try {
    ({ host, port } = parseListenAddress(addr));
  } catch (err) {
    throw new UsageError(`top: --http: ${(err as Error).message}`);
  }
  if (port === 0) throw new UsageError(`top: --http '${addr}': port 0 is not an address an agent listens on`);
  // the agent listens on every interface by default; connecting to the wildcard means this machine
  if (host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function parseTopArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): TopArgs | 'help' {
  let parsed: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        http: { type: 'string' },
        once: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  }
  try {
    parsed = parse();
  } catch (err) {
    throw argvError(err, 'top');
  }
  const { values } = parsed;
  if (values.help) return 'help';
  // In the agent's container (kubectl exec) the agent's own environment says where it listens.
  const fromEnv = env[envName(HTTP_ADDR)!];
  const addr = values.http ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : String(HTTP_ADDR.default));
  return { url: agentUrl(addr), once: values.once };
}
