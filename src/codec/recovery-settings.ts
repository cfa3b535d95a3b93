/**
 * The recovery settings a standby needs, as text (pure): what pg_basebackup -R
 * writes (src/fe_utils/recovery_gen.c) into postgresql.auto.conf, and the
 * quoting of postgresql.conf values and libpq conninfo values.
 */

export interface RecoverySettings {
  /** A libpq connection string for the standby to stream from; omitted: only standby.signal. */
  primaryConninfo?: string;
  slot?: string;
}

/** The line that opens pgbb's block in postgresql.auto.conf (a later run replaces the block). */
export const RECOVERY_HEADER = '# recovery settings added by pgbb';

/** A value for postgresql.conf: single-quoted, `'` and `\` doubled. */
export function configQuote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** libpq keyword/value quoting: plain when [A-Za-z0-9_.]+, else quoted with \' and \\. */
export function conninfoValue(value: string): string {
  return /^[A-Za-z0-9_.]+$/.test(value) ? value : `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** `key=value …` from settings, in the order given, values quoted as libpq reads them. */
export function conninfoString(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([k, v]) => `${k}=${conninfoValue(v)}`)
    .join(' ');
}

export function recoveryLines(o: RecoverySettings): string {
  let out = `${RECOVERY_HEADER}\n`;
  if (o.primaryConninfo !== undefined) out += `primary_conninfo = ${configQuote(o.primaryConninfo)}\n`;
  if (o.slot !== undefined) out += `primary_slot_name = ${configQuote(o.slot)}\n`;
  return out;
}

/**
 * postgresql.auto.conf with pgbb's recovery block replaced by `o`'s: an
 * earlier block (from the line RECOVERY_HEADER to the next blank line,
 * comment line or end) is dropped, so running standby again does not pile
 * up settings; everything else is kept as it was.
 */
export function withRecoveryBlock(conf: string, o: RecoverySettings): string {
  const lines = conf.split('\n');
  const kept: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== RECOVERY_HEADER) {
      kept.push(lines[i]);
      continue;
    }
    while (i + 1 < lines.length && /^(primary_conninfo|primary_slot_name) = /.test(lines[i + 1])) i++;
  }
  let body = kept.join('\n');
  if (body.length && !body.endsWith('\n')) body += '\n';
  return body + recoveryLines(o);
}
