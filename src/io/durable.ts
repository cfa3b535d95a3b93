/**
 * Every fsync pgbb makes of a path goes through here, so that "durable" means
 * one thing (a writer holding its file open — sinks/pending-file.ts, the
 * refresh journal, standby.signal — fsyncs that handle before closing it):
 *
 *   syncPaths      fsync files and directories, a few at a time
 *   syncDir        fsync one directory (after entries in it changed)
 *   syncTree       fsync everything below a root (as initdb and
 *                  pg_basebackup do): files as the walk finds them, then
 *                  the directories, deepest first
 *   writeDurably   a new file's whole content through `<name>.tmp`
 *                  (created O_EXCL|O_NOFOLLOW through a SafeTree: neither a
 *                  leftover nor a planted link is written through), fsync,
 *                  rename into place, fsync the directory
 *   renameDurably  a fully written file into place: fsync it, rename
 *                  (which replaces a link at the name, never writes through
 *                  it), fsync the directory
 *   writeNewFile   a file this run creates at a plain path (O_EXCL|O_NOFOLLOW:
 *                  never over what is there, never through a link), fsync it;
 *                  the directory is the caller's to sync, after its last file
 *
 * Opening for fsync uses O_NONBLOCK: a FIFO swapped in mid-run must not hang
 * the pass (and an fsync through a link changes nothing). With `sync` false
 * (--no-sync) the write-then-rename helpers keep their order and skip fsync.
 *
 * Errors: IoError naming the path.
 */
import { closeSync, constants, fsync, openSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ioError, PgbbError } from '../errors';
import { fsPath, showPath } from '../codec/path-bytes';
import type { SafeTree } from './safe-tree';
import { walkTree } from './walk-tree';

/**
 * fsyncs one file or directory. Opened and closed synchronously on a bare
 * descriptor (an open of a path just written is metadata in memory), the
 * fsync itself in the thread pool: one request per path, no FileHandle and
 * promises per path, whose native halves wait for a full GC (syncTree of
 * many small files).
 */
export async function syncPath(p: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = openSync(fsPath(p), constants.O_RDONLY | constants.O_NONBLOCK);
    await new Promise<void>((resolve, reject) => fsync(fd!, (err) => (err ? reject(err) : resolve())));
  } catch (err) {
    throw ioError('could not fsync', showPath(p), err);
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing to lose: the file was only opened to fsync it
  }
}

export const syncDir = syncPath;

/** fsyncs every path `paths` yields, `concurrency` at a time; a list or a walk alike. */
export async function syncPaths(paths: Iterable<string> | AsyncIterable<string>, concurrency = 8): Promise<void> {
  const it = Symbol.asyncIterator in paths ? paths[Symbol.asyncIterator]() : (paths as Iterable<string>)[Symbol.iterator]();
  let failed = false;
  const worker = async () => {
    while (!failed) {
      const r = await it.next();
      if (r.done) return;
      try {
        await syncPath(r.value);
      } catch (err) {
        failed = true; // the others stop at their next path
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** fsyncs every file and directory below `root`, and `root` itself; memory holds the directories, not the files. */
export async function syncTree(root: string): Promise<void> {
  const dirs = [root];
  async function* files() {
    for await (const e of walkTree(root, { stat: false })) {
      if (e.kind === 'file') yield e.abs;
      else if (e.kind === 'directory') dirs.push(e.abs);
    }
  }
  await syncPaths(files());
  await syncPaths(dirs.reverse());
}

/** Removes whatever is at `rel` (a leftover, or a planted link: removed, never followed); returns what was there. */
export async function clearName(tree: SafeTree, rel: string): Promise<'none' | 'file' | 'other'> {
  const r = await tree.parentOf(rel);
  const abs = tree.abs(r);
  const st = await fs.lstat(fsPath(abs)).catch(() => null);
  if (!st) return 'none';
  try {
    if (st.isDirectory()) {
      tree.forget(r);
      await fs.rm(fsPath(abs), { recursive: true, force: true });
    } else await fs.unlink(fsPath(abs));
  } catch (err) {
    throw ioError('could not remove', showPath(abs), err);
  }
  return st.isFile() ? 'file' : 'other';
}

/**
 * Creates `file` (mode 0600) and writes `data` into it, fsynced unless `sync`
 * is false. Errors: IoError "could not create" (its cause's code EEXIST when
 * something has the name) or "could not write", naming the file.
 */
export async function writeNewFile(file: string, data: string | Iterable<Buffer>, sync: boolean): Promise<void> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(fsPath(file), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw ioError('could not create', showPath(file), err);
  }
  try {
    if (typeof data === 'string') await fh.write(data);
    else for (const piece of data) await fh.write(piece);
    if (sync) await fh.sync();
  } catch (err) {
    throw ioError('could not write', showPath(file), err);
  } finally {
    await fh.close();
  }
}

export interface DurableWrite {
  /** Mode of the new file (default 0600). */
  mode?: number;
  /** First words of the error when a step fails (default 'could not write'). */
  what?: string;
}

/** Writes `data` to `rel` through a new temporary file: fsync, rename, fsync the directory (`sync` false: --no-sync, same steps without fsync). */
export async function writeDurably(tree: SafeTree, rel: string, data: Buffer, sync: boolean, o: DurableWrite = {}): Promise<void> {
  const tmp = `${rel}.tmp`;
  const abs = tree.abs(rel);
  try {
    await clearName(tree, tmp);
    const fh = await tree.createFile(tmp, o.mode ?? 0o600);
    try {
      await fh.writeFile(data);
      if (sync) await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(fsPath(tree.abs(tmp)), fsPath(abs));
    if (sync) await syncDir(path.dirname(abs));
  } catch (err) {
    throw err instanceof PgbbError ? err : ioError(o.what ?? 'could not write', showPath(abs), err);
  }
}

/** Renames the fully written file `from` to `to`, durably (both in `tree`). */
export async function renameDurably(tree: SafeTree, from: string, to: string, sync: boolean): Promise<void> {
  const abs = tree.abs(to);
  try {
    await tree.parentOf(from);
    await tree.parentOf(to);
    if (sync) await syncPath(tree.abs(from));
    await fs.rename(fsPath(tree.abs(from)), fsPath(abs));
    if (sync) await syncDir(path.dirname(abs));
  } catch (err) {
    throw err instanceof PgbbError ? err : ioError('could not rename into place', showPath(abs), err);
  }
}
