/**
 * A Dockerfile reader good enough to check our own Dockerfile without a Docker engine: comments,
 * line continuations, global ARG defaults substituted into FROM, stages, exec-form JSON arrays and
 * ENV pairs. Heredocs and escape-directive changes are not supported (the Dockerfile uses neither).
 */

export interface Instruction {
  keyword: string;
  args: string;
  /** 1-based line where the instruction starts */
  line: number;
}

export interface Stage {
  /** the image reference, global ARGs substituted */
  image: string;
  name: string | undefined;
  instructions: Instruction[];
}

export interface Dockerfile {
  globalArgs: Map<string, string>;
  stages: Stage[];
}

function substitute(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => {
    const value = vars.get((a ?? b)!);
    if (value === undefined) throw new Error(`${whole} has no default value`);
    return value;
  });
}

export function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    // comment lines are dropped, also inside a continued instruction (as BuildKit does)
    if (line.trimStart().startsWith('#')) return;
    if (pending === undefined && line.trim() === '') return;
    const continued = line.endsWith('\\');
    const part = continued ? line.slice(0, -1) : line;
    pending =
      pending === undefined ? { text: part, line: i + 1 } : { ...pending, text: `${pending.text} ${part}` };
    if (!continued) {
      const m = /^\s*(\w+)\s*(.*)$/s.exec(pending.text);
      if (m !== null) out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: pending.line });
      pending = undefined;
    }
  });
  return out;
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions(text)) {
    if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const asAt = words.findIndex((w) => w.toUpperCase() === 'AS');
      stages.push({
        image: substitute(words[0]!, globalArgs),
        name: asAt >= 0 ? words[asAt + 1] : undefined,
        instructions: [],
      });
    } else if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw new Error(`line ${ins.line}: ${ins.keyword} before the first FROM`);
      const [name, value] = ins.args.split('=', 2);
      if (value !== undefined) globalArgs.set(name!.trim(), value.trim());
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

/** `["a", "b"]` -> ['a', 'b']; the shell form is refused (it would run under /bin/sh -c, not tini). */
export function execForm(ins: Instruction): string[] {
  try {
    const value: unknown = JSON.parse(ins.args);
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  } catch {
    // fall through
  }
  throw new Error(`line ${ins.line}: ${ins.keyword} is not in exec form (a JSON array of strings)`);
}

/** `ENV A=1 B="two words"` -> {A: '1', B: 'two words'} */
export function envPairs(ins: Instruction): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of ins.args.matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/g)) {
    out[m[1]!] = m[2] ?? m[3] ?? '';
  }
  return out;
}

/** name:tag@digest -> parts; a missing tag means `latest` to Docker. */
export function imageReference(ref: string): {
  name: string;
  tag: string | undefined;
  digest: string | undefined;
} {
  const [nameTag, digest] = ref.split('@', 2) as [string, string | undefined];
  const colon = nameTag.lastIndexOf(':');
  const slash = nameTag.lastIndexOf('/');
  return colon > slash
    ? { name: nameTag.slice(0, colon), tag: nameTag.slice(colon + 1), digest }
    : { name: nameTag, tag: undefined, digest };
}
