/**
 * The interactive view's terminal: the alternate screen (the shell's scrollback is left as it was),
 * the cursor hidden, stdin in raw mode for single keys. `restore()` undoes all of it and is safe to
 * call more than once; it is also run on process exit, so a crash does not leave a raw terminal.
 */
const ALT_SCREEN_ON = '\x1b[?1049h';
const ALT_SCREEN_OFF = '\x1b[?1049l';
const CURSOR_HIDE = '\x1b[?25l';
const CURSOR_SHOW = '\x1b[?25h';
const HOME = '\x1b[H';
const CLEAR_LINE_END = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';

export interface ScreenIo {
  stdout: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
}

export interface Screen {
  draw(lines: readonly string[]): void;
  size(): { width: number; height: number };
  restore(): void;
}

/** q, Q and Ctrl-C quit (in raw mode Ctrl-C arrives as a byte, not as SIGINT). */
export function isQuitKey(data: string): boolean {
  return data === 'q' || data === 'Q' || data.includes('\x03');
}

export function openScreen(io: ScreenIo, handlers: { onQuit(): void; onResize(): void }): Screen {
  const { stdout, stdin } = io;
  const raw = stdin.isTTY === true;
  const onData = (d: Buffer | string) => {
    if (isQuitKey(d.toString())) handlers.onQuit();
  };
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    stdout.off('resize', handlers.onResize);
    process.off('exit', restore);
    if (raw) {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    }
    stdout.write(CURSOR_SHOW + ALT_SCREEN_OFF);
  };
  process.on('exit', restore);
  stdout.write(ALT_SCREEN_ON + CURSOR_HIDE + HOME + CLEAR_BELOW);
  // without a terminal on stdin (kubectl exec -t without -i) there are no keys: SIGINT still quits
  if (raw) {
    stdin.setRawMode(true);
    stdin.on('data', onData);
    stdin.resume();
  }
  stdout.on('resize', handlers.onResize);
  return {
    // home, then each line over the old one, then clear what is left: no flicker from a full clear
    draw: (lines) => stdout.write(HOME + lines.map((l) => l + CLEAR_LINE_END).join('\r\n') + CLEAR_BELOW),
    size: () => ({ width: stdout.columns ?? 80, height: stdout.rows ?? 24 }),
    restore,
  };
}
