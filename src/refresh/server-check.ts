/**
 * Before a refresh reads a byte of DIR's data files: is the server the one
 * DIR is a backup of, and is DIR not that server's own data directory?
 * (The caller has already refused a DIR with a live postmaster.pid.)
 *
 * One replication connection, closed again before the backup starts:
 *   - IDENTIFY_SYSTEM's system identifier must be pg_control's (when DIR
 *     has one: an interrupted refresh removed it, and beginRefresh checks
 *     the map's instead), the server's major version PG_VERSION's;
 *   - `SHOW data_directory` must not be DIR: compared by device and inode,
 *     so another path to the same directory (a link, a bind mount) is
 *     caught, and a stale or missing postmaster.pid does not hide a live
 *     directory. A role that may not see data_directory (it needs superuser
 *     or pg_read_all_settings) gets a warning: the postmaster.pid check
 *     stands alone then.
 * Only PG_VERSION and pg_control are read here, both small and capped.
 *
 * Errors: LiveDataDirectoryError; PgbbError 'refresh' (another system or
 * version); 'not_a_backup' without PG_VERSION; connection errors.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PgbbError, ServerError } from '../errors';
import { clientConfig, type ConnectionOptions } from '../net/conninfo';
import { ReplicationConnection } from '../net/replication-connection';
import { readServerSettings } from '../net/server-settings';
import { DEFAULT_TIMEOUT_MS } from '../net/silence-watchdog';
import { parseControlFile } from '../codec/pg-control';
import { LIMITS, readLimited } from '../io/read-limited';
import { LiveDataDirectoryError } from '../io/live-cluster';
import { CONTROL_FILE } from './walk-target';
import { majorOf } from '../codec/server-version';

export interface ServerCheckOptions {
  connection: ConnectionOptions;
  timeout?: number;
  signal?: AbortSignal;
  warning?: (code: string, message: string) => void;
}

/** PG_VERSION's major, refusing a directory that has none. */
export async function backupMajor(dir: string): Promise<number> {
  const version = await readLimited(path.join(dir, 'PG_VERSION'), LIMITS.pgVersion);
  if (!version) throw new PgbbError('not_a_backup', `"${dir}" is not a plain backup (no PG_VERSION)`);
  return parseInt(version.toString('utf8'), 10);
}

export async function checkRefreshServer(dir: string, o: ServerCheckOptions): Promise<void> {
  const abs = path.resolve(dir);
  const major = await backupMajor(abs);
  const controlBuf = await readLimited(path.join(abs, CONTROL_FILE), LIMITS.pgControl);
  const control = controlBuf ? parseControlFile(controlBuf, path.join(abs, CONTROL_FILE)) : null;
  const conn = await ReplicationConnection.connect(clientConfig(o.connection, true), { timeoutMs: o.timeout ?? DEFAULT_TIMEOUT_MS, signal: o.signal });
  try {
    const s = await readServerSettings(conn);
    if (control && control.systemIdentifier !== s.systemIdentifier) {
      throw new PgbbError('refresh', `"${abs}" is a backup of database system ${control.systemIdentifier}, the server is ${s.systemIdentifier}: refusing to refresh it`);
    }
    if (majorOf(s.serverVersion) !== major) {
      throw new PgbbError('refresh', `"${abs}" is a backup of PostgreSQL ${major}, the server is ${majorOf(s.serverVersion)}: refusing to refresh it`);
    }
    let dataDirectory: string;
    try {
      dataDirectory = await conn.show('data_directory');
    } catch (err) {
      if (!(err instanceof ServerError)) throw err;
      o.warning?.('data_directory', `could not ask the server for its data directory (${err.message}): only postmaster.pid vouches that "${abs}" is not it`);
      return;
    }
    const [mine, theirs] = await Promise.all([fs.stat(abs), fs.stat(dataDirectory).catch(() => null)]);
    if (theirs && theirs.dev === mine.dev && theirs.ino === mine.ino) {
      throw new LiveDataDirectoryError(`"${abs}" is the data directory of the server refresh connects to (it reports data_directory "${dataDirectory}"): refusing to refresh it`);
    }
  } finally {
    await conn.close().catch(() => {});
  }
}
