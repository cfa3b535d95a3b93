/**
 * OwnFiles: the files and directories a WAL spool creates, created so that
 * nothing someone else put there is followed or clobbered, and remembered so
 * that a failed run takes back exactly what it made.
 *
 *   ensureDir(dir)       a real directory (made 0700 — 0750 in a group-readable
 *                        cluster — if missing; a symlink or
 *                        file in its place is refused)
 *   create(p, content)   unlinks a leftover of that name (a killed run's
 *                        `.partial`, or a planted link), then O_CREAT|O_EXCL|
 *                        O_NOFOLLOW, 0600 (0640 group-readable); writes `content` and closes, or
 *                        (null) returns the open fd. A regular file that was
 *                        there is replaced but not taken back on failure.
 *   rename(from, to)     a finished file into place; when `to` already was a
 *                        file (a refreshed backup's own segment, now holding
 *                        the same WAL and more) it is no longer ours to remove
 *   removeAll()          unlinks files and removes (empty) directories made,
 *                        newest first; what is gone already is fine
 * Errors: IoError naming the path.
 */
import { closeSync, constants, lstatSync, mkdirSync, openSync, renameSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { ioError, IoError } from '../errors';

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function isFile(p: string): boolean {
  try {
    return lstatSync(p).isFile();
  } catch {
    return false;
  }
}

export class OwnFiles {
  private readonly made: { path: string; dir: boolean }[] = [];

  /** The cluster's modes (PostgreSQL's data_directory_mode): owner-only, or group-readable. */
  constructor(private readonly modes: { dir: number; file: number } = { dir: 0o700, file: 0o600 }) {}

  ensureDir(dir: string): void {
    let st;
    try {
      st = lstatSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('could not stat', dir, err);
      try {
        mkdirSync(dir, { mode: this.modes.dir });
      } catch (e) {
        throw ioError('could not create directory', dir, e);
      }
      this.made.push({ path: dir, dir: true });
      return;
    }
    // Never write WAL through a link someone else made.
    if (!st.isDirectory()) throw new IoError(`"${dir}" is not a directory (a symlink or file is in the way of streamed WAL)`);
  }

  create(p: string, content: Buffer | null): number {
    const existed = isFile(p);
    try {
      unlinkSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('could not remove leftover', p, err);
    }
    let fd: number;
    try {
      fd = openSync(p, CREATE, this.modes.file);
    } catch (err) {
      throw ioError('could not create WAL file', p, err);
    }
    // A file of that name was there (a refreshed backup's history file, a killed run's .partial): it stays on failure.
    if (!existed) this.made.push({ path: p, dir: false });
    if (content === null) return fd;
    try {
      writeSync(fd, content);
    } catch (err) {
      throw ioError('could not write WAL file', p, err);
    } finally {
      closeSync(fd);
    }
    return -1;
  }

  /** Returns `to`. */
  rename(from: string, to: string): string {
    const existed = isFile(to);
    try {
      renameSync(from, to);
    } catch (err) {
      throw ioError('could not rename WAL file into place', to, err);
    }
    const i = this.made.findIndex((x) => x.path === from);
    if (i >= 0) {
      if (existed) this.made.splice(i, 1);
      else this.made[i].path = to;
    }
    return to;
  }

  removeAll(): void {
    for (const m of this.made.reverse()) {
      try {
        if (m.dir) rmdirSync(m.path);
        else unlinkSync(m.path);
      } catch {
        // Gone already (a sink discarding the target), or a directory not empty: not ours to force.
      }
    }
    this.made.length = 0;
  }
}
