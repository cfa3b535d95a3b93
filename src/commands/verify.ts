/**
 * `pgbb verify SOURCE`: the CLI's options onto the builder
 * (src/pipeline/verify.ts: the checks in series, in report mode), and the
 * report as the CLI says it.
 */
import { verify, type VerifyOptions, type VerifyReport } from '../pipeline/verify';
import { verifyStored, type StoredVerifyReport } from '../pipeline/verify-stored';
import { PgbbError } from '../errors';
import type { ProgressInfo } from '../report/types';

export type { VerifyOptions, VerifyReport };

export function verifyCommand(o: VerifyOptions): Promise<VerifyReport> {
  return verify(o);
}

export const verifyStoredCommand = verifyStored;

/** The line --objects-only gives a good backup: what was compared, and how much only by size. */
export function verifyStoredSummary(r: StoredVerifyReport): string {
  const chain = r.backups > 1 ? ` and the ${r.backups - 1} it stands on` : '';
  const bySize = r.sizeOnly ? `; ${r.sizeOnly} by size only (the store keeps no CRC32C for them, or the record predates it)` : '';
  return `backup objects verified without downloading: ${r.objects} objects of ${r.location}${chain}, ${r.bytes} bytes; ${r.checksummed} by the CRC32C the store keeps${bySize}`;
}

/** The error a failed verification ends with (each problem is printed before it). */
export function verifyFailure(source: string, r: Pick<VerifyReport, 'problemCount'>): PgbbError {
  const n = r.problemCount;
  return new PgbbError('verify', `backup "${source}" failed verification (${n} problem${n === 1 ? '' : 's'})`);
}

/** The line a good backup gets (unless -q). */
export function verifySummary(r: VerifyReport, checkedWal: boolean, ignoring = false): string {
  const wal = checkedWal ? `, WAL ${r.start?.startLsn}–${r.end?.endLsn} (${r.walSegments} segments, ${r.walRecords} records)` : '';
  // Said only under -i: postgresql.auto.conf and the signal files are left alone always, as pg_verifybackup does.
  const alone = ignoring && r.leftAlone ? `; ${r.leftAlone} of the files left unchecked (-i, postgresql.auto.conf, standby.signal, recovery.signal)` : '';
  return `backup successfully verified: ${r.files} files, ${r.bytes} bytes as the manifest lists them (WAL is checked apart), ${r.pagesChecked} pages${wal}${alone}`;
}

/** -P: pg_verifybackup's line, `N/M kB (P%) verified` (or `N kB verified` without a total), redrawn on a terminal. */
export function verifyProgress(out: NodeJS.WriteStream = process.stderr): (p: ProgressInfo) => void {
  return (p) => {
    const kb = (n: number) => Math.floor(n / 1024);
    const line = p.total ? `${kb(p.done)}/${kb(p.total)} kB (${Math.min(100, Math.floor((p.done / p.total) * 100))}%) verified` : `${kb(p.done)} kB verified`;
    out.write(out.isTTY ? `\r${line}${p.phase === 'done' ? '\n' : ''}` : `${line}\n`);
  };
}
