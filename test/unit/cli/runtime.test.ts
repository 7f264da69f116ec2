import { describe, expect, it } from 'vitest';
import { oldSpaceMb, RUNTIME_ENV, runtimePlan } from '../../../src/cli/runtime.ts';

const MiB = 1024 * 1024;
const MALLOC = { MALLOC_MMAP_THRESHOLD_: '65536', MALLOC_TRIM_THRESHOLD_: '1048576', MALLOC_ARENA_MAX: '2' };

describe('oldSpaceMb: 3 x budget + 64 MiB', () => {
  it.each([
    [64 * MiB, 256],
    [32 * MiB, 160],
    [8 * MiB, 88],
    [1, 65],
  ])('%d bytes -> %d MiB', (budget, mb) => expect(oldSpaceMb(budget)).toBe(mb));
});

describe('runtimePlan', () => {
  const cases: Array<{
    name: string;
    execArgv?: string[];
    env?: Record<string, string>;
    want: { execArgv: string[]; env: Record<string, string> } | undefined;
  }> = [
    {
      name: 'nothing set: heap from the budget, small young generation, malloc settings',
      want: {
        execArgv: ['--max-old-space-size=256', '--max-semi-space-size=2'],
        env: { ...MALLOC, [RUNTIME_ENV]: 'applied' },
      },
    },
    {
      name: 'a heap limit in NODE_OPTIONS wins; the rest is added',
      env: { NODE_OPTIONS: '--enable-source-maps --max-old-space-size=900' },
      want: { execArgv: ['--max-semi-space-size=2'], env: { ...MALLOC, [RUNTIME_ENV]: 'applied' } },
    },
    {
      name: 'the underscore spelling on the command line counts',
      execArgv: ['--max_semi_space_size=16'],
      want: { execArgv: ['--max-old-space-size=256'], env: { ...MALLOC, [RUNTIME_ENV]: 'applied' } },
    },
    {
      name: 'a malloc variable the user set is kept',
      env: { MALLOC_ARENA_MAX: '8' },
      want: {
        execArgv: ['--max-old-space-size=256', '--max-semi-space-size=2'],
        env: {
          MALLOC_MMAP_THRESHOLD_: '65536',
          MALLOC_TRIM_THRESHOLD_: '1048576',
          [RUNTIME_ENV]: 'applied',
        },
      },
    },
    {
      name: 'everything set (the image as before): nothing to do',
      env: { NODE_OPTIONS: '--max-old-space-size=256 --max-semi-space-size=2', ...MALLOC },
      want: undefined,
    },
    { name: 'already applied: never twice', env: { [RUNTIME_ENV]: 'applied' }, want: undefined },
    { name: 'turned off', env: { [RUNTIME_ENV]: 'off' }, want: undefined },
  ];
  it.each(cases)('$name', ({ execArgv = [], env = {}, want }) => {
    expect(runtimePlan(64 * MiB, { execArgv, env })).toEqual(want);
  });
});
