/**
 * What `pgbb standby` finds at DATADIR, read without following links:
 *
 *   new         missing or empty: seed it (src/standby/seed.ts) and refresh
 *   incomplete  pgbb_refresh_incomplete: an earlier run (or refresh) was cut
 *               off: the refresh completes it, writing only what differs
 *   ready       a whole backup never started (backup_label still there)
 *   stopped     a standby that has run (standby.signal, no backup_label)
 *   running     a server runs on it (postmaster.pid); `standby` says whether
 *               it is one (standby.signal)
 *   other       anything else: a stopped primary, someone's files — pgbb
 *               refuses rather than guess (unless --rebuild, for a former
 *               standby or primary the user wants re-seeded)
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ioError } from '../errors';
import { postmasterState } from '../io/live-cluster';
import { REFRESH_MARKER } from '../io/refresh-marker';

export type DataDirState =
  | { kind: 'new'; exists: boolean }
  | { kind: 'incomplete' }
  | { kind: 'ready' }
  | { kind: 'stopped' }
  | { kind: 'running'; standby: boolean; why: string }
  | { kind: 'other'; why: string };

async function lstat(p: string) {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError('could not stat', p, err);
  }
}

const isFile = async (p: string) => (await lstat(p))?.isFile() ?? false;

export async function dataDirState(dir: string): Promise<DataDirState> {
  const abs = path.resolve(dir);
  const st = await lstat(abs);
  if (!st) return { kind: 'new', exists: false };
  if (st.isSymbolicLink()) return { kind: 'other', why: 'it is a symbolic link' };
  if (!st.isDirectory()) return { kind: 'other', why: 'it is not a directory' };
  const names = await fs.readdir(abs).catch((err) => {
    throw ioError('could not read directory', abs, err);
  });
  if (names.length === 0) return { kind: 'new', exists: true };
  const pm = await postmasterState(abs);
  const standby = await isFile(path.join(abs, 'standby.signal'));
  if (pm?.alive) return { kind: 'running', standby, why: pm.why };
  if (await isFile(path.join(abs, REFRESH_MARKER))) return { kind: 'incomplete' };
  if (!(await isFile(path.join(abs, 'PG_VERSION')))) return { kind: 'other', why: 'it is not empty and holds no PG_VERSION' };
  if (!(await isFile(path.join(abs, 'global', 'pg_control')))) return { kind: 'other', why: 'it has no global/pg_control' };
  if (await isFile(path.join(abs, 'backup_label'))) {
    return (await isFile(path.join(abs, 'backup_manifest'))) ? { kind: 'ready' } : { kind: 'other', why: 'it holds a backup_label but no backup_manifest' };
  }
  if (standby) return { kind: 'stopped' };
  return { kind: 'other', why: 'it is a stopped server that is not a standby (no standby.signal)' };
}
