import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface HotSpot {
  /** `function (file:line)`; `(garbage collector)`, `(program)` and `(idle)` are V8's own */
  name: string;
  selfMs: number;
  /** share of the sampled time that was not idle */
  percent: number;
}

/** Self time per function of a `node --cpu-prof` profile, biggest first, idle time left out. */
export function hotSpots(profilePath: string, root: string, top = 15): { spots: HotSpot[]; busyMs: number } {
  const profile = JSON.parse(readFileSync(profilePath, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parentOf = new Map<number, ProfileNode>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parentOf.set(c, n);
  }
  const self = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i] ?? 0;
    if (node === undefined || node.callFrame.functionName === '(idle)') continue;
    busy += dt;
    // V8 builtins and native code have neither name nor URL: name them after their caller
    const caller = parentOf.get(node.id);
    const native = node.callFrame.functionName === '' && node.callFrame.url === '' && caller !== undefined;
    const key = native ? `(native, called from ${label(caller, root)})` : label(node, root);
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const spots = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, selfMs: us / 1000, percent: busy === 0 ? 0 : (100 * us) / busy }));
  return { spots, busyMs: busy / 1000 };
}

function label(node: ProfileNode, root: string): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  if (url === '') return name;
  let where = url;
  if (url.startsWith('file://')) {
    try {
      where = relative(root, fileURLToPath(url));
    } catch {
      // keep the URL
    }
  }
  return `${name} (${where}:${lineNumber + 1})`;
}

/** Notes for a scenario's output: where the profile is, its busy time and its top functions. */
export function profileNotes(file: string, root: string, what: string, top = 20): string[] {
  const { spots, busyMs } = hotSpots(file, root, top);
  return [
    `profile: ${file} (${what}, ${(busyMs / 1000).toFixed(2)} s busy; open in Chrome DevTools or speedscope)`,
    'top self time:',
    ...spots.map(
      (s) => `  ${s.percent.toFixed(1).padStart(5)}%  ${s.selfMs.toFixed(0).padStart(7)} ms  ${s.name}`,
    ),
  ];
}
