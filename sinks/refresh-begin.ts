/**
 * The first steps of a refresh (sinks/refresh-directory.ts), at the backup's
 * `start` — the point of no return, in this order:
 *
 *   1. refuse a server that is not the system (or major version) the backup
 *      is of, and new tablespace locations that are not empty: nothing has
 *      been written yet;
 *   2. create the refresh marker (durably): from here on the directory says
 *      it is not a backup;
 *   3. remove backup_manifest and global/pg_control, so that neither
 *      pg_verifybackup nor PostgreSQL takes the directory for whole;
 *   4. link new tablespaces at once, so an interrupted refresh finds them.
 *
 * Errors: PgbbError 'refresh' (another system or version), TargetNotEmptyError
 * for a new tablespace location, IoError naming the path.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { StartEvent } from '../src/events';
import { PgbbError, UsageError } from '../src/errors';
import { RefreshJournal } from '../src/refresh/refresh-journal';
import { CONTROL_FILE } from '../src/refresh/walk-target';
import type { PriorState } from '../src/refresh/prior-state';
import { ioError, prepareEmptyDir, syncPaths } from './target-dir';

export interface BegunRefresh {
  journal: RefreshJournal;
  /** Tablespace OID → where its files go. */
  tablespaceDirs: Map<string, string>;
  /** Directories whose entries changed. */
  dirty: string[];
}

export async function beginRefresh(
  prior: PriorState,
  ev: StartEvent,
  o: { mapping: Record<string, string>; sync: boolean; cancelled: () => boolean },
): Promise<BegunRefresh> {
  const dir = prior.dir;
  if (prior.systemIdentifier && prior.systemIdentifier !== ev.systemIdentifier) {
    throw new PgbbError('refresh', `"${dir}" is a backup of database system ${prior.systemIdentifier}, the server is ${ev.systemIdentifier}: refusing to refresh it`);
  }
  if (Math.floor(ev.serverVersion / 10000) !== prior.major) {
    throw new PgbbError('refresh', `"${dir}" is a backup of PostgreSQL ${prior.major}, the server is ${Math.floor(ev.serverVersion / 10000)}: refusing to refresh it`);
  }
  const tablespaceDirs = new Map<string, string>();
  const fresh: Array<{ oid: string; dir: string }> = [];
  for (const ts of ev.tablespaces) {
    if (ts.oid === null) continue;
    const have = prior.tablespaces.get(ts.oid);
    if (have) {
      tablespaceDirs.set(ts.oid, have);
      continue;
    }
    const to = o.mapping[ts.location.replace(/\/+$/, '')] ?? ts.location;
    if (!path.isAbsolute(to)) throw new UsageError(`tablespace location "${to}" is not absolute`);
    fresh.push({ oid: ts.oid, dir: path.resolve(to) });
    tablespaceDirs.set(ts.oid, path.resolve(to));
  }
  for (const t of fresh) await prepareEmptyDir(t.dir);
  if (o.cancelled()) throw new PgbbError('interrupted', 'refresh cancelled before it began');

  const journal = await RefreshJournal.open(dir, o.sync);
  for (const rel of ['backup_manifest', CONTROL_FILE]) {
    await fs.unlink(path.join(dir, rel)).catch((err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('could not remove', path.join(dir, rel), err);
    });
  }
  if (o.sync) await syncPaths([dir, path.join(dir, 'global')]);
  const dirty: string[] = [];
  for (const t of fresh) {
    const link = path.join(dir, 'pg_tblspc', t.oid);
    await fs.mkdir(path.dirname(link), { recursive: true, mode: 0o700 });
    await fs.rm(link, { recursive: true, force: true });
    await fs.symlink(t.dir, link);
    dirty.push(path.dirname(link));
  }
  return { journal, tablespaceDirs, dirty };
}
