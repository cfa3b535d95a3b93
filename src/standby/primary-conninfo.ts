/**
 * primary_conninfo for a standby of the server pgbb connected to, as
 * pg_basebackup -R builds it (recovery_gen.c): the connection's own settings
 * (-d, -h/-p/-U, PG* variables) minus those that make no sense for a WAL
 * receiver (dbname, replication, fallback_application_name). A password is
 * included when one was given (password= in -d, or PGPASSWORD), as
 * pg_basebackup does; it lands only in postgresql.auto.conf, mode 0600.
 */
import { connectionSettings, type ConnectionOptions } from '../net/conninfo';
import { parseConninfo } from '../net/conninfo-parse';
import { conninfoString } from '../codec/recovery-settings';

const LEFT_OUT = new Set(['dbname', 'replication', 'fallback_application_name']);

export function primaryConninfo(opts: ConnectionOptions): string {
  const s = connectionSettings(opts);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(s)) if (!LEFT_OUT.has(k) && v !== '') out[k] = v;
  const password = opts.password ?? (opts.conninfo ? parseConninfo(opts.conninfo).password : undefined) ?? (process.env.PGPASSWORD || undefined);
  if (password !== undefined) out.password = password;
  return conninfoString(out);
}
