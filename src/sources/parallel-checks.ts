/**
 * What the parallel source checks on its leader session before it opens a
 * worker or starts a backup: the role's privileges (superuser, or EXECUTE on
 * each function it calls — the error names every missing one and the GRANT
 * that fixes it) and room for N more sessions under max_connections (a clear
 * error rather than connections refused half way).
 */
import { PgbbError } from '../errors';
import type { SqlSession } from '../net/sql-session';
import { hasRenamedBackupFunctions } from '../codec/server-version';

/** The functions the parallel source calls, by signature, for PostgreSQL 15+ and 13–14. */
export function backupFunctions(serverVersion: number): string[] {
  const [start, stop] = hasRenamedBackupFunctions(serverVersion) ? ['pg_backup_start(text, boolean)', 'pg_backup_stop(boolean)'] : ['pg_start_backup(text, boolean, boolean)', 'pg_stop_backup(boolean, boolean)'];
  return [start, stop, 'pg_ls_dir(text, boolean, boolean)', 'pg_stat_file(text, boolean)', 'pg_read_binary_file(text, bigint, bigint, boolean)'];
}

export async function checkPrivileges(s: SqlSession, serverVersion: number): Promise<void> {
  const fns = backupFunctions(serverVersion);
  const checks = fns.map((f) => `has_function_privilege(${quote(f)}, 'EXECUTE')::text`).join(', ');
  const [row] = await s.rows(`SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)::text, ${checks}`);
  const [user, superuser, ...granted] = row ?? [];
  if (superuser === 'true') return;
  const missing = fns.filter((_, i) => granted[i] !== 'true');
  if (missing.length === 0) return;
  const role = `"${String(user).replace(/"/g, '""')}"`;
  const grants = missing.map((f) => `GRANT EXECUTE ON FUNCTION ${f} TO ${role};`).join(' ');
  throw new PgbbError('privilege', `parallel backup (-j) needs superuser or EXECUTE on ${missing.join(', ')}; as a superuser run: ${grants}`);
}

export async function checkConnectionRoom(s: SqlSession, workers: number): Promise<void> {
  const [row] = await s.rows(
    `SELECT current_setting('max_connections'), current_setting('superuser_reserved_connections'), ` +
      `(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::text, ` +
      `(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)::text`,
  );
  const [max, reserved, used, superuser] = (row ?? []).map((v) => v ?? '');
  const room = Number(max) - (superuser === 'true' ? 0 : Number(reserved)) - Number(used);
  if (workers > room) {
    throw new PgbbError(
      'too_many_jobs',
      `-j ${workers} needs ${workers} more connections but the server has room for ${Math.max(0, room)} (max_connections ${max}, ${used} in use${superuser === 'true' ? '' : `, ${reserved} reserved for superusers`}); use a smaller -j or raise max_connections`,
    );
  }
}

function quote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
