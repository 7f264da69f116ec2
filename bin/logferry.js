#!/usr/bin/env node
import { planFor } from '../dist/cli/runtime.js';

const argv = process.argv.slice(2);
// `logferry agent` sets its own heap limit (from the buffer budget) and malloc settings: when any is
// missing it replaces this process with one that has them (same pid). src/cli/runtime.ts.
const plan = await planFor(argv, { execArgv: process.execArgv, env: process.env });
if (plan !== undefined) {
  try {
    process.execve(
      process.execPath,
      [process.execPath, ...process.execArgv, ...plan.execArgv, process.argv[1], ...argv],
      { ...process.env, ...plan.env },
    );
  } catch (err) {
    // not fatal: the agent runs with Node's defaults, as it would have without this step
    process.stderr.write(`logferry: warning: could not re-execute with ${plan.execArgv.join(' ')}: ${err}\n`);
  }
}
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(argv);
