/**
 * Which `pg_tblspc/<oid>` links of a backup directory a refresh may follow —
 * to walk, read, write and remove — decided before anything is written.
 *
 * A refresh removes every file of a tablespace that the new backup lacks, so
 * a link planted in pg_tblspc (by mistake or by someone who can write in the
 * backup) would turn it into `rm` of whatever directory the link names. A
 * link is followed only when all of these hold:
 *
 *   - its target is absolute, reached without links (realpath equals it),
 *     a real directory, neither inside the backup nor containing it, and
 *     neither inside nor containing another tablespace's location;
 *   - that directory holds only `PG_<major>_<catversion>` directories, as a
 *     tablespace location does (major = the backup's PG_VERSION);
 *   - when the backup's chunk map records tablespace locations (pgbb writes
 *     them in its header, see src/codec/chunkmap/tablespace-locations.ts), the
 *     link names exactly the location recorded for that OID, or the one an
 *     interrupted refresh journaled when it linked a new tablespace.
 * A link whose target does not exist is not followed (nothing there to
 * harm); it is replaced or removed like any other entry of the backup.
 * Any other pg_tblspc/<digits> link is refused: the refresh stops with one
 * line naming it.
 *
 * Errors: UnsafeTablespaceLinkError ('unsafe_tablespace_link'); IoError for
 * a directory that cannot be read.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ioError, PgbbError } from '../errors';
import { fsPath, pathFromBytes, showPath } from '../codec/path-bytes';

export class UnsafeTablespaceLinkError extends PgbbError {
  constructor(message: string) {
    super('unsafe_tablespace_link', message);
  }
}

export interface TablespaceRecords {
  /** OID → location, from the backup's chunk map header; null when the map records none (pg_basebackup, an older pgbb). */
  recorded: Readonly<Record<string, string>> | null;
  /** OID → location of tablespaces an interrupted refresh linked (refresh-journal.ts). */
  journaled: ReadonlyMap<string, string>;
  /** The backup's major version (PG_VERSION). */
  major: number;
}

/** Is `inner` the directory `outer` or below it? */
export function within(outer: string, inner: string): boolean {
  const rel = path.relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** A tablespace location's entries: PG_<major>_<catversion> (tablespace.c TABLESPACE_VERSION_DIRECTORY). */
export function isVersionDir(name: string, major?: number): boolean {
  const m = /^PG_(\d+)_(\d+)$/.exec(name);
  return m !== null && (major === undefined || Number(m[1]) === major);
}

async function realpathOrNull(p: string): Promise<string | null> {
  try {
    return await fs.realpath(fsPath(p));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError('could not resolve', showPath(p), err);
  }
}

/** Why `location` cannot be a tablespace of backup `dir`, or null when it can; undefined when it does not exist. */
async function problem(dir: string, location: string, major: number): Promise<string | null | undefined> {
  if (!path.isAbsolute(location)) return 'its target is not an absolute path';
  const resolved = path.resolve(location);
  const real = await realpathOrNull(resolved);
  if (real === null) return undefined;
  if (real !== resolved) return `its target is reached through a symbolic link (it is really "${showPath(real)}")`;
  if (within(dir, resolved)) return 'its target lies inside the backup';
  if (within(resolved, dir)) return 'its target contains the backup';
  const st = await fs.lstat(fsPath(resolved));
  if (!st.isDirectory()) return 'its target is not a directory';
  let names: Buffer[];
  try {
    names = await fs.readdir(fsPath(resolved), { encoding: 'buffer' });
  } catch (err) {
    throw ioError('could not read directory', showPath(resolved), err);
  }
  for (const raw of names) {
    const name = pathFromBytes(raw);
    const e = await fs.lstat(fsPath(path.join(resolved, name)));
    if (!isVersionDir(name, major) || !e.isDirectory()) return `its target holds "${showPath(name)}", which is not a PG_${major}_<catversion> directory as a tablespace's is`;
  }
  return null;
}

/**
 * The links of `dir`/pg_tblspc a refresh may follow: OID → location.
 * Throws UnsafeTablespaceLinkError for the first one it must not.
 */
export async function trustedTablespaces(dir: string, rec: TablespaceRecords): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const tblspc = path.join(dir, 'pg_tblspc');
  const st = await fs.lstat(fsPath(tblspc)).catch(() => null);
  if (!st) return out;
  const refuse = (name: string, target: string, why: string) =>
    new UnsafeTablespaceLinkError(`"${showPath(path.join(tblspc, name))}" -> "${showPath(target)}": ${why}: refusing to refresh "${showPath(dir)}"`);
  if (st.isSymbolicLink()) throw new UnsafeTablespaceLinkError(`"${showPath(tblspc)}" is a symbolic link: refusing to refresh "${showPath(dir)}"`);
  if (!st.isDirectory()) return out;
  let names: Buffer[];
  try {
    names = await fs.readdir(fsPath(tblspc), { encoding: 'buffer' });
  } catch (err) {
    throw ioError('could not read directory', showPath(tblspc), err);
  }
  for (const name of names.map((n) => pathFromBytes(n)).sort()) {
    if (!/^\d+$/.test(name)) continue;
    const link = path.join(tblspc, name);
    if (!(await fs.lstat(fsPath(link))).isSymbolicLink()) continue;
    const target = pathFromBytes(await fs.readlink(fsPath(link), { encoding: 'buffer' }));
    const why = await problem(dir, target, rec.major);
    if (why === undefined) continue;
    if (why) throw refuse(name, target, why);
    const location = path.resolve(target);
    const expected = rec.recorded?.[name] ?? rec.journaled.get(name);
    if (rec.recorded && expected === undefined) throw refuse(name, target, `the backup records no tablespace ${name}`);
    if (expected !== undefined && expected !== location) throw refuse(name, target, `the backup recorded tablespace ${name} at "${showPath(expected)}"`);
    for (const [oid, other] of out) {
      if (within(other, location) || within(location, other)) throw refuse(name, target, `its target overlaps tablespace ${oid}'s location "${showPath(other)}"`);
    }
    out.set(name, location);
  }
  return out;
}
