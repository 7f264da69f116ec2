import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.ts';
import { agentUrl, parseTopArgs } from '../../../src/cli/top/args.ts';
import { isQuitKey } from '../../../src/cli/top/screen.ts';
import { AGENT_OPTIONS } from '../../../src/config/options.ts';
import { UsageError } from '../../../src/errors.ts';

const NO_ENV = {};

describe('parseTopArgs', () => {
  it.each([
    // argv, environment, url, once
    [[], NO_ENV, 'http://127.0.0.1:2020', false],
    [['--once'], NO_ENV, 'http://127.0.0.1:2020', true],
    [['--http', '127.0.0.1:9090'], NO_ENV, 'http://127.0.0.1:9090', false],
    [['--http=10.1.2.3:2020', '--once'], NO_ENV, 'http://10.1.2.3:2020', true],
    [['--http', ':2021'], NO_ENV, 'http://127.0.0.1:2021', false],
    [['--http', '[::]:2020'], NO_ENV, 'http://[::1]:2020', false],
    [['--http', '[fd00::5]:2020'], NO_ENV, 'http://[fd00::5]:2020', false],
    [['--http', 'logferry.logferry.svc:2020'], NO_ENV, 'http://logferry.logferry.svc:2020', false],
    [['--http', 'http://localhost:2020/'], NO_ENV, 'http://localhost:2020', false],
    [['--http', 'https://agent.example:8443/base'], NO_ENV, 'https://agent.example:8443/base', false],
    // in the agent's container, its own LOGFERRY_HTTP_ADDR says where it listens; --http wins
    [[], { LOGFERRY_HTTP_ADDR: '127.0.0.1:3030' }, 'http://127.0.0.1:3030', false],
    [['--http', ':4040'], { LOGFERRY_HTTP_ADDR: '127.0.0.1:3030' }, 'http://127.0.0.1:4040', false],
    [[], { LOGFERRY_HTTP_ADDR: '' }, 'http://127.0.0.1:2020', false],
  ] as const)('%j with %j -> %s', (argv, env, url, once) => {
    expect(parseTopArgs([...argv], env)).toEqual({ url, once });
  });

  it('defaults to the agent default listen address, on this machine', () => {
    const addr = AGENT_OPTIONS.find((o) => o.key === 'http.addr')!.default as string;
    expect(addr).toBe('0.0.0.0:2020');
    expect(parseTopArgs([], NO_ENV)).toEqual({ url: `http://127.0.0.1:${addr.split(':')[1]}`, once: false });
  });

  it.each([['-h'], ['--help'], ['--once', '--help']])('%j is help', (...argv) => {
    expect(parseTopArgs(argv, NO_ENV)).toBe('help');
  });

  it.each([
    [['--bogus'], "top: unknown option '--bogus' (see logferry top --help)"],
    [['extra'], 'top:'],
    [['--http'], 'top:'],
    [['--http', 'nonsense'], "top: --http: invalid listen address 'nonsense': missing :port"],
    [['--http', '127.0.0.1:99999'], 'port 99999 is above 65535'],
    [['--http', '127.0.0.1:0'], 'port 0 is not an address an agent listens on'],
    [['--http', 'ftp://host:21'], 'only http:// and https:// URLs'],
    [['--http', 'http://'], 'is not a URL'],
  ])('%j is a usage error: %s', (argv, message) => {
    let error: unknown;
    try {
      parseTopArgs(argv, NO_ENV);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).not.toContain('\n');
  });

  it('a bad LOGFERRY_HTTP_ADDR is a usage error too', () => {
    expect(() => parseTopArgs([], { LOGFERRY_HTTP_ADDR: 'nope' })).toThrow(UsageError);
  });

  it.each([
    ['0.0.0.0:2020', 'http://127.0.0.1:2020'],
    ['127.0.0.1:2020', 'http://127.0.0.1:2020'],
    ['[::1]:2020', 'http://[::1]:2020'],
  ])('agentUrl(%s) = %s', (addr, url) => expect(agentUrl(addr)).toBe(url));
});

describe('logferry top through main', () => {
  it.each([[['top', '--bogus']], [['top', '--http', 'x']], [['top', 'positional']]])(
    '%j exits 2',
    async (argv) => {
      expect(await main(argv)).toBe(2);
    },
  );
});

describe('quit keys', () => {
  it.each([
    ['q', true],
    ['Q', true],
    ['\x03', true],
    ['x', false],
    ['\x1b[A', false],
    [' ', false],
  ])('%j quits: %s', (data, quits) => expect(isQuitKey(data)).toBe(quits));
});
