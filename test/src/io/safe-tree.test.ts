import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoError, TarFormatError } from '../../../src/errors';
import { pathComponents, SafeTree } from '../../../src/io/safe-tree';

function sandbox(): { outer: string; root: string } {
  const outer = mkdtempSync(join(tmpdir(), 'pgbb-st-'));
  const root = join(outer, 'target');
  mkdirSync(root);
  return { outer, root };
}

test('plain relative paths only', () => {
  for (const bad of ['', '/etc/passwd', '../x', 'a/../../x', 'a//b', './a', 'a/./b', '..']) {
    assert.throws(() => pathComponents(bad), TarFormatError, bad);
  }
  assert.deepEqual(pathComponents('base/1/'), ['base', '1']);
});

test('fresh tree: links the archive made are never parents (a -> ., a/b -> .., b/x)', async () => {
  const { outer, root } = sandbox();
  try {
    const t = new SafeTree(root);
    await t.symlink('a', '.');
    // a/b would be created through the link a: its parent is not a directory this run made.
    await assert.rejects(t.symlink('a/b', '..'), (e: unknown) => e instanceof IoError && /not a directory this run created/.test(e.message));
    symlinkSync('..', join(root, 'b')); // as if it had been made anyway
    await assert.rejects(t.createFile('b/x', 0o600), IoError);
    await assert.rejects(t.mkdir('b', 0o700), IoError);
    await t.mkdir('d', 0o700);
    await t.mkdir('d', 0o700); // met again: fine
    await (await t.createFile('d/f', 0o600)).close();
    await assert.rejects(t.createFile('d/f', 0o600), IoError); // O_EXCL
    assert.deepEqual(readdirSync(outer), ['target']);
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('existing tree: a planted directory link is refused, a real directory verified once; O_NOFOLLOW on the last component', async () => {
  const { outer, root } = sandbox();
  try {
    const elsewhere = join(outer, 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'victim'), 'keep');
    mkdirSync(join(root, 'base'));
    writeFileSync(join(root, 'base', 'f'), 'old');
    symlinkSync(elsewhere, join(root, 'global'));
    symlinkSync(join(elsewhere, 'victim'), join(root, 'base', 'g'));
    const t = new SafeTree(root, true);
    await assert.rejects(t.openExisting('global/victim'), (e: unknown) => e instanceof IoError && /symbolic link/.test(e.message));
    await assert.rejects(t.createFile('global/new', 0o600), IoError);
    await assert.rejects(t.openExisting('base/g'), IoError);
    const fh = await t.openExisting('base/f');
    await fh.close();
    assert.equal(existsSync(join(elsewhere, 'new')), false);
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('existing tree: a file with another hard link is not updated in place (the other name, maybe outside, would change too)', async () => {
  const { outer, root } = sandbox();
  try {
    mkdirSync(join(root, 'base'));
    writeFileSync(join(outer, 'other-copy'), 'keep');
    linkSync(join(outer, 'other-copy'), join(root, 'base', 'f')); // cp -al, or someone's file
    const t = new SafeTree(root, true);
    await assert.rejects(t.openExisting('base/f'), (e: unknown) => e instanceof IoError && /"[^"]*base\/f" has 2 hard links: refusing to update it in place/.test(e.message));
    await assert.rejects(t.openExisting('base/f', true), IoError);
    assert.equal(readFileSync(join(outer, 'other-copy'), 'utf8'), 'keep');
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('createFileSync: the same refusals as createFile (parents this run made, O_EXCL, O_NOFOLLOW), as a bare descriptor', async () => {
  const { closeSync, writeSync } = await import('node:fs');
  const { outer, root } = sandbox();
  try {
    const fresh = new SafeTree(root);
    await fresh.symlink('a', '.');
    assert.throws(() => fresh.createFileSync('a/x', 0o600), (e: unknown) => e instanceof IoError && /"a" is not a directory this run created/.test(e.message));
    await fresh.mkdir('d', 0o700);
    const fd = fresh.createFileSync('d/f', 0o600);
    writeSync(fd, 'new');
    closeSync(fd);
    assert.equal(readFileSync(join(root, 'd/f'), 'utf8'), 'new');
    assert.throws(() => fresh.createFileSync('d/f', 0o600), (e: unknown) => e instanceof IoError && /could not create file/.test(e.message)); // O_EXCL
    symlinkSync(join(outer, 'victim'), join(root, 'd/g'));
    assert.throws(() => fresh.createFileSync('d/g', 0o600), IoError); // a link at the name: not created through
    assert.equal(existsSync(join(outer, 'victim')), false);
    assert.throws(() => fresh.createFileSync('../x', 0o600), TarFormatError);
    // An existing tree verifies a real directory on disk, and refuses a planted link as a parent.
    const elsewhere = join(outer, 'elsewhere');
    mkdirSync(elsewhere);
    mkdirSync(join(root, 'base'));
    symlinkSync(elsewhere, join(root, 'global'));
    const existing = new SafeTree(root, true);
    closeSync(existing.createFileSync('base/new', 0o600));
    assert.throws(() => existing.createFileSync('global/new', 0o600), (e: unknown) => e instanceof IoError && /is a symbolic link, refusing to follow it/.test(e.message));
    assert.throws(() => existing.createFileSync('missing/new', 0o600), (e: unknown) => e instanceof IoError && /could not stat/.test(e.message));
    assert.deepEqual(readdirSync(elsewhere), []);
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});
