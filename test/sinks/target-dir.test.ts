/**
 * sinks/target-dir.ts: the target lock (one run per directory), the checks
 * that refuse a non-empty directory without touching it, and cleanup that
 * leaves a held lock to its owner.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { checkEmptyOrMissing, discardDir, lockTarget, prepareEmptyDir } from '../../sinks/target-dir';
import { LOCK_FILE, releaseHeldLock } from '../../src/io/target-lock';
import { TargetLockedError, TargetNotEmptyError } from '../../src/errors';

const roots: string[] = [];
after(async () => {
  for (const r of roots) await fs.rm(r, { recursive: true, force: true });
});

async function root(): Promise<string> {
  const r = await fs.mkdtemp(join(tmpdir(), 'pgbb-target-dir-'));
  roots.push(r);
  return r;
}

test('lockTarget creates a missing target (and parents) and holds it; a second lock on it is refused, the first is unharmed', async () => {
  const target = join(await root(), 'a', 'b');
  const lock = await lockTarget(target);
  assert.equal(lock.created, true);
  assert.deepEqual(await fs.readdir(target), [LOCK_FILE]);
  assert.match(await fs.readFile(join(target, LOCK_FILE), 'utf8'), new RegExp(`^${process.pid} \\d+ [0-9a-f]{32}\n$`));
  await assert.rejects(lockTarget(target), (err: unknown) => err instanceof TargetLockedError && err.code === 'target_locked');
  // A sink of the same run sees the locked directory as empty and knows the run created it.
  const prepared = await prepareEmptyDir(target);
  assert.deepEqual(prepared, { path: target, created: true });
  await fs.writeFile(join(target, 'PG_VERSION'), '15\n');
  // Another process's view: the lock says who holds it.
  await assert.rejects(checkEmptyOrMissing(target), new RegExp(`locked by another pgbb run \\(pid ${process.pid}\\)`));
  // Failure cleanup empties the directory but leaves the lock to its owner ...
  await discardDir(prepared);
  assert.deepEqual(await fs.readdir(target), [LOCK_FILE]);
  // ... whose release removes the lock and the directory it created.
  await lock.release();
  assert.ok(!existsSync(target));
  assert.ok(existsSync(join(target, '..')), 'parents stay');
});

test('a non-empty target is refused before anything is written, and left exactly as it was', async () => {
  const target = await root();
  await fs.writeFile(join(target, 'keep.txt'), 'precious');
  const before = (await fs.stat(target)).mtimeMs;
  await assert.rejects(lockTarget(target), TargetNotEmptyError);
  await assert.rejects(checkEmptyOrMissing(target), TargetNotEmptyError);
  assert.deepEqual(await fs.readdir(target), ['keep.txt']);
  assert.equal((await fs.stat(target)).mtimeMs, before, 'directory not modified');
});

test('an empty existing target: locked, then on success the sink releases the lock and the directory stays', async () => {
  const target = await root();
  const lock = await lockTarget(target);
  assert.equal(lock.created, false);
  const prepared = await prepareEmptyDir(target);
  assert.equal(prepared.created, false);
  await fs.writeFile(join(target, 'backup_manifest'), '{}');
  await releaseHeldLock(target); // what the directory sink does before its manifest
  assert.deepEqual(await fs.readdir(target), ['backup_manifest']);
  await lock.release(); // idempotent; the directory is not ours to remove
  assert.deepEqual(await fs.readdir(target), ['backup_manifest']);
  // Now a second run finds it non-empty.
  await assert.rejects(lockTarget(target), TargetNotEmptyError);
});

test('release never removes a lock another run made after ours was gone', async () => {
  const target = await root();
  const lock = await lockTarget(target);
  await fs.unlink(join(target, LOCK_FILE));
  await fs.writeFile(join(target, LOCK_FILE), '424242\n'); // someone else's, new inode
  await lock.release();
  assert.equal(await fs.readFile(join(target, LOCK_FILE), 'utf8'), '424242\n');
});

test('a stale lock (its pid is gone) is refused with a message saying how to clear it', async () => {
  const target = await root();
  // pid_max on Linux is at most 2^22: this pid cannot exist.
  await fs.writeFile(join(target, LOCK_FILE), `${2 ** 22 + 1}\n`);
  await assert.rejects(lockTarget(target), (err: Error) => {
    assert.ok(err instanceof TargetLockedError);
    assert.match(err.message, /no longer running: remove ".*\.pgbb-lock" if nothing writes there/);
    return true;
  });
  assert.deepEqual(await fs.readdir(target), [LOCK_FILE], 'nothing touched');
});

test('checkEmptyOrMissing: a missing directory is fine and is not created; a file is refused', async () => {
  const r = await root();
  await checkEmptyOrMissing(join(r, 'nope'));
  assert.ok(!existsSync(join(r, 'nope')));
  await fs.writeFile(join(r, 'file'), 'x');
  await assert.rejects(checkEmptyOrMissing(join(r, 'file')), /exists but is not a directory/);
});

test('two runs racing for one missing target: exactly one gets it', async () => {
  const target = join(await root(), 'race');
  const results = await Promise.allSettled([lockTarget(target), lockTarget(target)]);
  // Both in this process: the second sees the first's lock in `held` or on disk.
  const won = results.filter((r) => r.status === 'fulfilled');
  assert.equal(won.length, 1);
  const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  assert.ok(lost.reason instanceof TargetLockedError || lost.reason instanceof TargetNotEmptyError, String(lost.reason));
  await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof lockTarget>>>).value.release();
  // Removed if the winner made it; left empty if the loser did (then it is nobody's to remove).
  assert.ok(!existsSync(target) || (await fs.readdir(target)).length === 0);
});

test('a name that only starts like the lock\'s passing files is content: the directory holding it is not empty', async () => {
  for (const name of ['.pgbb-lock.keep', '.pgbb-lock.tmp', `.pgbb-lock.${'a'.repeat(32)}.tmp.bak`]) {
    const target = await root();
    await fs.mkdir(join(target, name));
    await fs.writeFile(join(target, name, 'file'), 'precious');
    await assert.rejects(lockTarget(target), TargetNotEmptyError, name);
    await assert.rejects(prepareEmptyDir(target), TargetNotEmptyError, name);
    await assert.rejects(checkEmptyOrMissing(target), TargetNotEmptyError, name);
    assert.equal(await fs.readFile(join(target, name, 'file'), 'utf8'), 'precious');
  }
});
