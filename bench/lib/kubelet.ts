// kubelet's on-disk layout of container logs and its rotation of them, for the agent scenarios:
// logferry follows `/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log`, Fluent Bit (as its Helm
// chart deploys it) the symlinks kubelet keeps in `/var/log/containers/`.
import { createReadStream, createWriteStream, mkdirSync, renameSync, symlinkSync } from 'node:fs';
import { mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { containerId } from './bench-kube.ts';
import { CACHE_DIR, type CriTree, type TreeFile } from './workload.ts';

export interface KubeletLayout {
  /** the directory above `var/log` (Fluent Bit's ROOT) */
  root: string;
  /** the pods tree logferry is pointed at (`--pods-dir`) */
  podsDir: string;
  /** `<root>/var/log/containers`, kubelet's symlinks */
  containersDir: string;
  /** where each tree file's 0.log is in this layout, in the tree's order */
  logs: string[];
  cleanup(): Promise<void>;
}

/** kubelet's symlink name: `<pod>_<namespace>_<container>-<container id>.log`. */
export function containerLogName(f: Pick<TreeFile, 'pod' | 'namespace' | 'container' | 'uid'>): string {
  return `${f.pod}_${f.namespace}_${f.container}-${containerId(f.uid)}.log`;
}

/**
 * A fresh `<root>/var/log/{pods,containers}` for a tree, in a temporary directory. By default the
 * tree stays where the cache keeps it: `var/log/pods` is a symlink to it and `podsDir` is the tree
 * itself. `empty`: `var/log/pods` is a real directory holding the tree's pod and container
 * directories but no files, for writers to fill (the steady scenario). Either way every
 * `containers/` link points at `<root>/var/log/pods/.../0.log`, as kubelet's point at
 * `/var/log/pods/...`.
 */
export async function kubeletLayout(tree: CriTree, empty = false): Promise<KubeletLayout> {
  mkdirSync(CACHE_DIR, { recursive: true });
  const root = await mkdtemp(join(CACHE_DIR, 'root-'));
  const varLog = join(root, 'var/log');
  const containersDir = join(varLog, 'containers');
  const pods = join(varLog, 'pods');
  mkdirSync(containersDir, { recursive: true });
  if (!empty) symlinkSync(tree.dir, pods);
  const logs = tree.files.map((f) => {
    const log = join(pods, relative(tree.dir, f.path));
    if (empty) mkdirSync(dirname(log), { recursive: true });
    symlinkSync(log, join(containersDir, containerLogName(f)));
    return log;
  });
  return {
    root,
    podsDir: empty ? pods : tree.dir,
    containersDir,
    logs,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** kubelet's suffix for a rotated file: local time, `20060102-150405`. */
export function rotationStamp(now: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
}

/**
 * The first half of kubelet's rotation of a container log (container_log_manager.go, rotateLog),
 * done while the runtime keeps appending to `log`: delete rotated files beyond `maxFiles - 2` (the
 * live file and the one about to be rotated are not counted), then gzip every rotated file not yet
 * compressed (to `.gz.tmp`, renamed to `.gz`, the plain file removed). Then `rotateLatest`.
 */
export async function prepareRotation(
  log: string,
  maxFiles: number,
): Promise<{ deleted: number; gzipped: number }> {
  const dir = dirname(log);
  const prefix = `${basename(log)}.`;
  const rotated = (await readdir(dir)).filter((f) => f.startsWith(prefix) && !f.endsWith('.tmp')).sort();
  const excess = Math.max(0, rotated.length - Math.max(0, maxFiles - 2));
  for (const f of rotated.slice(0, excess)) await rm(join(dir, f), { force: true });
  let gzipped = 0;
  for (const f of rotated.slice(excess)) {
    if (f.endsWith('.gz')) continue;
    const plain = join(dir, f);
    await pipeline(createReadStream(plain), createGzip(), createWriteStream(`${plain}.gz.tmp`));
    await rename(`${plain}.gz.tmp`, `${plain}.gz`);
    await rm(plain, { force: true });
    gzipped++;
  }
  return { deleted: excess, gzipped };
}

/** The second half: `log` renamed to `log.<stamp>` (the caller reopens `log`, as the runtime does). */
export function rotateLatest(log: string, now: Date): string {
  const to = `${log}.${rotationStamp(now)}`;
  renameSync(log, to);
  return to;
}
