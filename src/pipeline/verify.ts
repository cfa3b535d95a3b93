/**
 * verify: one read of a backup, any format pgbb writes, through the checks
 * in series, each in report mode (src/verifier.ts): a problem in the backup
 * never stops the read, so every check sees the whole backup and says all
 * it found.
 *
 *   backup ─► tally ─► [progress] ─► manifest-verify ─► control-identity ─► page-checksum-verify ─► wal-verify ─► discard
 *                                    sizes, CRC32C,      pg_control of the    every page of every     WAL from start to end
 *                                    missing/extra,      system backed up     relation file           LSN present, continuous
 *                                    the manifest's SHA-256
 *
 * pg_verifybackup's options: -i (ignore paths), -m (manifest elsewhere), -s
 * (sizes only), -w (WAL from a directory), -e (the checks in 'fail' mode: the
 * first problem ends the run), -P (progress, through onProgress).
 *
 * After the end the builder reads each check's outcome(): the report lists
 * every problem, each naming its file, block or LSN, and says whether all
 * checks passed. What is not about the backup's contents (a truncated
 * stream, an unreadable file, an abort) fails the run as an error instead.
 */
import * as path from 'node:path';
import { LIMITS, readLimited } from '../io/read-limited';
import { openBackupSource, type BackupFormat } from '../sources/open-backup';
import { directoryManifestPieces } from '../sources/tar-backup-source';
import { previewManifest } from '../manifest/manifest-preview';
import type { S3SourceOptions } from '../sources/s3-backup-source';
import type { DecryptKey } from '../crypto/age-keys';
import { manifestVerify } from '../../transforms/manifest-verify';
import { pageChecksumVerify } from '../../transforms/page-checksum-verify';
import { walVerify } from '../../transforms/wal-verify';
import { controlIdentityVerify } from '../../transforms/control-identity-verify';
import { progress } from '../../transforms/progress';
import { PgbbError } from '../errors';
import { showPath } from '../codec/path-bytes';
import { manifestEnd } from '../codec/backup-label';
import type { ProgressInfo } from '../report/types';
import type { EndEvent, StartEvent } from '../events';
import type { Verifier, VerifierMode } from '../verifier';
import { compose } from './compose';
import { verifyChain, withS3Chain } from './s3-chain';
import { isS3Url } from '../s3/s3-url';
import { restore } from './restore';
import { discard, newTally, tallyStage } from './observers';

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
  /** -i: paths (relative to the data directory) left out of the manifest comparison, each with what is below it. */
  ignore?: string[];
  /** -m: the manifest to check against, instead of the backup's own. */
  manifestPath?: string;
  /** -s: compare sizes against the manifest, not checksums. */
  skipChecksums?: boolean;
  /** -w: read the WAL from this directory instead of the backup. */
  walDirectory?: string;
  /** -e: stop at the first problem (it is the run's error) instead of reporting all. */
  exitOnError?: boolean;
  /** -P: called about once a second with the bytes read so far. */
  onProgress?: (p: ProgressInfo) => void;
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
  /** Of `files`, those -i or pg_verifybackup's defaults (postgresql.auto.conf, standby.signal, recovery.signal) left unchecked. */
  leftAlone: number;
  bytes: number;
  pagesChecked: number;
  walSegments: number;
  walRecords: number;
  manifestChecked: boolean;
  /** The S3 backup read: s3://bucket/prefix/<id>. */
  location?: string;
}

/**
 * pg_verifybackup's own defaults, kept whatever -i adds: files a restore or
 * -R is expected to change (pg_verifybackup.c, verify_backup_directory's
 * ignore list; backup_manifest and pg_wal are handled apart).
 */
const ALWAYS_IGNORED = ['postgresql.auto.conf', 'standby.signal', 'recovery.signal'];

/**
 * A backup directory's manifest is read ahead once, for what the files need
 * before it comes — the checksum algorithm it names (--manifest-checksums
 * SHA256, say) and the total for -P — and then checked where the stream
 * brings it, never held whole; a stream's manifest comes last, so CRC32C (the
 * default) is computed. A manifest that does not parse is left to the
 * streamed check, which reports it as a problem of the backup. -m's manifest
 * is the one to check against: held.
 */
async function manifestCheck(o: VerifyOptions, mode: VerifierMode): Promise<{ check: ReturnType<typeof manifestVerify>; listedBytes: number }> {
  const scope = { require: true, mode, ignore: [...ALWAYS_IGNORED, ...(o.ignore ?? [])], skipChecksums: o.skipChecksums };
  if (o.manifestPath !== undefined) {
    const m = await readLimited(o.manifestPath, LIMITS.manifest);
    if (!m) throw new PgbbError('not_a_backup', `could not open manifest "${showPath(path.resolve(o.manifestPath))}": no such file`);
    const check = manifestVerify({ ...scope, manifest: m });
    return { check, listedBytes: check.listedBytes };
  }
  const source = o.source;
  const ahead = source === '-' || isS3Url(source) ? null : await previewManifest(directoryManifestPieces(source, o.decrypt)).catch(() => null);
  return { check: manifestVerify({ ...scope, ...(ahead ? { checksumAlgorithm: ahead.algorithm } : {}) }), listedBytes: ahead?.listedBytes ?? 0 };
}

export async function verify(o: VerifyOptions): Promise<VerifyReport> {
  // An incremental backup is checked rebuilt from its chain (src/pipeline/s3-chain.ts).
  const rebuilt = isS3Url(o.source) ? await withS3Chain(o.source, { ...o.s3, decrypt: o.decrypt }, (chain) => verifyChain(o, chain, { restoreFull: restore, verifyDir: verify })) : null;
  if (rebuilt) return rebuilt;
  // A directory a refresh is rewriting is not a backup, whatever its files say.
  const { format, stream, location } = await openBackupSource(o.source, process.stdin, o.s3, o.decrypt);
  const mode: VerifierMode = o.exitOnError ? 'fail' : 'report';
  const { check: manifest, listedBytes } = await manifestCheck(o, mode).catch((err) => {
    stream.destroy();
    throw err;
  });
  const pages = pageChecksumVerify({ mode });
  const wal = walVerify({ mode, walDirectory: o.walDirectory, manifest: manifest.given ?? undefined });
  const checks: Verifier[] = [manifest, controlIdentityVerify({ mode }), ...(o.checkPages ?? true ? [pages] : []), ...(o.checkWal ?? true ? [wal] : [])];
  const tally = newTally();
  const report = o.onProgress;
  // pg_verifybackup's total: the bytes the manifest lists, when it is known before the files.
  const total = listedBytes || null;
  const shown = report ? [progress({ onProgress: (p) => report(total && !p.total ? { ...p, total: Math.max(total, p.done) } : p) })] : [];
  await compose({ source: stream, observers: [tallyStage(tally), ...shown, ...checks], sink: discard(), signal: o.signal });
  const problems: string[] = [];
  let problemCount = 0;
  // A manifest that does not parse is said once, by its check: the WAL check reads the same
  // manifest for its ranges and would only repeat it (or name a later fault of the same file).
  const unreadable = (p: string) => p.startsWith('backup_manifest: ');
  const outcomes = checks.map((c) => ({ c, out: c.outcome() }));
  const manifestBroken = outcomes.some(({ c, out }) => c === manifest && out.problems.some(unreadable));
  for (const { c, out } of outcomes) {
    const own = c === wal && manifestBroken ? out.problems.filter((p) => !unreadable(p)) : out.problems;
    for (const p of own) problems.push(`${out.check}: ${p}`);
    if (out.more > 0) problems.push(`${out.check}: and ${out.more} more problems`);
    problemCount += own.length + out.more;
  }
  return {
    format,
    ok: problemCount === 0,
    problems,
    problemCount,
    start: tally.start,
    // A source whose manifest is elsewhere (-m) cannot say where it ends: the manifest does.
    end: tally.end && tally.end.endLsn === '0/0' && manifest.given ? { ...tally.end, ...manifestEnd(manifest.given) } : tally.end,
    files: manifest.result?.files ?? 0,
    leftAlone: manifest.result?.leftAlone ?? 0,
    bytes: manifest.result?.bytes ?? 0,
    manifestChecked: manifest.result?.checked ?? false,
    pagesChecked: pages.result.pagesChecked,
    walSegments: wal.result.segments,
    walRecords: wal.result.records,
    ...(location ? { location } : {}),
  };
}
