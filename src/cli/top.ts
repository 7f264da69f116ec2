import { setTimeout as delay } from 'node:timers/promises';
import { parseTopArgs, TOP_USAGE } from './top/args.ts';
import { renderView } from './top/render.ts';
import { type AgentSample, AgentUnreachableError, fetchSample } from './top/sample.ts';
import { openScreen } from './top/screen.ts';
import { buildView, type TopView } from './top/view.ts';

/** Rates are over this interval, and the interactive view refreshes this often. */
export const REFRESH_MS = 1000;
/** `--once`: the most lagging files listed */
export const ONCE_MAX_FILES = 20;

export interface TopIo {
  stdout: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

/** Waits `ms`, or less if `signal` aborts (then it resolves too: quitting is not an error). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => {});
}

/** Plain width for `--once`: the terminal's, else COLUMNS, else 120 (a pipe has no width). */
function plainWidth(io: TopIo): number {
  const columns = Number(io.env.COLUMNS);
  return io.stdout.isTTY && io.stdout.columns ? io.stdout.columns : columns > 0 ? columns : 120;
}

async function once(url: string, io: TopIo): Promise<number> {
  const first = await fetchSample(url);
  await sleep(REFRESH_MS);
  const second = await fetchSample(url);
  const lines = renderView(buildView(url, second, first), {
    width: plainWidth(io),
    maxFiles: ONCE_MAX_FILES,
  });
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

async function interactive(url: string, io: TopIo): Promise<number> {
  // the first look before the screen opens: an agent that is not there is one line in the shell
  let prev: AgentSample | undefined;
  let cur = await fetchSample(url);
  let view: TopView = buildView(url, cur);
  const quit = new AbortController();
  const onSignal = () => quit.abort();
  const draw = () => {
    const { width, height } = screen.size();
    screen.draw(renderView(view, { width, height, footer: 'q quits; refreshed every second' }));
  };
  const screen = openScreen(io, { onQuit: onSignal, onResize: () => draw() });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    draw();
    while (!quit.signal.aborted) {
      await sleep(REFRESH_MS, quit.signal);
      if (quit.signal.aborted) break;
      try {
        const next = await fetchSample(url, { signal: quit.signal });
        prev = cur;
        cur = next;
        view = buildView(url, cur, prev);
      } catch (err) {
        if (quit.signal.aborted) break;
        // an agent restarting (or a broken port-forward) is shown, and looked for again each second
        if (!(err instanceof AgentUnreachableError)) throw err;
        view = { ...view, stale: `${err.message}; showing its last answer, retrying` };
      }
      if (!quit.signal.aborted) draw();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    screen.restore();
  }
  return 0;
}

/**
 * `logferry top`: a running agent's /status and /metrics, drawn every second (or once). An agent that
 * cannot be reached is one line on stderr and exit code 1; bad flags are a UsageError (exit 2).
 */
export async function runTop(argv: string[], io?: Partial<TopIo>): Promise<number> {
  const full: TopIo = {
    stdout: io?.stdout ?? process.stdout,
    stdin: io?.stdin ?? process.stdin,
    stderr: io?.stderr ?? process.stderr,
    env: io?.env ?? process.env,
  };
  const args = parseTopArgs(argv, full.env);
  if (args === 'help') {
    full.stdout.write(TOP_USAGE);
    return 0;
  }
  try {
    // without a terminal (a pipe, kubectl exec without -t) there is nothing to redraw: one table
    if (args.once || !full.stdout.isTTY) return await once(args.url, full);
    return await interactive(args.url, full);
  } catch (err) {
    if (!(err instanceof AgentUnreachableError)) throw err;
    full.stderr.write(`logferry: top: ${err.message}; is the agent running? (set --http ADDR)\n`);
    return 1;
  }
}
