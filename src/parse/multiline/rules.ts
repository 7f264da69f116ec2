// Multiline rules: which physical records of one stream belong together (a stack trace, a panic
// dump) so that the grouper (grouper.ts) emits them as one record. Heuristics are documented in
// docs/multiline.md; keep the two in step.
//
// A rule hands out one classifier per stream. A classifier is a small state machine over the lines
// of the group being built: `begin(line)` says that `line` opens a group, `next(line)` answers
// whether the next line of the stream continues the open group. Its state after `begin(line)`
// depends on `line` alone, and `next` only updates it while the answer is 'continue': the state
// is always a function of the open group's lines. That is what makes restarts exact: a grouper
// that resumes reading at a group's first line rebuilds the very same group (see grouper.ts).
//
// Every pattern here is anchored at the start of the line and has no nested unbounded repetition,
// so classifying a line costs time linear in its length (lines can be up to max-line-bytes long).
import type { Matcher } from '../../transform/types.ts';

/** What a classifier says about the next line of a stream while a group is open. */
export type LineKind = 'start' | 'continue';

/** The per-stream state machine of a rule. Never throws. */
export interface LineClassifier {
  /**
   * `line` opens a group: the stream's first line, the line after a group was emitted from outside
   * (limits, flush, a record that bypasses grouping), or a line `next` answered 'start' for. The
   * state restarts from this line alone.
   */
  begin(line: string): void;
  /**
   * Whether `line` continues the open group; 'continue' updates the state with it. After 'start'
   * the caller calls `begin(line)`, and it may do so after 'continue' too (a limit cut the group).
   */
  next(line: string): LineKind;
}

/**
 * A language's classifier inside `auto`, where another language may continue the group: `follow`
 * is `begin` for a line in the middle of a group, so what only a group's first line allows (an
 * exception line after a log header) is not allowed after it.
 */
interface PartClassifier extends LineClassifier {
  follow(line: string): void;
  /** `begin` for a line that starts with a digit, '{' or '[' (auto's shortcut, see below) */
  head(): void;
  /**
   * Whether, in the current state, a line that starts with a digit, '{' or '[' can only continue
   * the group as a bare ruby frame (`RUBY_FRAME`).
   */
  quiet(): boolean;
}

export interface MultilineRule {
  readonly name: string;
  /** a fresh classifier, one per stream */
  classifier(): LineClassifier;
}

/** The built-in rules by name; `custom` rules are made by customRule. */
export const MULTILINE_RULES = ['none', 'auto', 'java', 'python', 'go', 'node', 'ruby', 'dotnet'] as const;

export type MultilineRuleName = (typeof MULTILINE_RULES)[number];

export function isMultilineRuleName(s: string): s is MultilineRuleName {
  return (MULTILINE_RULES as readonly string[]).includes(s);
}

// ---------------------------------------------------------------------------------------------
// Shared line shapes

const SPACE = 0x20;
const TAB = 0x09;

/** begins with a space or a tab */
function isIndented(line: string): boolean {
  const c = line.charCodeAt(0);
  return c === SPACE || c === TAB;
}

const BLANK = /^\s*$/;

/**
 * A JSON object line: '{' first, '}' last (trailing blanks aside). Built-in rules never group one,
 * neither as a group's first line nor as a continuation: structured logs are one record a line.
 */
function isJsonObjectLine(line: string): boolean {
  if (line.charCodeAt(0) !== 0x7b) return false;
  let end = line.length - 1;
  while (end > 0 && (line.charCodeAt(end) === SPACE || line.charCodeAt(end) === TAB)) end--;
  return line.charCodeAt(end) === 0x7d;
}

/**
 * A JVM or .NET exception line: a qualified class name ending in Exception, Error or Throwable,
 * then ':' or the end of the line (`java.lang.IllegalStateException: boom`,
 * `System.InvalidOperationException: msg`, `Microsoft.Data.SqlClient.SqlException (0x80131904): ...`).
 */
const QUALIFIED_EXCEPTION =
  /^(?:[A-Za-z_$][\w$]*\.)+[\w$`]*(?:Exception|Error|Throwable)(?: \(0x[0-9A-Fa-f]+\))?(?::|$)/;

/**
 * An indented JVM or .NET stack frame: `\tat com.x.Y.m(Y.java:1)`, `   at Ns.C.M() in f.cs:line 3`:
 * a name, then '('. An indented sentence that happens to begin with "at" is not a frame.
 */
const AT_FRAME = /^\s+at \S+\(/;

// ---------------------------------------------------------------------------------------------
// Java (JVM: plain printStackTrace, log4j, logback, JUL)

const JAVA_MORE = /^\s*\.\.\. \d+ (?:more|common frames omitted)/;
const JAVA_SECTION = /^\s*(?:Caused by|Suppressed|Wrapped by): \S/;
const JAVA_UNCAUGHT = /^Exception in thread "/;
/** java.util.logging's two-line SimpleFormatter header: `May 14, 2024 10:21:07 AM com.x.App main` */
const JUL_DATE = /^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M /;
const JUL_LEVEL = /^(?:SEVERE|WARNING|INFO|CONFIG|FINE|FINER|FINEST): /;

const JAVA_HEAD = 0; // one ordinary line (a log header)
const JAVA_JUL = 1; // a JUL date line, its level line may follow
const JAVA_TRACE = 2; // an exception line or a frame was seen
const JAVA_MID = 3; // in `auto`, after a line another language continued: only trace lines go on

function isJavaTraceLine(line: string): boolean {
  return AT_FRAME.test(line) || JAVA_MORE.test(line) || JAVA_SECTION.test(line);
}

class JavaClassifier implements PartClassifier {
  #state = JAVA_HEAD;

  follow(line: string): void {
    this.begin(line);
    if (this.#state !== JAVA_TRACE) this.#state = JAVA_MID;
  }

  head(): void {
    this.#state = JAVA_HEAD;
  }

  quiet(): boolean {
    return true;
  }

  begin(line: string): void {
    if (QUALIFIED_EXCEPTION.test(line) || JAVA_UNCAUGHT.test(line) || isJavaTraceLine(line)) {
      this.#state = JAVA_TRACE;
    } else {
      this.#state = JUL_DATE.test(line) ? JAVA_JUL : JAVA_HEAD;
    }
  }

  next(line: string): LineKind {
    if (isJavaTraceLine(line)) {
      this.#state = JAVA_TRACE;
      return 'continue';
    }
    const state = this.#state;
    if (state === JAVA_TRACE) {
      // the rest of a multi-line exception message (`  Position: 15`), frames of other shapes
      return isIndented(line) && !BLANK.test(line) ? 'continue' : 'start';
    }
    if (state === JAVA_MID) return 'start';
    if (QUALIFIED_EXCEPTION.test(line)) {
      this.#state = JAVA_TRACE;
      return 'continue';
    }
    if (state === JAVA_JUL && JUL_LEVEL.test(line)) {
      this.#state = JAVA_HEAD;
      return 'continue';
    }
    return 'start';
  }
}

// ---------------------------------------------------------------------------------------------
// Python

const PY_TRACEBACK = /^(?:Traceback|Stack) \(most recent call last\):/;
const PY_GROUP_TRACEBACK = /^\s*\+ Exception Group Traceback \(most recent call last\):/;
const PY_FILE = /^\s+File "/;
const PY_CHAIN =
  /^(?:During handling of the above exception, another exception occurred|The above exception was the direct cause of the following exception):\s*$/;

const PY_HEAD = 0; // one ordinary line: a `Traceback` line may follow
const PY_BODY = 1; // inside a traceback: indented lines, then the exception line
const PY_GROUP = 2; // inside an exception group traceback: everything is indented
const PY_EXC = 3; // after the exception line
const PY_GAP = 4; // a blank line after the exception: a chain message may follow
const PY_CHAINED = 5; // after a chain message: a blank line, then the next traceback
const PY_GAP2 = 6; // the blank line after a chain message
const PY_MID = 7; // in `auto`, after a line another language continued

class PythonClassifier implements PartClassifier {
  #state = PY_HEAD;

  follow(line: string): void {
    this.begin(line);
    if (this.#state === PY_HEAD) this.#state = PY_MID;
  }

  head(): void {
    this.#state = PY_HEAD;
  }

  quiet(): boolean {
    return this.#state !== PY_BODY;
  }

  begin(line: string): void {
    if (PY_TRACEBACK.test(line) || PY_FILE.test(line)) this.#state = PY_BODY;
    else if (PY_GROUP_TRACEBACK.test(line)) this.#state = PY_GROUP;
    else if (PY_CHAIN.test(line)) this.#state = PY_CHAINED;
    else this.#state = PY_HEAD;
  }

  next(line: string): LineKind {
    switch (this.#state) {
      case PY_BODY:
        if (isIndented(line)) return 'continue';
        if (BLANK.test(line)) return 'start';
        this.#state = PY_EXC;
        return 'continue';
      case PY_GROUP:
        if (isIndented(line)) return 'continue';
        return this.#gap(line);
      case PY_EXC:
        // an indented line: the rest of the exception message, or notes
        if (isIndented(line) && !BLANK.test(line)) return 'continue';
        return this.#gap(line);
      case PY_GAP:
        if (!PY_CHAIN.test(line)) return 'start';
        this.#state = PY_CHAINED;
        return 'continue';
      case PY_CHAINED:
        if (BLANK.test(line)) {
          this.#state = PY_GAP2;
          return 'continue';
        }
        return this.#traceback(line);
      case PY_GAP2:
      case PY_HEAD:
        return this.#traceback(line);
      default:
        return 'start';
    }
  }

  #gap(line: string): LineKind {
    if (line.length === 0 || BLANK.test(line)) {
      this.#state = PY_GAP;
      return 'continue';
    }
    return 'start';
  }

  #traceback(line: string): LineKind {
    if (PY_TRACEBACK.test(line)) {
      this.#state = PY_BODY;
      return 'continue';
    }
    if (PY_GROUP_TRACEBACK.test(line)) {
      this.#state = PY_GROUP;
      return 'continue';
    }
    return 'start';
  }
}

// ---------------------------------------------------------------------------------------------
// Go

const GO_START = /^(?:panic: |fatal error: |SIG[A-Z]+: |runtime stack:$)/;
const GO_GOROUTINE = /^goroutine \d+ [^[]*\[[^\]]*\]:\s*$/;
const GO_DUMP_LINE =
  /^(?:created by |\[signal |\.\.\.additional frames elided\.\.\.|runtime stack:|goroutine running on other thread|PC=0x|[a-z0-9]{2,6} +0x[0-9a-f]+$)/;
const GO_EXIT = /^exit status \d+$/;
/** a frame's position line: `\t/src/cmd/main.go:48 +0x1d6` */
const GO_POSITION = /^\t\S*\.(?:go|s):\d+(?: \+0x[0-9a-f]+)?\s*$/;

const GO_HEAD = 0; // one ordinary line: a goroutine header may follow (net/http's "http: panic serving ...")
const GO_DUMP = 1; // inside a panic / goroutine dump
const GO_END = 2; // after `exit status N`
const GO_MID = 3; // in `auto`, after a line another language continued

/** a function line of a goroutine dump: `main.main()`, `net/http.(*conn).serve(0xc0001fa000, {...})`, `panic({0x1, 0x2})` */
function isGoFunctionLine(line: string): boolean {
  const n = line.length;
  if (n < 3 || line.charCodeAt(n - 1) !== 0x29) return false;
  const open = line.indexOf('(');
  if (open <= 0) return false;
  let qualified = false;
  for (let i = 0; i < open; i++) {
    const c = line.charCodeAt(i);
    if (c <= SPACE) return false;
    if (c === 0x2e || c === 0x2f) qualified = true;
  }
  return qualified || (open === 5 && line.startsWith('panic('));
}

class GoClassifier implements PartClassifier {
  #state = GO_HEAD;

  follow(line: string): void {
    this.begin(line);
    if (this.#state === GO_HEAD) this.#state = GO_MID;
  }

  head(): void {
    this.#state = GO_HEAD;
  }

  quiet(): boolean {
    return this.#state !== GO_DUMP;
  }

  begin(line: string): void {
    this.#state =
      GO_START.test(line) ||
      GO_GOROUTINE.test(line) ||
      GO_POSITION.test(line) ||
      line.startsWith('created by ')
        ? GO_DUMP
        : GO_HEAD;
  }

  next(line: string): LineKind {
    const state = this.#state;
    if (state === GO_HEAD) {
      if (!GO_GOROUTINE.test(line)) return 'start';
      this.#state = GO_DUMP;
      return 'continue';
    }
    if (state === GO_END || state === GO_MID) return 'start';
    if (GO_EXIT.test(line)) {
      this.#state = GO_END;
      return 'continue';
    }
    return line.length === 0 ||
      line.charCodeAt(0) === TAB ||
      BLANK.test(line) ||
      GO_GOROUTINE.test(line) ||
      GO_DUMP_LINE.test(line) ||
      (line.startsWith('SIG') && GO_START.test(line)) ||
      isGoFunctionLine(line)
      ? 'continue'
      : 'start';
  }
}

// ---------------------------------------------------------------------------------------------
// Node.js

/** `Error: msg`, `TypeError: x`, `Error [ERR_X]: y`, `DOMException [AbortError]: z`, `Uncaught Error` */
const NODE_ERROR = /^(?:Uncaught )?(?:[A-Z][\w$]*)?(?:Error|Exception)(?: \[[^\]]*\])?(?::|$)/;
/**
 * A V8 frame: `    at f (x.js:1:2)`, `    at async C.m [as n] (x.js:1:2)`, `    at new P (<anonymous>)`,
 * `    at /app/x.js:1:2`, possibly followed by ` {` (the error's inspected properties).
 */
const NODE_FRAME =
  /^\s+at (?:(?:async |new )?\S+(?: \[as [^\]\s]+\])? \(|(?:async )?\S+:\d+:\d+\)?(?: \{)?\s*$)/;
/** a log header that announces an error: a bare `Error: ...` line after it belongs to it */
const ERROR_HEADER =
  /\b(?:error|err|fatal|crit|critical|alert|emerg|panic|warn|warning|exception|uncaught|unhandled|failed|failure)\b/i;
/** the position line of an uncaught exception: `/app/src/index.js:14`, `file:///app/x.mjs:3` */
const NODE_POSITION = /^(?:file:\/\/)?(?:[A-Za-z]:\\)?[^\s:]+\.[cm]?[jt]sx?:\d+$/;
const NODE_CARET = /^\s*\^+\s*$/;
const NODE_VERSION = /^Node\.js v\d/;

const NODE_HEAD = 0; // one ordinary line
const NODE_SOURCE = 1; // after an uncaught exception's position line: source, caret, blank
const NODE_ERR = 2; // the error line or frames
const NODE_BLOCK = 3; // inside the `{ ... }` of an inspected error (properties, [cause])
const NODE_TAIL = 4; // a blank line after the error: `Node.js vX` may follow
const NODE_END = 5;

/** ends with '{' (trailing blanks aside): opens an inspected object */
function opensBlock(line: string): boolean {
  let end = line.length - 1;
  while (end > 0 && (line.charCodeAt(end) === SPACE || line.charCodeAt(end) === TAB)) end--;
  return line.charCodeAt(end) === 0x7b;
}

class NodeClassifier implements PartClassifier {
  /** auto: no `Error:` line after a log header, and only shaped lines after a position line */
  readonly #strict: boolean;
  #state = NODE_HEAD;
  #sourceLines = 0;
  #errorHeader = false;
  /** an `at` frame was seen since the error line: only then does a blank line belong (strict) */
  #sawFrame = false;

  constructor(strict: boolean) {
    this.#strict = strict;
  }

  follow(line: string): void {
    this.begin(line);
    this.#errorHeader = false;
    if (this.#state === NODE_SOURCE) this.#state = NODE_HEAD;
  }

  /** (strict only: it leaves out the error header check) */
  head(): void {
    this.#sourceLines = 0;
    this.#errorHeader = false;
    this.#sawFrame = false;
    this.#state = NODE_HEAD;
  }

  quiet(): boolean {
    return this.#state !== NODE_SOURCE;
  }

  begin(line: string): void {
    this.#sourceLines = 0;
    this.#errorHeader = false;
    this.#sawFrame = false;
    if (NODE_ERROR.test(line)) this.#state = NODE_ERR;
    else if (NODE_FRAME.test(line)) this.#state = opensBlock(line) ? NODE_BLOCK : NODE_ERR;
    else if (NODE_POSITION.test(line)) this.#state = NODE_SOURCE;
    else {
      this.#state = NODE_HEAD;
      this.#errorHeader = !this.#strict && ERROR_HEADER.test(line);
    }
  }

  next(line: string): LineKind {
    switch (this.#state) {
      case NODE_HEAD:
        if (NODE_FRAME.test(line)) return this.#frame(line);
        if (!this.#errorHeader || !NODE_ERROR.test(line)) return 'start';
        this.#state = NODE_ERR;
        return 'continue';
      case NODE_SOURCE:
        if (NODE_ERROR.test(line)) {
          this.#state = NODE_ERR;
          return 'continue';
        }
        if (++this.#sourceLines > 4) return 'start';
        // the source line (any text in `node`), the caret line, a blank line
        if (isIndented(line) || NODE_CARET.test(line) || BLANK.test(line)) return 'continue';
        return this.#strict || this.#sourceLines > 1 ? 'start' : 'continue';
      case NODE_ERR:
        if (NODE_FRAME.test(line)) return this.#frame(line);
        if (BLANK.test(line)) {
          // in auto, a bare `Error: ...` line followed by an empty line is two ordinary lines
          if (this.#strict && !this.#sawFrame) return 'start';
          this.#state = NODE_TAIL;
          return 'continue';
        }
        // `    ... 3 lines matching cause stack trace ...` and other indented lines
        return isIndented(line) ? 'continue' : 'start';
      case NODE_BLOCK: {
        // util.inspect indents everything inside the object; the closing brace is at column 0
        if (isIndented(line)) return 'continue';
        const c = line.charCodeAt(0);
        if (c !== 0x7d && c !== 0x5d) return 'start';
        this.#state = NODE_ERR;
        return 'continue';
      }
      case NODE_TAIL:
        if (!NODE_VERSION.test(line)) return 'start';
        this.#state = NODE_END;
        return 'continue';
      default:
        return 'start';
    }
  }

  #frame(line: string): LineKind {
    this.#sawFrame = true;
    this.#state = opensBlock(line) ? NODE_BLOCK : NODE_ERR;
    return 'continue';
  }
}

// ---------------------------------------------------------------------------------------------
// Ruby

/** `\tfrom app.rb:5:in 'm'`, and 2.5-2.7's numbered `\t2: from app.rb:7:in ...` */
const RUBY_FROM = /^\s+(?:\d+: )?from \S/;
const RUBY_LEVELS = /^\s*\.\.\. \d+ levels\.\.\./;
/** a bare backtrace line, as Rails and loggers print them: `app/models/order.rb:18:in 'Order#save'` */
const RUBY_FRAME = /^\s*[^\s:]+:\d+:in [`'][^`']*'$/;
/** the exception line: `app.rb:10:in 'm': msg (RuntimeError)` */
const RUBY_ERROR = /^[^\s:]+:\d+:in [`']/;
const PY_STYLE_TRACEBACK = /^Traceback \(most recent call last\):$/;

const RUBY_PLAIN = 0;
const RUBY_REVERSED = 1; // Ruby 2.5-2.7 on a terminal: `Traceback`, numbered frames, then the error

class RubyClassifier implements PartClassifier {
  #state = RUBY_PLAIN;

  follow(line: string): void {
    this.begin(line);
  }

  head(): void {
    this.#state = RUBY_PLAIN;
  }

  quiet(): boolean {
    return this.#state === RUBY_PLAIN;
  }

  begin(line: string): void {
    this.#state = PY_STYLE_TRACEBACK.test(line) ? RUBY_REVERSED : RUBY_PLAIN;
  }

  next(line: string): LineKind {
    if (RUBY_FROM.test(line) || RUBY_LEVELS.test(line) || RUBY_FRAME.test(line)) return 'continue';
    if (this.#state === RUBY_REVERSED && RUBY_ERROR.test(line)) {
      this.#state = RUBY_PLAIN;
      return 'continue';
    }
    return 'start';
  }
}

// ---------------------------------------------------------------------------------------------
// .NET

const DOTNET_INNER = /^\s*(?:---> |--- End of |<---\s*$)/;
/** what SqlException and friends append after the frames */
const DOTNET_TRAILER = /^(?:ClientConnectionId:|Error Number:\d)/;
const DOTNET_UNHANDLED = /^Unhandled exception\. /;
/** Microsoft.Extensions.Logging's console format: `fail: Category[EventId]`, then lines indented 6 */
const DOTNET_CONSOLE = /^(?:trce|dbug|info|warn|fail|crit): \S/;

const DOTNET_HEAD = 0;
const DOTNET_TRACE = 1;
const DOTNET_CONSOLE_ENTRY = 2;
const DOTNET_MID = 3; // in `auto`, after a line another language continued

class DotnetClassifier implements PartClassifier {
  #state = DOTNET_HEAD;

  follow(line: string): void {
    this.begin(line);
    if (this.#state !== DOTNET_TRACE) this.#state = DOTNET_MID;
  }

  head(): void {
    this.#state = DOTNET_HEAD;
  }

  quiet(): boolean {
    return true;
  }

  begin(line: string): void {
    if (DOTNET_CONSOLE.test(line)) this.#state = DOTNET_CONSOLE_ENTRY;
    else if (
      QUALIFIED_EXCEPTION.test(line) ||
      DOTNET_UNHANDLED.test(line) ||
      AT_FRAME.test(line) ||
      DOTNET_INNER.test(line)
    ) {
      this.#state = DOTNET_TRACE;
    } else this.#state = DOTNET_HEAD;
  }

  next(line: string): LineKind {
    const state = this.#state;
    if (state === DOTNET_CONSOLE_ENTRY) return isIndented(line) && !BLANK.test(line) ? 'continue' : 'start';
    if (AT_FRAME.test(line) || DOTNET_INNER.test(line)) {
      this.#state = DOTNET_TRACE;
      return 'continue';
    }
    if (state === DOTNET_TRACE) {
      return (isIndented(line) && !BLANK.test(line)) || DOTNET_TRAILER.test(line) ? 'continue' : 'start';
    }
    if (state === DOTNET_MID) return 'start';
    if (QUALIFIED_EXCEPTION.test(line)) {
      this.#state = DOTNET_TRACE;
      return 'continue';
    }
    return 'start';
  }
}

// ---------------------------------------------------------------------------------------------
// auto, none, and the wrapper every built-in rule shares

/**
 * Runs every language's classifier side by side: a line continues the group when any of them says
 * so. The ones that said 'start' pick up at that line (`follow`), so each keeps a state that is a
 * function of the group's lines. Node runs strict: a bare `Error: ...` line is too common in
 * ordinary logs to be glued to the line before.
 *
 * Shortcut, for speed on ordinary logs: no language's `begin` leaves its head state for a line
 * that starts with a digit, '{' or '[' (timestamps, JSON, `[INFO]`), except node's for a script
 * position (`1.js:2`), and while every language is `quiet` such a line continues nothing but as a
 * bare ruby frame. Both shortcuts give exactly what running every language would.
 */
class AutoClassifier implements LineClassifier {
  readonly #parts: PartClassifier[] = [
    new JavaClassifier(),
    new PythonClassifier(),
    new GoClassifier(),
    new NodeClassifier(true),
    new RubyClassifier(),
    new DotnetClassifier(),
  ];
  readonly #answers: LineKind[] = [];

  begin(line: string): void {
    if (!startsOrdinary(line)) {
      for (const c of this.#parts) c.begin(line);
      return;
    }
    for (const c of this.#parts) c.head();
    if (NODE_POSITION.test(line)) this.#parts[3]!.begin(line);
  }

  next(line: string): LineKind {
    const parts = this.#parts;
    if (startsOrdinary(line) && !RUBY_FRAME.test(line) && allQuiet(parts)) return 'start';
    const answers = this.#answers;
    let continues = false;
    for (let i = 0; i < parts.length; i++) {
      const a = parts[i]!.next(line);
      answers[i] = a;
      if (a === 'continue') continues = true;
    }
    if (!continues) return 'start';
    for (let i = 0; i < parts.length; i++) if (answers[i] === 'start') parts[i]!.follow(line);
    return 'continue';
  }
}

function allQuiet(parts: PartClassifier[]): boolean {
  for (const c of parts) if (!c.quiet()) return false;
  return true;
}

/** starts with a digit, '{' or '[' */
function startsOrdinary(line: string): boolean {
  const c = line.charCodeAt(0);
  return (c >= 0x30 && c <= 0x39) || c === 0x7b || c === 0x5b;
}

class NoneClassifier implements LineClassifier {
  begin(): void {}
  next(): LineKind {
    return 'start';
  }
}

/**
 * The part of a line the languages look at: its first 4 KiB. Every shape they know is short, and
 * this keeps a huge line (up to max-line-bytes) from costing each pattern a scan of it.
 */
const CLASSIFIED_CHARS = 4096;

/**
 * What every built-in rule does around its language's state machine: a trailing '\r' (CRLF
 * output) is ignored, JSON object lines are never grouped with anything, and only the first
 * CLASSIFIED_CHARS characters of a line are looked at.
 */
class BuiltinClassifier implements LineClassifier {
  readonly #inner: LineClassifier;
  #closed = false;

  constructor(inner: LineClassifier) {
    this.#inner = inner;
  }

  begin(line: string): void {
    const l = withoutCr(line);
    this.#closed = isJsonObjectLine(l);
    this.#inner.begin(clip(l));
  }

  next(line: string): LineKind {
    if (this.#closed) return 'start';
    const l = withoutCr(line);
    if (isJsonObjectLine(l)) return 'start';
    return this.#inner.next(clip(l));
  }
}

function withoutCr(line: string): string {
  return line.charCodeAt(line.length - 1) === 0x0d ? line.slice(0, -1) : line;
}

function clip(line: string): string {
  return line.length > CLASSIFIED_CHARS ? line.slice(0, CLASSIFIED_CHARS) : line;
}

const FACTORIES: Record<MultilineRuleName, () => LineClassifier> = {
  none: () => new NoneClassifier(),
  auto: () => new BuiltinClassifier(new AutoClassifier()),
  java: () => new BuiltinClassifier(new JavaClassifier()),
  python: () => new BuiltinClassifier(new PythonClassifier()),
  go: () => new BuiltinClassifier(new GoClassifier()),
  node: () => new BuiltinClassifier(new NodeClassifier(false)),
  ruby: () => new BuiltinClassifier(new RubyClassifier()),
  dotnet: () => new BuiltinClassifier(new DotnetClassifier()),
};

/** The built-in rule `name`. */
export function builtinRule(name: MultilineRuleName): MultilineRule {
  const make = FACTORIES[name];
  return { name, classifier: make };
}

// ---------------------------------------------------------------------------------------------
// custom

export interface CustomRuleOptions {
  /** the rule's name as configured (multiline.custom key); 'custom' when not given */
  name?: string | undefined;
  /** a line matching this starts a record */
  start?: Matcher | undefined;
  /** a line matching this (and not `start`) continues the record before it */
  continuation?: Matcher | undefined;
}

/**
 * A rule from regexes, tested on each line as is:
 * - `start` only: a line matching it starts a record, every other line continues one;
 * - `continuation` only: a line matching it continues the record before it, every other starts one;
 * - both: `start` wins; otherwise a line continues when it matches `continuation`, and starts a
 *   record when it matches neither.
 */
export function customRule(options: CustomRuleOptions): MultilineRule {
  const { start, continuation } = options;
  if (start === undefined && continuation === undefined) {
    throw new TypeError('a custom multiline rule needs a start regex, a continuation regex or both');
  }
  const classifier: LineClassifier = {
    begin(): void {},
    next(line: string): LineKind {
      if (start?.test(line)) return 'start';
      if (continuation === undefined) return 'continue';
      return continuation.test(line) ? 'continue' : 'start';
    },
  };
  return { name: options.name ?? 'custom', classifier: () => classifier };
}
