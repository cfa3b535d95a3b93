/**
 * What BASE_BACKUP leaves out of a backup (PostgreSQL src/backend/backup/
 * basebackup.c: excludeDirContents, excludeFiles, the pg_wal and pg_tblspc
 * cases, unlogged and temporary relations; PROTOCOL.md §3), as pure rules
 * for sources that list the data directory themselves (parallel, local).
 *
 *   entryRule(dirPath, name, serverVersion) → 'skip' | 'empty-dir' | 'keep'
 *   dropUnloggedAndTemp(names, inRelationDir) → the names BASE_BACKUP sends
 *
 * `dirPath` is relative to the data directory ('' for its root). 'empty-dir':
 * the directory is sent, its contents are not.
 */
import { hasWalSummaries, skipsDsStore } from '../codec/server-version';

/** Sent as empty directories, wherever they are (matched by name). */
const EMPTY_DIRS = new Set(['pg_stat_tmp', 'pg_replslot', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_subtrans']);
/** Never sent, wherever they are. */
const SKIPPED_FILES = new Set(['postgresql.auto.conf.tmp', 'current_logfiles.tmp', 'backup_label', 'tablespace_map', 'backup_manifest', 'postmaster.pid', 'postmaster.opts']);
const SKIPPED_PREFIX = 'pg_internal.init';
const TEMP_PREFIX = 'pgsql_tmp';

export type EntryRule = 'skip' | 'empty-dir' | 'keep';

export function entryRule(dirPath: string, name: string, serverVersion: number): EntryRule {
  if (name.startsWith(TEMP_PREFIX)) return 'skip';
  if (SKIPPED_FILES.has(name) || name.startsWith(SKIPPED_PREFIX)) return 'skip';
  if (skipsDsStore(serverVersion) && name === '.DS_Store') return 'skip';
  if (EMPTY_DIRS.has(name)) return 'empty-dir';
  // pg_wal's contents come from WAL streaming; pg_tblspc's links are the tablespaces, listed apart.
  if (dirPath === '' && (name === 'pg_wal' || name === 'pg_tblspc')) return 'empty-dir';
  return 'keep';
}

/** The subdirectories BASE_BACKUP creates inside the (emptied) pg_wal. */
export function walSubdirs(serverVersion: number): string[] {
  return hasWalSummaries(serverVersion) ? ['pg_wal/archive_status', 'pg_wal/summaries'] : ['pg_wal/archive_status'];
}

/** base/<db>, or <PG_version dir>/<db> of a tablespace (relative to the tablespace's root). */
export function isRelationDir(path: string, inTablespace: boolean): boolean {
  const parts = path.split('/');
  if (inTablespace) return parts.length === 2 && parts[0].startsWith('PG_') && /^[0-9]+$/.test(parts[1]);
  return parts.length === 2 && parts[0] === 'base' && /^[0-9]+$/.test(parts[1]);
}

const FORK = /^([0-9]+)(?:_(fsm|vm|init))?(?:\.[0-9]+)?$/;
const TEMP_RELATION = /^t[0-9]+_[0-9]+(?:_(?:fsm|vm|init))?(?:\.[0-9]+)?$/;

/**
 * In a relation directory: temporary relations go, and of an unlogged
 * relation (one with an `_init` fork) every fork but `_init`.
 */
export function keepRelationFile(name: string, unlogged: ReadonlySet<string>): boolean {
  if (TEMP_RELATION.test(name)) return false;
  const m = FORK.exec(name);
  return !(m && m[2] !== 'init' && unlogged.has(m[1]));
}

/** The relfilenodes with an init fork among a directory's names. */
export function unloggedRelations(names: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const n of names) {
    const m = FORK.exec(n);
    if (m && m[2] === 'init') out.add(m[1]);
  }
  return out;
}
