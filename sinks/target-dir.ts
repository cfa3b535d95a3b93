/**
 * Target directories: refuse a non-empty one, remember whether we created it,
 * and on failure remove what we created (or empty what was empty before), so
 * a failed backup never leaves something that looks like a backup.
 *
 * Two runs aimed at one target: `lockTarget` (the backup command calls it
 * before the sink is set up) creates `<target>/.pgbb-lock` (src/io/target-lock.ts), so
 * exactly one run gets the directory and the other is refused with
 * TargetLockedError before it contacts the server. The lock lives as long as
 * the run: prepareEmptyDir does not count the lock this process holds,
 * discardDir leaves it in place (the run still owns the directory while it
 * cleans up), and `releaseHeldLock` removes it — from the directory sink
 * just before `backup_manifest` is written (so a finished backup never holds
 * it, and pg_verifybackup sees no stray file), at the latest when the
 * command ends, which then also removes the directory if the run created it
 * and left it empty. The lock itself, its file and its API are
 * src/io/target-lock.ts's; this file only creates and checks the directory.
 *
 * A directory a PostgreSQL server runs on is refused first, before anything
 * else is looked at (LiveDataDirectoryError, code live_data_directory): a
 * mistyped `-D $PGDATA` gets that message rather than "not empty".
 *
 * Errors: LiveDataDirectoryError, TargetNotEmptyError, TargetLockedError,
 * IoError naming the path.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { IoError, TargetLockedError, TargetNotEmptyError, TarFormatError, ioError } from '../src/errors';
import { fsPath, pathFromBytes } from '../src/codec/path-bytes';
import { heldLock, isLockFileName, lockDir, lockHolder, LOCK_FILE, type TargetLock } from '../src/io/target-lock';
import { refuseInsideLiveDataDirectory, refuseLiveDataDirectory } from '../src/io/live-cluster';

export { ioError };

export interface PreparedDir {
  path: string;
  /** True when pgbb created the directory (and so removes it on failure). */
  created: boolean;
}

export type { TargetLock };

/**
 * Creates `dir` if missing (mode 0700, parents too), refuses it if it is not
 * empty (without touching it), and locks it for this run.
 */
export async function lockTarget(dir: string): Promise<TargetLock> {
  const abs = path.resolve(dir);
  if (heldLock(abs)) throw new TargetLockedError(abs, `pid ${process.pid}, this process`);
  await refuseInsideLiveDataDirectory(abs, 'write into it');
  let created = false;
  try {
    await fs.mkdir(abs, { mode: 0o700 });
    created = true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      // Parents first; the leaf itself non-recursively, so we know whether we made it.
      try {
        await fs.mkdir(path.dirname(abs), { recursive: true, mode: 0o700 });
        await fs.mkdir(abs, { mode: 0o700 });
        created = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('could not create directory', abs, e);
      }
    } else if (code !== 'EEXIST') {
      throw ioError('could not create directory', abs, err);
    }
  }
  if (!created) await checkEmpty(abs);
  let lock: TargetLock;
  try {
    lock = await lockDir(abs, created);
  } catch (err) {
    // E.g. out of descriptors (EMFILE): the directory we just made goes too (only if still empty).
    if (created) await fs.rmdir(abs).catch(() => {});
    throw err;
  }
  // Checked again now that we hold the lock: another run may have written between our two steps.
  const others = (await fs.readdir(abs).catch(() => [] as string[])).filter((e) => !isLockFileName(e));
  if (others.length) {
    await lock.release();
    throw new TargetNotEmptyError(abs);
  }
  return {
    ...lock,
    release: async () => {
      await lock.release();
      if (created) await fs.rmdir(abs).catch(() => {}); // only if empty: a failed run's leftovers are gone by now
    },
  };
}

/** Refuses a live data directory; a path that is not a directory is left to the checks that follow. */
async function refuseLive(abs: string): Promise<void> {
  try {
    await refuseLiveDataDirectory(abs, 'write into it');
  } catch (err) {
    if (((err as IoError).cause as NodeJS.ErrnoException | undefined)?.code !== 'ENOTDIR') throw err;
  }
}

async function checkEmpty(abs: string): Promise<void> {
  await refuseLive(abs);
  let st;
  try {
    st = await fs.stat(abs);
  } catch (err) {
    throw ioError('could not access directory', abs, err);
  }
  if (!st.isDirectory()) throw new IoError(`"${abs}" exists but is not a directory`);
  let entries: string[];
  try {
    entries = await fs.readdir(abs);
  } catch (err) {
    throw ioError('could not read directory', abs, err);
  }
  // Another run's lock: say so, rather than "not empty" (which is also true once it writes).
  // The lock module's passing files (a lock being created) are not content.
  entries = entries.filter((e) => e === LOCK_FILE || !isLockFileName(e));
  if (entries.includes(LOCK_FILE)) throw new TargetLockedError(abs, await lockHolder(path.join(abs, LOCK_FILE)));
  if (entries.length) throw new TargetNotEmptyError(abs);
}

/**
 * Refuses `dir` if it exists and is not an empty directory; touches nothing
 * and creates nothing. For -T targets, checked before the server is contacted.
 */
export async function checkEmptyOrMissing(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  await refuseInsideLiveDataDirectory(abs, 'write into it');
  try {
    await fs.stat(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError('could not access directory', abs, err);
  }
  await checkEmpty(abs);
}

/** Makes sure `dir` exists and is empty; creates it (mode 0700) with its parents if missing. */
export async function prepareEmptyDir(dir: string): Promise<PreparedDir> {
  const abs = path.resolve(dir);
  // The directory itself is checked by checkEmpty, below, when it exists and no lock of ours vouches for it.
  await refuseInsideLiveDataDirectory(abs, 'write into it');
  const lock = heldLock(abs);
  if (lock) {
    // lockTarget made and checked it; only our own lock file may be in it.
    const entries = (await fs.readdir(abs).catch((err) => {
      throw ioError('could not read directory', abs, err);
    })).filter((e) => !isLockFileName(e));
    if (entries.length) throw new TargetNotEmptyError(abs);
    return { path: abs, created: lock.created };
  }
  let st;
  try {
    st = await fs.stat(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('could not access directory', abs, err);
    try {
      await fs.mkdir(abs, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw ioError('could not create directory', abs, e);
    }
    return { path: abs, created: true };
  }
  if (!st.isDirectory()) throw new IoError(`"${abs}" exists but is not a directory`);
  await checkEmpty(abs);
  return { path: abs, created: false };
}

/**
 * Undoes prepareEmptyDir: removes a directory we created, empties one we
 * found empty. A lock this process holds stays (with its directory): the
 * lock's release finishes the job.
 */
export async function discardDir(dir: PreparedDir): Promise<void> {
  const lock = heldLock(dir.path);
  if (dir.created && !lock) {
    await fs.rm(dir.path, { recursive: true, force: true });
    return;
  }
  let entries: string[] = [];
  try {
    // Names as bytes (src/codec/path-bytes.ts): a name that is not UTF-8 must go too.
    entries = (await fs.readdir(dir.path, { encoding: 'buffer' })).map((b) => pathFromBytes(b));
  } catch {
    return;
  }
  if (lock) entries = entries.filter((e) => e !== LOCK_FILE);
  await Promise.all(entries.map((e) => fs.rm(fsPath(path.join(dir.path, e)), { recursive: true, force: true })));
}

/**
 * A symlink inside the data directory must stay inside it: relative, and not
 * climbing above the directory it lives in's root. (Only pg_tblspc links,
 * which the sink itself points, may lead out.)
 */
export function checkSymlinkTarget(member: string, target: string): void {
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(member), target));
  if (!target || target.startsWith('/') || resolved === '..' || resolved.startsWith('../')) {
    throw new TarFormatError(`symlink "${member}" points outside the data directory ("${target}")`);
  }
}
