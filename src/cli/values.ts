import { UsageError } from '../errors.ts';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1000,
  kb: 1000,
  kib: 1024,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** '262144', '256KiB', '64MiB', '1.5GB' -> bytes. */
export function parseBytes(flag: string, value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m?.[2]?.toLowerCase() ?? '';
  const scale = UNITS[unit];
  if (m === null || scale === undefined) {
    throw new UsageError(
      `${flag}: '${value}' is not a size; use bytes or a unit, e.g. 262144, 256KiB, 64MiB`,
    );
  }
  const n = Math.floor(Number(m[1]) * scale);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${flag}: '${value}' must be a positive size`);
  return n;
}

export function parsePositiveInt(flag: string, value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`${flag}: '${value}' must be a positive whole number`);
  }
  return Number(value);
}

export function parseChoice<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`${flag}: '${value}' is not one of ${choices.join(', ')}`);
  }
  return value as T;
}

/** A node:util parseArgs error as one line for `logferry <command>`. */
export function argvError(err: unknown, command: string): UsageError {
  const e = err as NodeJS.ErrnoException;
  const option = /'(-[^']*)'/.exec(e.message)?.[1];
  const text =
    e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option !== undefined
      ? `unknown option '${option}'`
      : (e.message.split('\n')[0] ?? e.message);
  return new UsageError(`${command}: ${text} (see logferry ${command} --help)`);
}
