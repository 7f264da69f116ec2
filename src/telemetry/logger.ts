/** Where operational messages go: one line each, on stderr, never on the data stream (stdout). */
export interface Logger {
  info(message: string, context?: Record<string, unknown>): void;
  warn(message: string, context?: Record<string, unknown>): void;
  error(message: string, context?: Record<string, unknown>): void;
}

type Level = 'info' | 'warn' | 'error';

/** Human-readable lines for the CLI: `logferry: warning: ...`. */
export function textLogger(write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const emit = (level: Level, message: string) => {
    const prefix = level === 'info' ? '' : level === 'warn' ? 'warning: ' : 'error: ';
    write(`logferry: ${prefix}${message}\n`);
  };
  return {
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
  };
}

/** JSON lines for the agent, so a cluster's log pipeline can parse logferry's own logs. */
export function jsonLogger(write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const emit = (level: Level, message: string, context?: Record<string, unknown>) => {
    write(`${JSON.stringify({ '@timestamp': new Date().toISOString(), level, message, ...context })}\n`);
  };
  return {
    info: (m, c) => emit('info', m, c),
    warn: (m, c) => emit('warn', m, c),
    error: (m, c) => emit('error', m, c),
  };
}
