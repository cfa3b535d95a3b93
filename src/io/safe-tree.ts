/**
 * A directory tree pgbb writes into, resolved component by component, so that
 * no write ever goes through a symbolic link — not one an archive made a
 * moment ago, not one a stranger planted in a backup directory.
 *
 * Node has no openat(): a path is resolved by the kernel from the root each
 * time, following links in every component but the last. So SafeTree keeps
 * the set of directories (relative to the root) it has *verified*, and
 * refuses any path whose parent is not in it:
 *
 *   fresh tree (restore, backup):  verified = the root plus the directories
 *       this run created with mkdir. A name the archive made a symlink, a
 *       file, or anything this run did not create as a directory is never a
 *       parent; nothing is looked up on disk to decide.
 *   existing tree (refresh):       a directory already there is verified once
 *       with lstat (a real directory, not a link), then remembered.
 *
 * The last component is opened with O_NOFOLLOW (and O_EXCL where the file is
 * new), so a link there fails instead of being followed. Components must be
 * plain names: no '', '.', '..', no absolute paths.
 *
 * What this does not cover: another local user racing pgbb inside the tree
 * (swapping a verified directory for a link between the check and the open).
 * Restore and backup create their target 0700, which keeps other users out;
 * a refresh target is the backup owner's own directory.
 *
 * Errors: TarFormatError for a path that is not a plain relative path;
 * IoError naming the path for a parent that is a link or not a directory
 * pgbb may use, and for failed system calls.
 */
import { constants, lstatSync, openSync, promises as fs, type Stats } from 'node:fs';
import * as path from 'node:path';
import { IoError, TarFormatError, ioError } from '../errors';
import { fsPath, showPath } from '../codec/path-bytes';

const { O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/** The components of a relative member path, refusing anything that could climb or start elsewhere. */
export function pathComponents(rel: string): string[] {
  const trimmed = rel.replace(/\/+$/, '');
  const parts = trimmed.split('/');
  if (!trimmed || rel.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new TarFormatError(`archive member "${showPath(rel)}" has an unsafe path`);
  }
  return parts;
}

export class SafeTree {
  /** Relative paths known to be real directories that pgbb may write under; '' is the root. */
  private readonly verified = new Set<string>(['']);

  /**
   * @param root absolute path of a directory the caller has checked (created, or found empty, or the backup itself)
   * @param existing true for a tree that already holds pgbb's data (refresh): directories on disk are verified by lstat
   */
  constructor(
    readonly root: string,
    private readonly existing = false,
  ) {}

  abs(rel: string): string {
    return path.join(this.root, rel);
  }

  isVerifiedDir(rel: string): boolean {
    return this.verified.has(rel.replace(/\/+$/, ''));
  }

  /** Makes sure every component above `rel` is a verified directory; returns `rel` normalised. */
  async parentOf(rel: string): Promise<string> {
    const { norm, above } = this.unverifiedAbove(rel);
    for (const cur of above) {
      this.mustLookUp(rel, cur);
      this.verify(rel, cur, await fs.lstat(fsPath(this.abs(cur))).catch((err) => this.statFailed(cur, err)));
    }
    return norm;
  }

  /** parentOf with synchronous calls (lstat only in an existing tree, for a directory not yet verified). */
  parentOfSync(rel: string): string {
    const { norm, above } = this.unverifiedAbove(rel);
    for (const cur of above) {
      this.mustLookUp(rel, cur);
      let st: Stats;
      try {
        st = lstatSync(fsPath(this.abs(cur)));
      } catch (err) {
        this.statFailed(cur, err);
      }
      this.verify(rel, cur, st);
    }
    return norm;
  }

  /** `rel` normalised, and the directories above it not yet verified, outermost first. */
  private unverifiedAbove(rel: string): { norm: string; above: string[] } {
    const parts = pathComponents(rel);
    const above: string[] = [];
    let cur = '';
    for (const part of parts.slice(0, -1)) {
      cur = cur ? `${cur}/${part}` : part;
      if (!this.verified.has(cur)) above.push(cur);
    }
    return { norm: parts.join('/'), above };
  }

  /** `cur`, above `rel`, is not verified: only an existing tree looks it up on disk. */
  private mustLookUp(rel: string, cur: string): void {
    if (!this.existing) throw new IoError(`cannot write "${showPath(rel)}": "${showPath(cur)}" is not a directory this run created`);
  }

  /** `cur`, above `rel` and not yet verified: verified now if this tree may take it as a directory (`st`, its lstat). */
  private verify(rel: string, cur: string, st: Stats): void {
    if (st.isSymbolicLink()) throw new IoError(`cannot write "${showPath(rel)}": "${showPath(this.abs(cur))}" is a symbolic link, refusing to follow it`);
    if (!st.isDirectory()) throw new IoError(`cannot write "${showPath(rel)}": "${showPath(this.abs(cur))}" is not a directory`);
    this.verified.add(cur);
  }

  private statFailed(cur: string, err: unknown): never {
    throw ioError('could not stat', showPath(this.abs(cur)), err);
  }

  /**
   * Creates directory `rel` (its parent must be verified). A directory met
   * again is fine only if it is one this tree verified: never a link or a
   * file posing as one. `adopt`: an existing real directory is taken as this
   * run's (one another part of this run made, such as the WAL receiver's
   * pg_wal/); lstat decides, so a link is still refused.
   */
  async mkdir(rel: string, mode: number, adopt = false): Promise<void> {
    const r = await this.parentOf(rel);
    try {
      await fs.mkdir(fsPath(this.abs(r)), { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('could not create directory', showPath(this.abs(r)), err);
      if (this.verified.has(r)) return;
      const st = this.existing || adopt ? await fs.lstat(fsPath(this.abs(r))).catch(() => null) : null;
      if (!st?.isDirectory()) throw new IoError(`could not create directory "${showPath(this.abs(r))}": something that is not a directory this run made is in the way`);
    }
    this.verified.add(r);
  }

  /** Opens a new file for writing: O_EXCL|O_NOFOLLOW, so neither a leftover nor a link is written through. */
  async createFile(rel: string, mode: number): Promise<fs.FileHandle> {
    const r = await this.parentOf(rel);
    try {
      return await fs.open(fsPath(this.abs(r)), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    } catch (err) {
      throw ioError('could not create file', showPath(this.abs(r)), err);
    }
  }

  /**
   * createFile with synchronous calls, as a bare descriptor the caller closes
   * (closeSync): a sink writing many small files makes no FileHandle or
   * promise per file, native memory that waits for a full GC.
   */
  createFileSync(rel: string, mode: number): number {
    const r = this.parentOfSync(rel);
    try {
      return openSync(fsPath(this.abs(r)), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    } catch (err) {
      throw ioError('could not create file', showPath(this.abs(r)), err);
    }
  }

  /**
   * Opens a file to rewrite in a tree that already holds it (refresh):
   * O_NOFOLLOW, and only a regular file with no other hard link (a write
   * would change the other name too: a `cp -al` snapshot, or a file outside
   * the tree); `truncate` empties it, once that is checked.
   */
  async openExisting(rel: string, truncate = false): Promise<fs.FileHandle> {
    const r = await this.parentOf(rel);
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(fsPath(this.abs(r)), O_RDWR | O_NOFOLLOW);
    } catch (err) {
      throw ioError('could not open for update', showPath(this.abs(r)), err);
    }
    const st = await fh.stat().catch(() => null);
    const refuse = !st?.isFile()
      ? `"${showPath(this.abs(r))}" is not a regular file: refusing to write to it`
      : st.nlink > 1
        ? `"${showPath(this.abs(r))}" has ${st.nlink} hard links: refusing to update it in place (that would change the other names too); copy the directory without hard links`
        : null;
    if (refuse) {
      await fh.close().catch(() => {});
      throw new IoError(refuse);
    }
    if (truncate) {
      await fh.truncate(0).catch(async (err) => {
        await fh.close().catch(() => {});
        throw ioError('could not truncate', showPath(this.abs(r)), err);
      });
    }
    return fh;
  }

  /** Creates a symbolic link at `rel` (never itself a verified parent). */
  async symlink(rel: string, target: string): Promise<void> {
    const r = await this.parentOf(rel);
    try {
      await fs.symlink(fsPath(target), fsPath(this.abs(r)));
    } catch (err) {
      throw ioError('could not create symlink', showPath(this.abs(r)), err);
    }
  }

  /** Forgets `rel` and everything below it (call before removing or replacing it). */
  forget(rel: string): void {
    const r = rel.replace(/\/+$/, '');
    for (const d of this.verified) if (d === r || d.startsWith(`${r}/`)) this.verified.delete(d);
    this.verified.add('');
  }
}
