/**
 * Target directories: refuse a non-empty one, remember whether we created it,
 * and on failure remove what we created (or empty what was empty before), so
 * a failed backup never leaves something that looks like a backup.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { IoError, TargetNotEmptyError, TarFormatError, ioError } from '../src/errors';

export { ioError };

export interface PreparedDir {
  path: string;
  /** True when pgbb created the directory (and so removes it on failure). */
  created: boolean;
}

/** Makes sure `dir` exists and is empty; creates it (mode 0700) with its parents if missing. */
export async function prepareEmptyDir(dir: string): Promise<PreparedDir> {
  const abs = path.resolve(dir);
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
  let entries: string[];
  try {
    entries = await fs.readdir(abs);
  } catch (err) {
    throw ioError('could not read directory', abs, err);
  }
  if (entries.length) throw new TargetNotEmptyError(abs);
  return { path: abs, created: false };
}

/** Undoes prepareEmptyDir: removes a directory we created, empties one we found empty. */
export async function discardDir(dir: PreparedDir): Promise<void> {
  if (dir.created) {
    await fs.rm(dir.path, { recursive: true, force: true });
    return;
  }
  let entries: string[] = [];
  try {
    entries = await fs.readdir(dir.path);
  } catch {
    return;
  }
  await Promise.all(entries.map((e) => fs.rm(path.join(dir.path, e), { recursive: true, force: true })));
}


/**
 * Joins an archive member path under `root`, refusing absolute paths and any
 * `..` that would climb out: a hostile archive must not write elsewhere.
 */
export function memberPath(root: string, member: string): string {
  if (member.startsWith('/') || member.split('/').some((p) => p === '..')) {
    throw new TarFormatError(`archive member "${member}" has an unsafe path`);
  }
  return path.join(root, member);
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

/** fsyncs every file and directory below `root` (as initdb and pg_basebackup do), a few at a time. */
export async function syncTree(root: string): Promise<void> {
  const dirs: string[] = [];
  const files: string[] = [];
  const walk = async (dir: string) => {
    dirs.push(dir);
    for (const ent of await fs.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, ent.name);
      if (ent.isDirectory()) await walk(p);
      else if (ent.isFile()) files.push(p);
    }
  };
  await walk(root);
  await syncPaths(files);
  await syncPaths(dirs.reverse());
}

export async function syncPaths(paths: string[], concurrency = 8): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const p = paths[next++];
      let fh;
      try {
        fh = await fs.open(p, 'r');
        await fh.sync();
      } catch (err) {
        throw ioError('could not fsync', p, err);
      } finally {
        await fh?.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, worker));
}
