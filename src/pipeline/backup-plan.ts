/**
 * A backup's options, settled once, up front: every check that needs no
 * I/O, and every default, so that what the builder (src/pipeline/backup.ts)
 * consumes is a plain object nobody checks again.
 *
 *   BackupOptions (CLI or script) ─► settleBackup ─► BackupPlan ─► builder
 *
 * Defaults are the CLI's: plain format (tar for `-D -`), spread checkpoint,
 * WAL streamed (`wal: 'stream'`) with a temporary slot, manifest and page
 * checksums on, fsync on, timeout 60 000 ms, rate unlimited (`maxRate`, in
 * kB/s, is paced client-side by one RateLimiter for data and WAL alike).
 *
 * Checked here (UsageError, one line, before anything is created, locked or
 * contacted): format, target and -T combinations, compression (the zstd
 * transform's own validator, once), --wal-spool, the WAL method and slot, the
 * rate, the timeout and every connection setting (conninfo, PG* variables,
 * TLS files: resolved once into the client config the source connects with).
 * What needs the file system — the target and -T directories empty or
 * missing, not a live cluster's — is the sink's ready(), called once by the
 * builder before the server is contacted.
 */
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import type { ClientConfig } from 'pg';
import { UsageError } from '../errors';
import type { CompressSpec } from '../codec/compression';
import type { EncryptKey } from '../crypto/age-keys';
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from '../codec/manifest-format';
import { clientConfig, type ConnectionOptions } from '../net/conninfo';
import { checkWalOptions } from '../wal/streamed-wal';
import { checkZstdOptions } from '../../transforms/zstd-compress';
import type { Reporter } from '../report/types';
import { isS3Url, parseS3Url, type S3Location } from '../s3/s3-url';
import type { S3TargetOptions } from '../s3/target-options';
import { checkJobs } from '../sources/parallel-jobs';

/** What a backup takes (the CLI's options, parsed). Only `connection` and `target` are required. */
export interface BackupOptions {
  connection: ConnectionOptions;
  /** A directory, '-' for one tar stream on `output` (default process.stdout), or s3://bucket/prefix. */
  target: string;
  /** For an s3:// target: storage class, SSE-KMS key, a per-object transform, part size, a client. */
  s3?: S3TargetOptions;
  /** Default 'plain'; 'tar' for '-'. */
  format?: 'plain' | 'tar';
  /** Default 'spread'. */
  checkpoint?: 'fast' | 'spread';
  /** Default 'pgbb base backup'. */
  label?: string;
  /** -T OLD=NEW (plain format only). */
  tablespaceMapping?: Record<string, string>;
  /** --waldir: an absolute directory for pg_wal's contents, pg_wal a link to it (plain format only). */
  walDirectory?: string;
  /** Default 'stream' (as pg_basebackup and the CLI). */
  wal?: 'stream' | 'fetch' | 'none';
  /** -S: stream from this existing slot. */
  slot?: string;
  /** --no-slot: stream without a temporary slot. */
  noSlot?: boolean;
  /** -C: create the -S slot first (a physical slot that stays; dropped again if the backup fails), as pg_basebackup -C. */
  createSlot?: boolean;
  /** -R: write standby.signal and primary_conninfo (and primary_slot_name with -S) into the backup, as pg_basebackup -R. */
  writeRecoveryConf?: boolean;
  /** -r: kB/s (32 – 1048576), one client-side token bucket for everything the backup transfers. */
  maxRate?: number;
  /**
   * --wal-spool, '-' only: where streamed WAL waits until the base backup is
   * over (default: os.tmpdir() or /var/tmp, whichever is on disk). A plain
   * backup writes its WAL straight into its pg_wal/, a tar backup spools
   * inside its target.
   */
  walSpool?: string;
  /** --compress, for tar and '-' targets. */
  compress?: CompressSpec;
  /** Encrypt every archive (age, transforms/encrypt.ts): tar, '-' and s3:// targets. */
  encrypt?: EncryptKey;
  /** Ask the server for size estimates and report progress (-P, --json). */
  progress?: boolean;
  /** Hears start, warnings and progress (default: warnings as lines on stderr). */
  reporter?: Reporter;
  /** Default true (-N: false). */
  sync?: boolean;
  /** Default true (--no-manifest: false). */
  manifest?: boolean;
  /** --manifest-checksums: the per-file checksum the server's manifest uses (default CRC32C; pgbb checks every one as it arrives). */
  manifestChecksums?: ChecksumAlgorithm;
  /** --manifest-force-encode: every path hex-encoded in the manifest. */
  manifestForceEncode?: boolean;
  /** Default true (-k: false). */
  verifyChecksums?: boolean;
  /** -j: N > 1 takes the backup over N SQL sessions (src/sources/parallel-source.ts); default 1 (BASE_BACKUP). */
  jobs?: number;
  /** --local-pgdata: the server's data directory on this host; files are read from it (N readers) while the backup is held over SQL. */
  localPgdata?: string;
  /** --timeout, in milliseconds: server silence while data is due before giving up; 0: never. Default 60 000. */
  timeout?: number;
  /** --chunk-size of the chunk map a plain backup records (transforms/chunk-map-build.ts); default 1 MiB. */
  chunkSize?: number;
  /** Target '-': where the tar stream goes (default process.stdout). */
  output?: NodeJS.WritableStream;
  /**
   * Your own stages (transforms of the member stream that pass every event
   * on), after pgbb's (manifest check, throttle, progress) and before the
   * sink. Streams, not settings: the builder takes them, the plan does not.
   */
  observers?: Duplex[];
  signal?: AbortSignal;
}

export type SinkKind = 'directory' | 'tar-files' | 'stdout' | 's3';

/** Everything settled: no field is optional that the builder would default. */
export interface BackupPlan {
  connection: ConnectionOptions;
  /** Resolved once from `connection`; the source connects with it. */
  clientConfig: ClientConfig;
  target: string;
  format: 'plain' | 'tar';
  sink: SinkKind;
  /** The repository of an s3:// target (null otherwise), and its options. */
  s3: { location: S3Location; options: S3TargetOptions } | null;
  checkpoint: 'fast' | 'spread';
  label: string;
  tablespaceMapping: Record<string, string>;
  /** Ask BASE_BACKUP for tablespace_map instead of pg_tblspc links (./tablespace-map-retry.ts). */
  tablespaceMap: boolean;
  /** --waldir, or null. */
  walDirectory: string | null;
  wal: 'stream' | 'fetch' | 'none';
  slot: string | undefined;
  noSlot: boolean;
  createSlot: boolean;
  writeRecoveryConf: boolean;
  /** kB/s, or null: unlimited. */
  maxRate: number | null;
  /** Absolute, or null: the sink's place (src/sink.ts walPlace), else the source's default. */
  walSpool: string | null;
  /** With zstd: level and workers filled in. */
  compress: CompressSpec;
  /** --compress server-zstd: BASE_BACKUP's COMPRESSION 'zstd' with this level (and workers). */
  serverCompress: { level: number; workers?: number } | null;
  encrypt: EncryptKey | null;
  progress: boolean;
  sync: boolean;
  manifest: boolean;
  manifestChecksums: ChecksumAlgorithm;
  manifestForceEncode: boolean;
  verifyChecksums: boolean;
  /** 1: BASE_BACKUP; more: the parallel source, with `sqlConfig` (plain SQL sessions). */
  jobs: number;
  /** Absolute, or null: files come over the network. */
  localPgdata: string | null;
  /** Set when the parallel source takes the backup (-j N > 1, or --local-pgdata). */
  sqlConfig: ClientConfig | null;
  timeout: number;
  /** Record a chunk map (every plain backup to a directory, so that `pgbb refresh` can write only what changed). */
  chunkMap: boolean;
  chunkSize: number | undefined;
  output: NodeJS.WritableStream | undefined;
}

export const DEFAULT_TIMEOUT_MS = 60_000;

/** Validates `o` once and fills in the defaults; throws UsageError naming the option at fault. */
export function settleBackup(o: BackupOptions): BackupPlan {
  if (typeof o.target !== 'string' || o.target === '') throw new UsageError('no target directory given');
  const toStdout = o.target === '-';
  // An S3 target is a set of tar archives, zstd-compressed unless told otherwise.
  const s3 = isS3Url(o.target) ? { location: parseS3Url(o.target), options: o.s3 ?? {} } : null;
  if (!s3 && o.s3 !== undefined) throw new UsageError('S3 options (storage class, SSE-KMS key) need an s3:// target');
  const format = o.format ?? (toStdout || s3 ? 'tar' : 'plain');
  if (s3 && format !== 'tar') throw new UsageError('an s3:// target is written as tar archives: -F plain is not possible');
  if (format !== 'plain' && format !== 'tar') throw new UsageError(`invalid output format "${String(format)}", must be "plain" or "tar"`);
  const tablespaceMapping = { ...(o.tablespaceMapping ?? {}) };
  // In the order the CLI always checked them: WAL method and slot, connection, then the target's options.
  const wal = o.wal ?? 'stream';
  checkWalOptions({ wal, slot: o.slot, noSlot: o.noSlot });
  // Every connection setting checked now, before anything is created or locked.
  const config = clientConfig(o.connection ?? {}, true);
  // S3's default is single-threaded zstd: libzstd's worker job buffers cost ~30 MB of peak RSS
  // (a scale-20 backup: 177 -> 143 MB, bench/README.md), and an upload seldom outruns one core's
  // compression; -Z zstd:workers=N asks for them.
  const asked = settleCompress(o.compress ?? (s3 ? { method: 'zstd', level: 3, workers: 0 } : undefined));
  // server-zstd: the server compresses the network's bytes; tar and -D - are compressed again as client zstd would.
  // Workers only as given: the settled default is this machine's cores, not the server's.
  const given = o.compress?.method === 'zstd' ? o.compress.workers : undefined;
  const serverCompress = asked.method === 'zstd' && asked.server ? { level: asked.level, ...(given !== undefined ? { workers: given } : {}) } : null;
  const compress: CompressSpec = serverCompress ? (format === 'plain' && !toStdout ? { method: 'none' } : { method: 'zstd', ...serverCompress }) : asked;
  if (toStdout && format === 'plain') throw new UsageError('-D - (stdout) requires tar format (-F tar)');
  if ((toStdout || format === 'tar') && Object.keys(tablespaceMapping).length > 0) {
    throw new UsageError('-T/--tablespace-mapping is only allowed with plain format');
  }
  if (o.encrypt && format === 'plain') throw new UsageError('encryption (--encrypt-*, PGBB_ENCRYPT_PASSPHRASE) is for -F tar, -D - and s3:// targets, not a plain backup');
  if (!toStdout && format === 'plain' && compress.method !== 'none') throw new UsageError('--compress is only allowed with tar format or -D -');
  if (o.walSpool !== undefined && (!(toStdout || s3) || wal !== 'stream')) {
    throw new UsageError('--wal-spool is only for -X stream to -D - or s3:// (other targets keep their WAL inside the target)');
  }
  if (o.createSlot && o.slot === undefined) throw new UsageError('-C/--create-slot needs a slot name: -S NAME');
  if (o.createSlot && wal !== 'stream') throw new UsageError('-C/--create-slot needs WAL streamed: -X stream');
  const timeout = o.timeout ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeout) || timeout < 0) throw new UsageError(`invalid timeout ${o.timeout} (milliseconds, 0: never)`);
  if (o.maxRate !== undefined && !(Number.isFinite(o.maxRate) && o.maxRate >= 32 && o.maxRate <= 1024 * 1024)) {
    throw new UsageError(`transfer rate "${o.maxRate}" is out of range (must be between 32 kB/s and 1 GB/s)`);
  }
  if (o.checkpoint !== undefined && o.checkpoint !== 'fast' && o.checkpoint !== 'spread') {
    throw new UsageError(`invalid checkpoint "${String(o.checkpoint)}", must be "fast" or "spread"`);
  }
  if (o.walDirectory !== undefined) {
    // pg_basebackup's words.
    if (format !== 'plain' || toStdout || s3) throw new UsageError('WAL directory location can only be specified in plain mode');
    if (!path.isAbsolute(o.walDirectory)) throw new UsageError('WAL directory location must be an absolute path');
  }
  if (s3 && o.manifest === false) throw new UsageError('--no-manifest is not possible with an s3:// target (its backup_manifest is what restore and verify check)');
  const jobs = o.jobs ?? 1;
  checkJobs(jobs);
  const parallel = jobs > 1 || o.localPgdata !== undefined;
  if (parallel && wal === 'fetch') throw new UsageError('-j/--jobs and --local-pgdata cannot fetch WAL (-X fetch): use -X stream');
  if (parallel && serverCompress) throw new UsageError('--compress server-zstd is not supported with -j/--jobs or --local-pgdata (they read files, not BASE_BACKUP archives)');
  if (parallel && o.createSlot) throw new UsageError('-C/--create-slot is not supported with -j/--jobs or --local-pgdata');
  const sink: SinkKind = s3 ? 's3' : toStdout ? 'stdout' : format === 'tar' ? 'tar-files' : 'directory';
  return {
    connection: o.connection,
    clientConfig: config,
    target: o.target,
    format,
    sink,
    s3,
    checkpoint: o.checkpoint ?? 'spread',
    label: o.label ?? 'pgbb base backup',
    tablespaceMapping,
    tablespaceMap: false,
    walDirectory: o.walDirectory ?? null,
    wal,
    slot: o.slot,
    noSlot: o.noSlot ?? false,
    createSlot: o.createSlot ?? false,
    writeRecoveryConf: o.writeRecoveryConf ?? false,
    maxRate: o.maxRate ?? null,
    walSpool: o.walSpool === undefined ? null : path.resolve(o.walSpool),
    compress,
    serverCompress,
    encrypt: o.encrypt ?? null,
    progress: o.progress ?? false,
    sync: o.sync ?? true,
    manifest: o.manifest ?? true,
    manifestChecksums: settleChecksums(o.manifestChecksums),
    manifestForceEncode: o.manifestForceEncode ?? false,
    verifyChecksums: o.verifyChecksums ?? true,
    jobs,
    localPgdata: o.localPgdata === undefined ? null : path.resolve(o.localPgdata),
    sqlConfig: parallel ? clientConfig(o.connection ?? {}, false) : null,
    timeout,
    chunkMap: sink === 'directory',
    chunkSize: o.chunkSize,
    output: o.output,
  };
}

/** As pg_basebackup --manifest-checksums: any case. */
function settleChecksums(c: string | undefined): ChecksumAlgorithm {
  if (c === undefined) return 'CRC32C';
  const up = String(c).toUpperCase() as ChecksumAlgorithm;
  if (!CHECKSUM_ALGORITHMS.includes(up)) throw new UsageError(`invalid manifest checksum algorithm "${c}", must be one of ${CHECKSUM_ALGORITHMS.join(', ')}`);
  return up;
}

/** zstd's level and workers settled by the transform's own validator, once for the whole run. */
function settleCompress(c: CompressSpec | undefined): CompressSpec {
  if (c === undefined) return { method: 'none' };
  if (typeof c !== 'object' || c === null) {
    throw new UsageError(`invalid compress ${JSON.stringify(c)}: give { method: 'zstd', level?, workers? } or { method: 'none' } (parseCompressSpec("zstd:3") reads the CLI's form)`);
  }
  if (c.method === 'none') return { method: 'none' };
  if (c.method !== 'zstd') throw new UsageError(`invalid compression method "${String((c as { method: unknown }).method)}", must be "zstd" or "none"`);
  return { method: 'zstd', ...checkZstdOptions(c), ...(c.server ? { server: true as const } : {}) };
}
