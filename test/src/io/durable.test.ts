import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoError } from '../../../src/errors';
import { clearName, renameDurably, syncPaths, syncTree, writeDurably, writeNewFile } from '../../../src/io/durable';
import { SafeTree } from '../../../src/io/safe-tree';

function sandbox(): { outer: string; root: string } {
  const outer = mkdtempSync(join(tmpdir(), 'pgbb-durable-'));
  const root = join(outer, 'root');
  mkdirSync(root);
  return { outer, root };
}

function orHang<T>(p: Promise<T>): Promise<T | 'hung'> {
  return Promise.race([p, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 2000).unref())]);
}

test('the fsync pass does not hang on a FIFO swapped in where a file was', async () => {
  const { outer } = sandbox();
  try {
    execFileSync('mkfifo', [join(outer, 'was-a-file')]);
    const settled = syncPaths([join(outer, 'was-a-file'), outer]).then(
      () => 'done',
      () => 'failed',
    );
    assert.notEqual(await orHang(settled), 'hung');
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('syncPaths: a path that cannot be opened is one IoError naming it; a walk (async iterable) is synced too', async () => {
  const { outer, root } = sandbox();
  try {
    await assert.rejects(syncPaths([root, join(root, 'gone')]), (e: unknown) => e instanceof IoError && e.message.startsWith(`could not fsync "${join(root, 'gone')}"`));
    async function* some() {
      yield root;
      yield outer;
    }
    await syncPaths(some(), 1);
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('syncTree walks everything below the root and follows no link (dangling, to a FIFO, to a directory)', async () => {
  const { outer, root } = sandbox();
  try {
    mkdirSync(join(root, 'base/1'), { recursive: true });
    for (let i = 0; i < 50; i++) writeFileSync(join(root, `base/1/${i}`), 'x');
    execFileSync('mkfifo', [join(outer, 'pipe')]);
    symlinkSync(join(outer, 'pipe'), join(root, 'to-pipe'));
    symlinkSync('/nonexistent/at/all', join(root, 'dangling'));
    symlinkSync(outer, join(root, 'loop'));
    execFileSync('mkfifo', [join(root, 'fifo')]);
    assert.equal(await orHang(syncTree(root).then(() => 'done')), 'done');
    await assert.rejects(syncTree(join(root, 'missing')), IoError);
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('writeDurably: a link planted at the temporary name is removed, never written through', async () => {
  const { outer, root } = sandbox();
  try {
    const victim = join(outer, 'victim');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, join(root, 'backup_manifest.tmp'));
    const tree = new SafeTree(root, true);
    await writeDurably(tree, 'backup_manifest', Buffer.from('new'), true);
    assert.equal(readFileSync(join(root, 'backup_manifest'), 'utf8'), 'new');
    assert.equal(lstatSync(join(root, 'backup_manifest')).mode & 0o777, 0o600);
    assert.ok(!existsSync(join(root, 'backup_manifest.tmp')));
    assert.equal(readFileSync(victim, 'utf8'), 'precious');
    // A directory in the way of the temporary name goes too (with --no-sync: same steps, no fsync).
    mkdirSync(join(root, 'map.tmp/sub'), { recursive: true });
    await writeDurably(tree, 'map', Buffer.from('m'), false, { mode: 0o640 });
    assert.equal(readFileSync(join(root, 'map'), 'utf8'), 'm');
    assert.equal(lstatSync(join(root, 'map')).mode & 0o777, 0o640);
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('writeDurably refuses a parent that is a link; the error names the file', async () => {
  const { outer, root } = sandbox();
  try {
    mkdirSync(join(outer, 'elsewhere'));
    symlinkSync(join(outer, 'elsewhere'), join(root, 'global'));
    const tree = new SafeTree(root, true);
    await assert.rejects(writeDurably(tree, 'global/pg_control', Buffer.from('x'), true), (e: unknown) => e instanceof IoError && /symbolic link/.test(e.message));
    assert.ok(!existsSync(join(outer, 'elsewhere/pg_control.tmp')));
    assert.ok(!existsSync(join(outer, 'elsewhere/pg_control')));
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('renameDurably replaces a link at the destination (the link\'s target is untouched)', async () => {
  const { outer, root } = sandbox();
  try {
    const victim = join(outer, 'victim');
    writeFileSync(victim, 'precious');
    mkdirSync(join(root, 'global'));
    writeFileSync(join(root, 'global/pg_control.pgbb-new'), 'control');
    symlinkSync(victim, join(root, 'global/pg_control'));
    const tree = new SafeTree(root, true);
    await renameDurably(tree, 'global/pg_control.pgbb-new', 'global/pg_control', true);
    assert.ok(lstatSync(join(root, 'global/pg_control')).isFile());
    assert.equal(readFileSync(join(root, 'global/pg_control'), 'utf8'), 'control');
    assert.equal(readFileSync(victim, 'utf8'), 'precious');
    await assert.rejects(renameDurably(tree, 'global/absent', 'global/x', false), (e: unknown) => e instanceof IoError && e.message.startsWith('could not rename into place'));
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('clearName says what was there and removes it without following it', async () => {
  const { outer, root } = sandbox();
  try {
    const tree = new SafeTree(root, true);
    writeFileSync(join(outer, 'victim'), 'precious');
    symlinkSync(join(outer, 'victim'), join(root, 'l'));
    writeFileSync(join(root, 'f'), '');
    assert.equal(await clearName(tree, 'none'), 'none');
    assert.equal(await clearName(tree, 'f'), 'file');
    assert.equal(await clearName(tree, 'l'), 'other');
    assert.equal(readFileSync(join(outer, 'victim'), 'utf8'), 'precious');
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('writeNewFile: a new 0600 file from a string or pieces; never over a name that exists, never through a link', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-durable-new-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await writeNewFile(join(dir, 'a'), 'text\n', true);
  await writeNewFile(join(dir, 'b'), [Buffer.from('one '), Buffer.from('two')], false);
  assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'text\n');
  assert.equal(readFileSync(join(dir, 'b'), 'utf8'), 'one two');
  assert.equal(lstatSync(join(dir, 'a')).mode & 0o777, 0o600);
  await assert.rejects(writeNewFile(join(dir, 'a'), 'again', true), (e: unknown) =>
    e instanceof IoError && e.message.startsWith(`could not create "${join(dir, 'a')}"`) && (e.cause as NodeJS.ErrnoException).code === 'EEXIST');
  assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'text\n');
  writeFileSync(join(dir, 'outside'), 'kept');
  symlinkSync(join(dir, 'outside'), join(dir, 'link'));
  await assert.rejects(writeNewFile(join(dir, 'link'), 'through', true), IoError);
  assert.equal(readFileSync(join(dir, 'outside'), 'utf8'), 'kept');
});
