// `logferry agent` gives itself its runtime settings (src/cli/runtime.ts): the built CLI is started
// without NODE_OPTIONS or MALLOC_* and /status says what the process that serves it runs with.
import { describe, expect, it } from 'vitest';
import { agentFixture, startAgent } from '../helpers/agent.ts';

const fixture = agentFixture();

interface Runtime {
  pid: number;
  nodeFlags: string[];
  heapLimitBytes: number;
  mallocArenaMax: string | null;
}

/** The environment of a user who runs `logferry agent` by hand: none of the image's settings. */
function bareEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['NODE_OPTIONS', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_ARENA_MAX'])
    delete env[k];
  delete env.LOGFERRY_RUNTIME;
  return { ...env, ...extra };
}

async function runtimeOf(
  extra: string[],
  childEnv: NodeJS.ProcessEnv,
): Promise<{ rt: Runtime; pid: number }> {
  const agent = startAgent(fixture.env(), extra, 'pipe', childEnv);
  const url = await agent.url();
  const status = (await (await fetch(`${url}/status`)).json()) as { runtime: Runtime };
  return { rt: status.runtime, pid: agent.child.pid! };
}

const MiB = 1024 * 1024;

describe('logferry agent runtime settings', () => {
  it('derives the heap limit from --max-buffer-bytes and sets malloc, in the same process id', async () => {
    const { rt, pid } = await runtimeOf(['--max-buffer-bytes', '32MiB'], bareEnv());
    expect(rt.pid).toBe(pid);
    expect(rt.nodeFlags).toEqual(
      expect.arrayContaining(['--max-old-space-size=160', '--max-semi-space-size=2']),
    );
    // V8's limit is old space plus the young generation: at least the old space, far below Node's default
    expect(rt.heapLimitBytes).toBeGreaterThanOrEqual(160 * MiB);
    expect(rt.heapLimitBytes).toBeLessThan(200 * MiB);
    expect(rt.mallocArenaMax).toBe('2');
  });

  it("keeps the user's own heap flag and adds only what is missing", async () => {
    const { rt } = await runtimeOf([], bareEnv({ NODE_OPTIONS: '--max-old-space-size=300' }));
    expect(rt.nodeFlags).toEqual(['--max-semi-space-size=2']);
    expect(rt.heapLimitBytes).toBeGreaterThanOrEqual(300 * MiB);
  });

  it('LOGFERRY_RUNTIME=off runs with Node as started', async () => {
    const { rt } = await runtimeOf([], bareEnv({ LOGFERRY_RUNTIME: 'off' }));
    expect(rt.nodeFlags).toEqual([]);
    expect(rt.mallocArenaMax).toBeNull();
  });
});
