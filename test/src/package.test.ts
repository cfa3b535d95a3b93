/**
 * What `npm pack` ships (package.json "files") is enough for a user:
 * every module the shipped code requires, and every module its declaration
 * files (.d.ts, what a TypeScript user compiles against) import, is shipped
 * itself, a node builtin, or a dependency — not a devDependency, which a
 * user of the package does not get.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

const DIST = path.resolve(__dirname, '../..');
const REPO = path.resolve(DIST, '..');
const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
  version: string;
  files: string[];
  main: string;
  types: string;
  dependencies: Record<string, string>;
};

function files(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) files(p, out);
    else if (/\.(js|d\.ts)$/.test(e.name)) out.push(p);
  }
  return out;
}

/** The package a bare specifier names ('@types/x/y' → '@types/x', 'zstd-napi/binding' → 'zstd-napi'). */
function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

test('everything the shipped code and its types import is shipped, a builtin or a dependency (not a devDependency)', () => {
  const shipped = pkg.files.map((f) => path.join(REPO, f));
  assert.ok(shipped.some((d) => path.join(REPO, pkg.main).startsWith(d)), 'main is shipped');
  assert.ok(shipped.some((d) => path.join(REPO, pkg.types).startsWith(d)), 'types are shipped');
  const problems: string[] = [];
  for (const dir of shipped) {
    for (const f of files(dir)) {
      const text = readFileSync(f, 'utf8');
      for (const [, spec] of text.matchAll(/(?:\bfrom\s*|\brequire\(\s*|\bimport\(\s*)['"]([^'"]+)['"]/g)) {
        if (spec!.startsWith('.')) {
          const target = path.resolve(path.dirname(f), spec!);
          if (!shipped.some((d) => target.startsWith(d + path.sep))) problems.push(`${path.relative(REPO, f)} imports ${spec}, which is not shipped`);
          continue;
        }
        if (spec!.startsWith('node:') || builtinModules.includes(spec!)) continue;
        const name = packageOf(spec!);
        // A .d.ts importing 'pg' needs its types: pg's own or @types/pg.
        const ok = name in pkg.dependencies && (!f.endsWith('.d.ts') || hasTypes(name));
        if (!ok) problems.push(`${path.relative(REPO, f)} imports ${spec}, but ${f.endsWith('.d.ts') ? `neither it nor @types/${name}` : name} is a dependency`);
      }
    }
  }
  assert.deepEqual([...new Set(problems)], []);
});

function hasTypes(name: string): boolean {
  if (`@types/${name}` in pkg.dependencies) return true;
  const own = JSON.parse(readFileSync(path.join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { types?: string; typings?: string };
  return Boolean(own.types ?? own.typings);
}

test('the command runs as installed, through its shebang: every Node option there is one this Node accepts', () => {
  const bin = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')).bin as Record<string, string>;
  const cli = path.join(REPO, bin.pgbb!);
  const shebang = readFileSync(cli, 'utf8').split('\n')[0]!;
  assert.match(shebang, /^#!\/usr\/bin\/env -S node( --[a-z-]+=\d+)*$/);
  // Run as the executable (not `node cli.js`, which would skip the shebang's options).
  const out = execFileSync(cli, ['--version'], { encoding: 'utf8' });
  assert.equal(out.trim(), pkg.version);
});
