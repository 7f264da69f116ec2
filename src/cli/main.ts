import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.ts';
import { runTail } from './tail.ts';

export const USAGE = `Usage: logferry <command> [options]

Commands:
  tail [options] <path|glob>...   follow log files and print (or ship) one JSON document per record

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
      case 'tail':
        return await runTail(rest);
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
      process.stderr.write(`logferry: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`logferry: error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}
