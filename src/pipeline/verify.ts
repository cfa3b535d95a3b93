/**
 * verify: one read of a backup, any format pgbb writes, through the checks
 * in series, each in report mode (src/verifier.ts): a problem in the backup
 * never stops the read, so every check sees the whole backup and says all
 * it found.
 *
 *   backup ─► tally ─► manifest-verify ─► page-checksum-verify ─► wal-verify ─► discard
 *                      sizes, CRC32C,     every page of every     WAL from start to end
 *                      missing/extra,     relation file           LSN present, continuous
 *                      the manifest's SHA-256
 *
 * After the end the builder reads each check's outcome(): the report lists
 * every problem, each naming its file, block or LSN, and says whether all
 * checks passed. What is not about the backup's contents (a truncated
 * stream, an unreadable file, an abort) fails the run as an error instead.
 */
import { Writable } from 'node:stream';
import { openBackupSource, type BackupFormat } from '../sources/open-backup';
import { directoryManifest } from '../sources/tar-backup-source';
import type { S3SourceOptions } from '../sources/s3-backup-source';
import type { DecryptKey } from '../crypto/age-keys';
import { manifestVerify } from '../../transforms/manifest-verify';
import { pageChecksumVerify } from '../../transforms/page-checksum-verify';
import { walVerify } from '../../transforms/wal-verify';
import type { EndEvent, StartEvent } from '../events';
import type { Verifier } from '../verifier';
import { compose } from './compose';
import { newTally, tallyStage } from './observers';

export interface VerifyOptions {
  /** A backup directory, '-' for a tar stream on stdin, or s3://bucket/prefix[/<id>]. */
  source: string;
  /** For an s3:// source: --allow-incomplete, the inverse transform, a client. */
  s3?: S3SourceOptions;
  /** The key of an encrypted backup (age: a passphrase or X25519 identities). */
  decrypt?: DecryptKey;
  /** Check the WAL (default true; false for backups taken with -X none). */
  checkWal?: boolean;
  /** Check page checksums (default true). */
  checkPages?: boolean;
  signal?: AbortSignal;
}

export interface VerifyReport {
  format: BackupFormat;
  ok: boolean;
  /** One line each, prefixed with the check (`manifest: …`); a check with more than it lists ends with `…: and N more problems`. */
  problems: string[];
  /** Every problem found, listed or not. */
  problemCount: number;
  start: StartEvent | null;
  end: EndEvent | null;
  files: number;
  bytes: number;
  pagesChecked: number;
  walSegments: number;
  walRecords: number;
  manifestChecked: boolean;
  /** The S3 backup read: s3://bucket/prefix/<id>. */
  location?: string;
}

/** A sink that drops what the checks pass on: the checks are the point. */
/**
 * A backup directory's manifest is read first, so that each file is checked
 * with the algorithm the manifest names (--manifest-checksums SHA256, say);
 * a stream's manifest comes last, so CRC32C (the default) is computed. A
 * manifest that does not parse is left to the streamed check, which reports
 * it as a problem of the backup.
 */
async function manifestCheck(source: string, key: DecryptKey | undefined): Promise<ReturnType<typeof manifestVerify>> {
  const given = source === '-' || source.startsWith('s3://') ? null : await directoryManifest(source, key).catch(() => null);
  if (given) {
    try {
      return manifestVerify({ require: true, mode: 'report', manifest: given });
    } catch {
      // reported by the streamed check below
    }
  }
  return manifestVerify({ require: true, mode: 'report' });
}

function discard(): Writable {
  return new Writable({ objectMode: true, write: (_ev, _enc, cb) => cb() });
}

export async function verify(o: VerifyOptions): Promise<VerifyReport> {
  // A directory a refresh is rewriting is not a backup, whatever its files say.
  const { format, stream, location } = await openBackupSource(o.source, process.stdin, o.s3, o.decrypt);
  const manifest = await manifestCheck(o.source, o.decrypt);
  const pages = pageChecksumVerify({ mode: 'report' });
  const wal = walVerify({ mode: 'report' });
  const checks: Verifier[] = [manifest, ...(o.checkPages ?? true ? [pages] : []), ...(o.checkWal ?? true ? [wal] : [])];
  const tally = newTally();
  await compose({ source: stream, observers: [tallyStage(tally), ...checks], sink: discard(), signal: o.signal });
  const problems: string[] = [];
  let problemCount = 0;
  for (const c of checks) {
    const out = c.outcome();
    for (const p of out.problems) problems.push(`${out.check}: ${p}`);
    if (out.more > 0) problems.push(`${out.check}: and ${out.more} more problems`);
    problemCount += out.problems.length + out.more;
  }
  return {
    format,
    ok: problemCount === 0,
    problems,
    problemCount,
    start: tally.start,
    end: tally.end,
    files: manifest.result?.files ?? 0,
    bytes: manifest.result?.bytes ?? 0,
    manifestChecked: manifest.result?.checked ?? false,
    pagesChecked: pages.result.pagesChecked,
    walSegments: wal.result.segments,
    walRecords: wal.result.records,
    ...(location ? { location } : {}),
  };
}
