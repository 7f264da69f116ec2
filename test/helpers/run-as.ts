// Running the CLI as another user. Root reads every file, so a permission test run as root (CI,
// containers) runs the CLI as `nobody`; the checkout may live under a 0700 home that `nobody` cannot
// enter, so it gets its own copy of what the CLI needs in a world-readable temp dir.
import {
  chmod,
  copyFile,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readlink,
  rm,
  symlink,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, type RunAs } from './cli.ts';

/** `nobody`'s uid and gid on Debian-like systems and in most container images */
export const NOBODY = 65534;

/** What bin/logferry.js loads: dist/ for the code, node_modules/ for dependencies, package.json for --version. */
const APP = ['bin', 'dist', 'node_modules', 'package.json'];

/**
 * A world-readable copy of the node binary and the built CLI, for `uid`/`gid` to run. Build first
 * (the integration tests' global setup does); `cleanup` removes the copy.
 */
export async function shareCli(
  uid = NOBODY,
  gid = NOBODY,
): Promise<{ user: RunAs; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'logferry-app-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    await chmod(dir, 0o755);
    // the running node may be installed under /root, out of nobody's reach
    await share(process.execPath, join(dir, 'node'), 0o755);
    await Promise.all(APP.map((name) => share(join(ROOT, name), join(dir, name), 0o644)));
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { user: { uid, gid, node: join(dir, 'node'), bin: join(dir, 'bin', 'logferry.js') }, cleanup };
}

/**
 * Puts a copy of `src` at `dst` that others can use as `mode` says. Directories are made fresh
 * (0755), symbolic links copied as they are (node_modules/.bin's are relative), and files
 * hard-linked when their own mode already lets others in: node_modules holds some 16,000 files and
 * linking them is quick where copying is not. A link shares the file's mode, so a file others cannot
 * read is copied instead, as is one on another file system (EXDEV) or one the kernel will not let us
 * link (EPERM, fs.protected_hardlinks).
 */
async function share(src: string, dst: string, mode: number): Promise<void> {
  const st = await lstat(src);
  if (st.isDirectory()) {
    await mkdir(dst);
    // mkdir's mode is masked by the umask
    await chmod(dst, 0o755);
    await Promise.all((await readdir(src)).map((name) => share(join(src, name), join(dst, name), mode)));
    return;
  }
  if (st.isSymbolicLink()) {
    await symlink(await readlink(src), dst);
    return;
  }
  const others = mode & 0o007;
  if ((st.mode & others) === others) {
    try {
      await link(src, dst);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM') throw err;
    }
  }
  await copyFile(src, dst);
  await chmod(dst, (st.mode & 0o777) | mode);
}
