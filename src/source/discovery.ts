import { stat } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { glob } from 'tinyglobby';

const GLOB_CHARS = /[*?[\]{}]/;

export function hasGlob(pattern: string): boolean {
  return GLOB_CHARS.test(pattern);
}

/** The directory a pattern's matches live under: its leading components without glob characters. */
export function globBase(pattern: string): string {
  const abs = isAbsolute(pattern) ? pattern : resolve(pattern);
  if (!hasGlob(abs)) return abs;
  const parts = abs.split(sep);
  const fixed: string[] = [];
  for (const part of parts) {
    if (hasGlob(part)) break;
    fixed.push(part);
  }
  return fixed.join(sep) || sep;
}

export interface Match {
  path: string;
  dev: number;
  ino: number;
  size: number;
  /** the inode's birth time (statx btime), 0 where the file system does not report it */
  birthMs: number;
}

/**
 * Expands paths and globs to the regular files they name now. Symlinks are followed (a file's
 * identity is its target) and a target reached by several paths is listed once, under the first.
 * Paths `skip` says are already known are left out without a stat (a periodic scan of many
 * followed files should cost one directory walk, not a stat per file).
 */
export async function expandPatterns(
  patterns: readonly string[],
  skip?: (path: string) => boolean,
): Promise<Match[]> {
  const out: Match[] = [];
  const seen = new Set<string>();
  for (const pattern of patterns) {
    const abs = isAbsolute(pattern) ? pattern : resolve(pattern);
    const paths: string[] = [];
    if (hasGlob(abs)) {
      // tinyglobby (fdir + picomatch), not node:fs/promises glob: on a node with 200 pods a scan,
      // once a second by default, cost ~30 ms of CPU with Node's glob and ~6 with this (the idle
      // agent's main cost; docs/PERFORMANCE.md, "Idle")
      try {
        const base = globBase(abs);
        const rest = abs.slice(base.length).replace(/^\/+/, '');
        for (const p of await glob(rest, { cwd: base, onlyFiles: true, expandDirectories: false })) {
          paths.push(join(base, p));
        }
      } catch {
        // a base directory that does not exist yet matches nothing
      }
      paths.sort();
    } else {
      paths.push(abs);
    }
    for (const path of paths) {
      if (skip?.(path)) continue;
      try {
        const st = await stat(path);
        if (!st.isFile()) continue;
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ path, dev: st.dev, ino: st.ino, size: st.size, birthMs: st.birthtimeMs || 0 });
      } catch {
        // vanished between listing and stat, or unreadable: the next scan sees it again
      }
    }
  }
  return out;
}
