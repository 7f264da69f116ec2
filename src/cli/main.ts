import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.ts';

export const USAGE = `Usage: logferry <command> [options]

Commands:
  tail [options] <path|glob>...   follow log files and print (or ship) one JSON document per record
  agent [--config FILE] [options] the Kubernetes node agent: /var/log/pods -> pod metadata -> Elasticsearch
  top [--http ADDR] [--once]      a running agent's live view: rates, output state, buffer, lagging files
  check-config FILE               validate an agent config file without running

Run 'logferry <command> --help' for a command's options.
  -h, --help      show this help
  -v, --version   print the version
`;

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** The CLI with argv passed in, so tests drive it without a process. Resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      // commands are loaded on use: the agent's Kubernetes client and server take a while to load,
      // and `tail` should start reading at once
      case 'tail':
        return await (await import('./tail.ts')).runTail(rest);
      case 'agent':
        return await (await import('./agent.ts')).runAgent(rest);
      case 'top':
        return await (await import('./top.ts')).runTop(rest);
      case 'check-config': {
        const { checkConfigFile } = await import('../config/load.ts');
        const [file, ...extra] = rest;
        if (file === undefined || extra.length > 0) throw new UsageError('usage: logferry check-config FILE');
        checkConfigFile(file);
        process.stdout.write(`${file}: ok\n`);
        return 0;
      }
      case '-v':
      case '--version':
        process.stdout.write(`logferry ${version()}\n`);
        return 0;
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}'; run 'logferry --help'`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      // one line per problem (a config file can have several)
      for (const line of err.message.split('\n')) process.stderr.write(`logferry: ${line}\n`);
      return 2;
    }
    process.stderr.write(`logferry: error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}
