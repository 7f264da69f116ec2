// The runtime settings the agent gives itself: V8's heap limit follows the buffer budget, a small
// young generation, and glibc malloc settings that return freed Buffer memory to the system. They
// used to come only from the image's NODE_OPTIONS and ENV, so `logferry agent` run any other way
// got Node's defaults (3x the memory in a flood) and a budget changed in the config file needed a
// matching NODE_OPTIONS. bin/logferry.js asks for this plan and, when it adds anything, replaces
// the process (execve: same pid, same signals) with one started with it. docs/deploy.md "Sizing".

const MiB = 1024 * 1024;

/** Set in the environment of the re-executed agent (`applied`); any other value turns the re-exec off. */
export const RUNTIME_ENV = 'LOGFERRY_RUNTIME';

/** glibc malloc (see the Dockerfile's comment): large freed Buffers go back to the system. */
export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '65536',
  MALLOC_TRIM_THRESHOLD_: '1048576',
  MALLOC_ARENA_MAX: '2',
};

/** Young generation semi-space, MiB: records are short-lived (docs/PERFORMANCE.md, "Heap settings"). */
export const SEMI_SPACE_MB = 2;

/** V8 old space for a buffer budget: 3 x budget + 64 MiB (docs/deploy.md, "Sizing"). */
export function oldSpaceMb(budgetBytes: number): number {
  return Math.ceil((3 * budgetBytes) / MiB) + 64;
}

export interface RuntimeNow {
  /** process.execArgv */
  execArgv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
}

export interface RuntimePlan {
  /** node flags to add after the current ones */
  execArgv: string[];
  /** variables to add to the environment */
  env: Record<string, string>;
}

/** Whether a V8 flag (either spelling, `--a-b` or `--a_b`) is already given on the command line or NODE_OPTIONS. */
function hasFlag(now: RuntimeNow, name: string): boolean {
  const words = [...now.execArgv, ...(now.env.NODE_OPTIONS ?? '').split(/\s+/)];
  const norm = (w: string) => w.replace(/_/g, '-').split('=')[0];
  return words.some((w) => norm(w) === name);
}

/**
 * What to add to run the agent with a budget of `budgetBytes`; undefined when nothing is missing
 * (or the re-exec is turned off, or has happened). What the user set wins, flag by flag.
 */
export function runtimePlan(budgetBytes: number, now: RuntimeNow): RuntimePlan | undefined {
  if (now.env[RUNTIME_ENV] !== undefined) return undefined;
  const execArgv: string[] = [];
  if (!hasFlag(now, '--max-old-space-size')) execArgv.push(`--max-old-space-size=${oldSpaceMb(budgetBytes)}`);
  if (!hasFlag(now, '--max-semi-space-size')) execArgv.push(`--max-semi-space-size=${SEMI_SPACE_MB}`);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(MALLOC_ENV)) if (now.env[k] === undefined) env[k] = v;
  if (execArgv.length === 0 && Object.keys(env).length === 0) return undefined;
  return { execArgv, env: { ...env, [RUNTIME_ENV]: 'applied' } };
}

/**
 * The plan for a command line (`agent ...`), or undefined: other commands, a platform without
 * execve, or a command line the agent will refuse anyway (it reports that itself, once).
 */
export async function planFor(argv: readonly string[], now: RuntimeNow): Promise<RuntimePlan | undefined> {
  if (argv[0] !== 'agent' || typeof process.execve !== 'function' || now.env[RUNTIME_ENV] !== undefined) {
    return undefined;
  }
  const { loadAgentConfig } = await import('../config/load.ts');
  let budget: number;
  try {
    const loaded = loadAgentConfig(argv.slice(1), now.env as NodeJS.ProcessEnv);
    if (loaded === 'help') return undefined;
    budget = loaded.values.get('maxBufferBytes') as number;
  } catch {
    return undefined;
  }
  return runtimePlan(budget, now);
}
