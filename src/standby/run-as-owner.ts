/**
 * `pgbb standby` run as root: PostgreSQL refuses to run as root, and every
 * file of the data directory must belong to the user that runs it. So the
 * whole process becomes the owner of DATADIR (of its parent when DATADIR
 * does not exist yet) before anything is read or written; when that owner
 * is root itself there is no one to become, and pgbb refuses. HOME, USER
 * and LOGNAME become the owner's, as sudo -u sets them (~/.pgpass and
 * ~/.postgresql/ certificates are then the owner's).
 *
 * Errors: PgbbError 'run_as_root' naming the directory and what to do.
 */
import { lstatSync } from 'node:fs';
import { userInfo } from 'node:os';
import * as path from 'node:path';
import { PgbbError } from '../errors';

export interface Dropped {
  uid: number;
  gid: number;
}

/** Becomes DATADIR's owner when running as root; null when nothing needed changing. */
export function dropToDataDirectoryOwner(dataDir: string): Dropped | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const abs = path.resolve(dataDir);
  let judged = abs;
  let st = lstatOrNull(abs);
  if (!st) {
    judged = path.dirname(abs);
    st = lstatOrNull(judged);
  }
  if (!st) throw new PgbbError('run_as_root', `"${path.dirname(abs)}" does not exist: create it owned by the user PostgreSQL runs as`);
  // A link's owner says nothing about where it leads; the later steps refuse links anyway.
  if (!st.isDirectory()) throw new PgbbError('run_as_root', `"${judged}" is not a directory`);
  if (st.uid === 0) {
    throw new PgbbError(
      'run_as_root',
      `running as root and "${judged}" is owned by root: PostgreSQL cannot run as root; create the data directory owned by its user (e.g. install -d -o postgres -g postgres -m 700 ${abs}) or run pgbb as that user`,
    );
  }
  // Groups first: once the uid is dropped, the process may no longer change them.
  const proc = process as NodeJS.Process & { initgroups?: (user: number, extra: number) => void; setgroups?: (g: number[]) => void };
  try {
    proc.initgroups?.(st.uid, st.gid);
  } catch {
    proc.setgroups?.([st.gid]); // a uid with no passwd entry: its own group only
  }
  process.setgid?.(st.gid);
  process.setuid?.(st.uid);
  // As sudo -u sets them: ~/.pgpass, ~/.postgresql/ certificates are the new user's.
  const me = userInfoOrNull();
  if (me) {
    process.env.HOME = me.homedir;
    process.env.USER = process.env.LOGNAME = me.username;
  }
  return { uid: st.uid, gid: st.gid };
}

function lstatOrNull(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

function userInfoOrNull() {
  try {
    return userInfo();
  } catch {
    return null; // a uid without a passwd entry keeps the environment it had
  }
}
