/** Errors with stable codes; code matches on class or `code`, never on message text. */
export class LogferryError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad input from the user (flags, config, paths): one clear line, exit code 2. */
export class UsageError extends LogferryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LOGFERRY_ERR_USAGE', message, options);
  }
}

export class CheckpointError extends LogferryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LOGFERRY_ERR_CHECKPOINT', message, options);
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** Hides `user:password@` in any URL quoted in a text, before it is logged or shown in /status. */
export function redactCredentials(text: string): string {
  return text.replace(/\/\/[^/@\s]+@/g, '//***@');
}
