import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, matchesGlob, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execForm, imageReference, instructions, parseDockerfile, type Stage } from './dockerfile.ts';
import { ROOT, readText } from './k8s-files.ts';

// No Docker engine runs these tests: they read the Dockerfile and hold it to what the image must be.

const dockerfile = parseDockerfile(readText('Dockerfile'));
const final = dockerfile.stages.at(-1)!;
const build = dockerfile.stages.find((s) => s.name === 'build')!;
const pkg = JSON.parse(readText('package.json')) as {
  version: string;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

function runs(stage: Stage): string[] {
  return stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args.replace(/\s+/g, ' '));
}

function last(stage: Stage, keyword: string) {
  return stage.instructions.filter((i) => i.keyword === keyword).at(-1);
}

const ignorePatterns = readText('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

/** Whether .dockerignore keeps a path (relative to the context) out; simple patterns, no `!` exceptions. */
function ignored(path: string): boolean {
  return ignorePatterns.some((p) => {
    const pattern = p.replace(/^\/+|\/+$/g, '');
    return path === pattern || path.startsWith(`${pattern}/`) || matchesGlob(path, pattern);
  });
}

describe('Dockerfile parser', () => {
  it('joins continued lines and drops comments inside them', () => {
    const parsed = instructions('# c\nRUN a \\\n # inner\n  && b\n\nUSER 1000\n');
    expect(parsed).toEqual([
      { keyword: 'RUN', args: 'a    && b', line: 2 },
      { keyword: 'USER', args: '1000', line: 6 },
    ]);
  });

  it('reads image references', () => {
    expect(imageReference('node:24.21.0-bookworm-slim')).toMatchObject({
      name: 'node',
      tag: '24.21.0-bookworm-slim',
    });
    expect(imageReference('localhost:5000/node')).toMatchObject({
      name: 'localhost:5000/node',
      tag: undefined,
    });
    expect(imageReference('node@sha256:abc')).toMatchObject({
      name: 'node',
      tag: undefined,
      digest: 'sha256:abc',
    });
  });
});

describe('Dockerfile', () => {
  it('is multi-stage: a build stage, then the runtime stage', () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(['build', 'runtime']);
  });

  it.each(dockerfile.stages.map((s) => [s.name, s.image]))(
    'stage %s: %s is a pinned Node 24 image',
    (_name, image) => {
      const ref = imageReference(image);
      expect(ref.name).toBe('node');
      expect(ref.tag).toBeDefined();
      expect(ref.tag).not.toBe('latest');
      // a full patch version, not a moving major or minor tag
      expect(ref.tag).toMatch(/^24\.\d+\.\d+-[a-z]+(-slim)?$/);
    },
  );

  it('the build stage installs every dependency and runs the build script', () => {
    expect(runs(build)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^npm ci\b/), 'npm run build']),
    );
    expect(runs(build).find((r) => r.startsWith('npm ci'))).not.toMatch(/--omit/);
    expect(pkg.scripts.build).toBeDefined();
  });

  it('the runtime stage installs production dependencies only, and copies the build output', () => {
    const install = runs(final).filter((r) => /\bnpm (ci|install|i)\b/.test(r));
    expect(install).toHaveLength(1);
    expect(install[0]).toMatch(/^npm ci --omit=dev\b/);
    expect(runs(final).join('\n')).not.toMatch(/npm run build/);
    const copies = final.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    expect(copies).toContain('--from=build /src/dist ./dist');
  });

  it('the runtime stage installs tini and no compilers or build tools', () => {
    const apt = runs(final).filter((r) => /apt-get install/.test(r));
    expect(apt).toHaveLength(1);
    const packages = apt[0]!
      .split('apt-get install')[1]!
      .split('&&')[0]!
      .split(/\s+/)
      .filter((w) => w !== '' && !w.startsWith('-'));
    expect(packages).toEqual(['tini']);
    expect(runs(final).join('\n')).toMatch(/rm -rf \/var\/lib\/apt\/lists/);
  });

  it('runs as a non-root user by default', () => {
    const user = last(final, 'USER');
    expect(user).toBeDefined();
    expect(user!.args.split(':')[0]).not.toMatch(/^(0|root)$/);
    expect(user!.args).toBe('1000:1000');
  });

  it('its entrypoint is tini running `logferry agent`, in exec form', () => {
    const entrypoint = execForm(last(final, 'ENTRYPOINT')!);
    expect(entrypoint[0]).toMatch(/(^|\/)tini$/);
    expect(entrypoint[1]).toBe('--');
    expect(entrypoint.slice(2)).toEqual(['node', '/app/bin/logferry.js', 'agent']);
    expect(last(final, 'WORKDIR')?.args).toBe('/app');
    expect(execForm(last(final, 'CMD')!)).toEqual([]);
  });

  it('every file it copies from the context exists and is not excluded by .dockerignore', () => {
    const sources = dockerfile.stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src', 'bin']));
    for (const source of sources) {
      expect(existsSync(join(ROOT, source)), source).toBe(true);
      expect(ignored(source), source).toBe(false);
    }
  });
});

describe('.dockerignore', () => {
  it.each(['node_modules', 'dist', '.git', 'test'])('excludes %s', (path) => {
    expect(ignorePatterns).toContain(path);
  });

  it.each(['bench', 'coverage', 'README.md', 'k8s'])('keeps %s out of the build context too', (path) => {
    expect(ignored(path)).toBe(true);
  });
});

describe('what the runtime stage installs is what the agent imports', () => {
  const sourceFiles = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
    );
  const builtins = new Set(builtinModules);

  it('every package imported at run time by src/ is a production dependency', () => {
    const missing: string[] = [];
    for (const file of sourceFiles(join(ROOT, 'src'))) {
      const text = readFileSync(file, 'utf8');
      // `import type` is erased; with verbatimModuleSyntax every other import stays in the output
      const imports =
        /^(?:import|export)\s+(?!type\s)[^;'"`]*?from\s+'([^']+)'|^import\s+'([^']+)'|import\('([^']+)'\)/gm;
      for (const m of text.matchAll(imports)) {
        const specifier = (m[1] ?? m[2] ?? m[3])!;
        if (specifier.startsWith('.') || specifier.startsWith('node:') || builtins.has(specifier)) continue;
        const name = specifier
          .split('/')
          .slice(0, specifier.startsWith('@') ? 2 : 1)
          .join('/');
        if (pkg.dependencies[name] === undefined) missing.push(`${relative(ROOT, file)}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('puts `logferry` on the PATH (for `kubectl exec ... -- logferry top`), as root, before USER', () => {
    const at = final.instructions.findIndex((i) => i.keyword === 'RUN' && /\bln -s\b/.test(i.args));
    expect(at, 'a RUN ln -s').toBeGreaterThanOrEqual(0);
    expect(final.instructions[at]!.args).toBe('ln -s /app/bin/logferry.js /usr/local/bin/logferry');
    const copyBin = final.instructions.findIndex((i) => i.keyword === 'COPY' && i.args === 'bin ./bin');
    const user = final.instructions.findIndex((i) => i.keyword === 'USER');
    expect(copyBin).toBeGreaterThanOrEqual(0);
    expect(copyBin).toBeLessThan(at);
    expect(at).toBeLessThan(user);
    // the link target runs by itself: executable in git (COPY keeps the mode) and a node shebang
    expect(
      execFileSync('git', ['ls-files', '-s', 'bin/logferry.js'], { cwd: ROOT, encoding: 'utf8' }),
    ).toMatch(/^100755 /);
    expect(readText('bin', 'logferry.js').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('bin/logferry.js loads the build output, which the runtime stage copies', () => {
    const bin = readText('bin', 'logferry.js');
    expect(bin).toMatch(/import\('\.\.\/dist\/cli\/main\.js'\)/);
    expect(bin).toMatch(/from '\.\.\/dist\/cli\/runtime\.js'/);
  });
});
