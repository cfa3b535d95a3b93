/**
 * -F tar with a tablespace location past tar's 99-byte link field: the
 * server refuses to put its pg_tblspc link in base.tar ("symbolic link target
 * too long for tar format"). The backup is then taken again asking for
 * tablespace_map instead of the links, as pg_basebackup -Ft always does;
 * restore makes the links from the map (src/sources/pg-basebackup-tar.ts).
 * Not asked for at once: with the map the server leaves pg_tblspc's
 * contents out, and so an in-place tablespace (allow_in_place_tablespaces)
 * with them, which the links keep.
 */
import { PgbbError } from '../errors';
import type { BackupPlan } from './backup-plan';

/** `plan` asking for tablespace_map when `err` is that refusal and a map can help; else null. */
export function withTablespaceMap(plan: BackupPlan, err: unknown): BackupPlan | null {
  if (plan.tablespaceMap || plan.sink !== 'tar-files' || plan.sqlConfig !== null) return null;
  if (!(err instanceof PgbbError) || !err.message.startsWith('symbolic link target too long for tar format')) return null;
  return { ...plan, tablespaceMap: true };
}
