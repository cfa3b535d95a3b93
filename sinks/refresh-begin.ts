/**
 * The first steps of a refresh (sinks/refresh-directory.ts), at the backup's
 * `start` — the point of no return, in this order:
 *
 *   1. refuse a server that is not the system (or major version) the backup
 *      is of, a tablespace location that is the server's own (a copy of a
 *      live data directory still linking to its tablespaces), and new tablespace locations that are relative, inside the
 *      backup or another tablespace, or not empty: nothing has been written
 *      yet;
 *   2. create the refresh marker (durably): from here on the directory says
 *      it is not a backup;
 *   3. remove backup_manifest and global/pg_control, so that neither
 *      pg_verifybackup nor PostgreSQL takes the directory for whole;
 *   4. link new tablespaces at once (journaled first, so that the next
 *      refresh follows those links although the old chunk map does not
 *      record them), so an interrupted refresh finds them.
 * Every write goes through `tree` (src/io/safe-tree.ts): never through a link.
 *
 * Errors: PgbbError 'refresh' (another system or version), TargetNotEmptyError
 * for a new tablespace location, IoError naming the path.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { StartEvent } from '../src/events';
import { PgbbError, UsageError } from '../src/errors';
import { fsPath, showPath } from '../src/codec/path-bytes';
import type { SafeTree } from '../src/io/safe-tree';
import { tablespaceLocations } from '../src/codec/chunkmap/tablespace-locations';
import { RefreshJournal } from '../src/refresh/refresh-journal';
import { within } from '../src/refresh/tablespace-links';
import type { DataModes } from './data-modes';
import { LiveDataDirectoryError } from '../src/io/live-cluster';
import { CONTROL_FILE } from '../src/refresh/walk-target';
import type { PriorState } from '../src/refresh/prior-state';
import { ioError, prepareEmptyDir } from './target-dir';
import { syncPaths } from '../src/io/durable';
import { majorOf } from '../src/codec/server-version';

export interface BegunRefresh {
  journal: RefreshJournal;
  /** Tablespace OID → where its files go. */
  tablespaceDirs: Map<string, string>;
  /** Directories whose entries changed. */
  dirty: string[];
}

async function sameDirectory(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([fs.stat(fsPath(a)).catch(() => null), fs.stat(fsPath(b)).catch(() => null)]);
  return x !== null && y !== null && x.dev === y.dev && x.ino === y.ino;
}

export async function beginRefresh(
  prior: PriorState,
  ev: StartEvent,
  o: { mapping: Record<string, string>; sync: boolean; cancelled: () => boolean; tree: SafeTree; modes: DataModes },
): Promise<BegunRefresh> {
  const dir = prior.dir;
  if (prior.systemIdentifier && prior.systemIdentifier !== ev.systemIdentifier) {
    throw new PgbbError('refresh', `"${dir}" is a backup of database system ${prior.systemIdentifier}, the server is ${ev.systemIdentifier}: refusing to refresh it`);
  }
  if (majorOf(ev.serverVersion) !== prior.major) {
    throw new PgbbError('refresh', `"${dir}" is a backup of PostgreSQL ${prior.major}, the server is ${majorOf(ev.serverVersion)}: refusing to refresh it`);
  }
  const locations = tablespaceLocations(ev.tablespaces, o.mapping, prior.tablespaces);
  const tablespaceDirs = new Map<string, string>();
  const fresh: Array<{ oid: string; dir: string }> = [];
  for (const ts of ev.tablespaces) {
    if (ts.oid === null) continue;
    const to = locations[ts.oid];
    if (!to) throw new UsageError(`tablespace location "${o.mapping[ts.location.replace(/\/+$/, '')] ?? ts.location}" is not absolute`);
    tablespaceDirs.set(ts.oid, to);
    if (!prior.tablespaces.has(ts.oid)) fresh.push({ oid: ts.oid, dir: to });
  }
  // A tablespace location of the server itself (DIR a copy of a live data directory, its links unchanged) is never written.
  for (const ts of ev.tablespaces) {
    const mine = ts.oid !== null ? tablespaceDirs.get(ts.oid) : undefined;
    if (mine && (await sameDirectory(mine, ts.location))) {
      throw new LiveDataDirectoryError(`tablespace ${ts.oid} of "${showPath(dir)}" is at "${showPath(mine)}", the server's own location of it: refusing to refresh it`);
    }
  }
  // A new location must stay clear of the backup and of every other tablespace: a refresh removes inside them.
  for (const t of fresh) {
    if (within(dir, t.dir) || within(t.dir, dir)) throw new UsageError(`tablespace ${t.oid}'s location "${showPath(t.dir)}" overlaps the backup "${showPath(dir)}"`);
    for (const [oid, other] of tablespaceDirs) {
      if (oid !== t.oid && (within(other, t.dir) || within(t.dir, other))) throw new UsageError(`tablespace ${t.oid}'s location "${showPath(t.dir)}" overlaps tablespace ${oid}'s "${showPath(other)}"`);
    }
  }
  for (const t of fresh) {
    const made = await prepareEmptyDir(t.dir);
    // A group-readable cluster's tablespace directory is 0750, as pg_basebackup makes it.
    if (made.created && o.modes.groupReadable) {
      await fs.chmod(fsPath(made.path), o.modes.dir).catch((err) => {
        throw ioError('could not set the mode of', made.path, err);
      });
    }
  }
  if (o.cancelled()) throw new PgbbError('interrupted', 'refresh cancelled before it began');

  const journal = await RefreshJournal.open(dir, o.sync);
  try {
    return { journal, tablespaceDirs, dirty: await unpublish(dir, fresh, journal, o) };
  } catch (err) {
    await journal.close().catch(() => {});
    throw err;
  }
}

/** Steps 3 and 4 (see the top of this file); returns the directories whose entries changed. */
async function unpublish(dir: string, fresh: Array<{ oid: string; dir: string }>, journal: RefreshJournal, o: { sync: boolean; tree: SafeTree; modes: DataModes }): Promise<string[]> {
  for (const rel of ['backup_manifest', CONTROL_FILE]) {
    const abs = o.tree.abs(await o.tree.parentOf(rel));
    await fs.unlink(fsPath(abs)).catch((err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('could not remove', showPath(abs), err);
    });
  }
  if (o.sync) await syncPaths([dir, path.join(dir, 'global')]);
  const dirty: string[] = [];
  for (const t of fresh) {
    const rel = `pg_tblspc/${t.oid}`;
    await o.tree.mkdir('pg_tblspc', o.modes.dir);
    await journal.recordTablespace(t.oid, t.dir);
    const abs = o.tree.abs(await o.tree.parentOf(rel));
    await fs.rm(fsPath(abs), { recursive: true, force: true });
    await o.tree.symlink(rel, t.dir);
    dirty.push(path.dirname(abs));
  }
  return dirty;
}
