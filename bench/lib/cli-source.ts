// The CLI from src/ instead of dist/ (`node bench/run.ts --source`): Node strips the types on load.
// For development only: the measured process then also loads Node's TypeScript stripper (amaro),
// ~60 ms of CPU and ~17 MiB of peak RSS more than the built CLI.
import { main } from '../../src/cli/main.ts';

process.exitCode = await main(process.argv.slice(2));
