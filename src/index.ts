/**
 * pgbb's library API: sources, transforms, sinks, events and errors.
 *
 *   backup({ connection, target })   a whole backup, as `pgbb backup` takes it
 *   refresh / restore / verify       likewise for the other commands
 *   compose({ source, observers, sink })  your own pipeline, run the way pgbb runs its own
 *
 * or compose the streams yourself with `stream.pipeline`:
 *
 *   source ──► transform ──► … ──► sink
 *
 * Sources:    ReplicationSource (a live server), openBackupSource (a backup pgbb wrote)
 * Transforms: manifestVerify, manifestBuild, pageChecksumVerify, walVerify, throttle,
 *             progress, recoveryConfig, tap; zstdCompress / zstdDecompress and
 *             throttleBytes work on byte streams
 * Sinks:      DirectorySink, RefreshDirectorySink (chunk-diffed refresh in place),
 *             TarFilesSink, StdoutSink, tee
 */
export * from './events';
export * from './errors';

// Sources
export { ReplicationSource, DEFAULT_TIMEOUT_MS, type ReplicationSourceOptions } from './sources/replication-source';
export { StreamedWalSource, type StreamedWalSourceOptions, type WalStreamPlan } from './sources/streamed-wal-source';
export type { LiveSourceFactory, LiveSourceHooks } from './sources/live-source';
export { openBackupSource, detectBackupFormat, type BackupFormat } from './sources/open-backup';
export { plainBackupSource } from './sources/plain-backup-source';
export { tarDirectorySource, tarStreamSource } from './sources/tar-backup-source';
export { ReplicationConnection } from './net/replication-connection';
export { clientConfig, type ConnectionOptions } from './net/conninfo';
export { checkWalOptions } from './wal/streamed-wal';

// Transforms (member stream)
export { tap } from '../transforms/tap';
export { Observer, HOLD, type Verdict } from '../transforms/observer';
export { manifestVerify, type ManifestVerify, type ManifestVerifyOptions, type ManifestVerifyResult } from '../transforms/manifest-verify';
export { manifestBuild, type ManifestBuild } from '../transforms/manifest-build';
export {
  pageChecksumVerify,
  type PageChecksumVerify,
  type PageChecksumVerifyOptions,
  type PageChecksumResult,
  type ChecksumFailure,
} from '../transforms/page-checksum-verify';
export { walVerify, type WalVerify, type WalVerifyOptions, type WalVerifyResult } from '../transforms/wal-verify';
export { throttle, throttleBytes, ThrottleTransform, ThrottleBytesTransform } from '../transforms/throttle';
export { progress, ProgressTransform, type ProgressOptions } from '../transforms/progress';
export { recoveryConfig, type RecoveryConfigOptions } from '../transforms/recovery-config';
export { requireComplete, RequireComplete, type RequireCompleteOptions } from '../transforms/require-complete';
// Transforms (bytes)
export { zstdCompress, ZstdCompress, checkZstdOptions, type ZstdCompressOptions, type ZstdCompressResult } from '../transforms/zstd-compress';
export { zstdDecompress, ZstdDecompress, type ZstdDecompressOptions, type ZstdDecompressResult } from '../transforms/zstd-decompress';
export { encrypt, Encrypt, type EncryptOptions } from '../transforms/encrypt';
export { decrypt, Decrypt, type DecryptOptions } from '../transforms/decrypt';
export { Secret } from './crypto/secret';
export type { EncryptKey, DecryptKey } from './crypto/age-keys';
// Between the two: member events → tar bytes, and back
export { tarPack, TarPack, type TarPackOptions } from '../transforms/tar-pack';
export { tarUnpack, TarUnpack, type TarUnpackOptions } from '../transforms/tar-unpack';
export type { Stage, StreamKind } from '../transforms/stream-kinds';

export { chunkMapBuild, ChunkMapBuild } from '../transforms/chunk-map-build';
export { chunkDiff, ChunkDiff } from '../transforms/chunk-diff';
export { incrementalApply, IncrementalApply } from '../transforms/incremental-apply';

// Sinks
export { RefreshDirectorySink, refreshDirectorySink } from '../sinks/refresh-directory';
export { DirectorySink, directorySink, type DirectorySinkOptions } from '../sinks/directory';
export { TarFilesSink, tarFilesSink, type TarFilesSinkOptions } from '../sinks/tar-files';
export { StdoutSink, stdoutSink, type StdoutSinkOptions } from '../sinks/stdout';
export { tee, Tee } from '../sinks/tee';

// The pipeline builder (defaults as the CLI's: wal 'stream', -r client-side, timeout in ms)
export {
  backup, refresh, restore, verify, compose, runPipeline, settleBackup, settleRefresh, backupSink, tallyStage, newTally,
  type BackupOptions, type BackupPlan, type BackupResult, type RefreshOptions, type RefreshPlan,
  type RestoreOptions, type RestoreResult, type VerifyOptions, type VerifyReport, type Composition, type Tally,
} from './pipeline';
export { isBackupSink, type BackupSink, type WalPlace } from './sink';
export type { Verifier, VerifierMode, VerifierOutcome } from './verifier';

// Helpers and codecs
export { RateLimiter, type RateLimiterOptions } from './rate-limiter';
/** For a sink of yours under ReplicationSource({ recycleBuffers: true }): give back each chunk once written. */
export { release, retain } from './io/slab-pool';
export { createReporter, plainReporter, type Reporter, type ReporterOptions, type BackupSummary, type ProgressInfo } from './report/reporters';
export { parseCompressSpec, formatCompressSpec, type CompressSpec } from './codec/compression';
export { parseManifest, buildManifest, crc32cHex, ManifestReader, ManifestWriter, type Manifest, type ManifestFile, type ManifestSummary } from './codec/manifest';
export { pageChecksum, isRelationFile } from './codec/page-checksum';
export { checkWalRange, WalError } from './codec/wal-continuity';
export { parseControlFile, type ControlData } from './codec/pg-control';
export { parseLsn, formatLsn, walFileName } from './codec/lsn';
export { chunkSha256Known, encodeChunkMap, encodeChunkMapPieces, encodedChunkMapSize, decodeChunkMap, parseChunkSize } from './codec/chunkmap/chunk-map';
export { loadPriorState } from './refresh/prior-state';
export { refreshCommand } from './commands/refresh';
export { standby, type StandbyOptions, type StandbyResult, type StandbyStep } from './pipeline/standby';
export { pathFromBytes, pathToBytes, fsPath, showPath, isRawPath } from './codec/path-bytes';
