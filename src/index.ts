/**
 * pgbb's library API: sources, transforms, sinks, events and errors.
 * Compose them with `stream.pipeline`:
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
export { manifestVerify, type ManifestVerify, type ManifestVerifyOptions, type ManifestVerifyResult } from '../transforms/manifest-verify';
export { manifestBuild, type ManifestBuild } from '../transforms/manifest-build';
export {
  pageChecksumVerify,
  type PageChecksumVerify,
  type PageChecksumVerifyOptions,
  type PageChecksumResult,
  type ChecksumFailure,
} from '../transforms/page-checksum-verify';
export { walVerify, type WalVerify, type WalVerifyResult } from '../transforms/wal-verify';
export { throttle, throttleBytes, ThrottleTransform, ThrottleBytesTransform } from '../transforms/throttle';
export { progress, ProgressTransform, type ProgressInfo, type ProgressOptions } from '../transforms/progress';
export { recoveryConfig, type RecoveryConfigOptions } from '../transforms/recovery-config';
export { requireComplete, RequireComplete, type RequireCompleteOptions } from '../transforms/require-complete';
// Transforms (bytes)
export { zstdCompress, ZstdCompress, checkZstdOptions, type ZstdCompressOptions, type ZstdCompressResult } from '../transforms/zstd-compress';
export { zstdDecompress, ZstdDecompress, type ZstdDecompressOptions, type ZstdDecompressResult } from '../transforms/zstd-decompress';

export { chunkMapBuild, ChunkMapBuild } from '../transforms/chunk-map-build';
export { chunkDiff, ChunkDiff } from '../transforms/chunk-diff';
export { incrementalApply, IncrementalApply } from '../transforms/incremental-apply';

// Sinks
export { RefreshDirectorySink, refreshDirectorySink } from '../sinks/refresh-directory';
export { DirectorySink, directorySink, type DirectorySinkOptions } from '../sinks/directory';
export { TarFilesSink, tarFilesSink, type TarFilesSinkOptions } from '../sinks/tar-files';
export { StdoutSink, stdoutSink, type StdoutSinkOptions } from '../sinks/stdout';
export { tee, teeSettled, Tee } from '../sinks/tee';

// Helpers and codecs
export { runPipeline } from './pipeline';
export { RateLimiter, type RateLimiterOptions } from './rate-limiter';
export { createReporter, plainReporter, type Reporter, type ReporterOptions, type BackupSummary } from './report/reporters';
export { parseCompressSpec, formatCompressSpec, type CompressSpec } from './codec/compression';
export { parseManifest, buildManifest, crc32cHex, type Manifest, type ManifestFile } from './codec/manifest';
export { pageChecksum, isRelationFile } from './codec/page-checksum';
export { checkWalRange, WalError } from './codec/wal-continuity';
export { parseControlFile, type ControlData } from './codec/pg-control';
export { parseLsn, formatLsn, walFileName } from './codec/lsn';
export { encodeChunkMap, decodeChunkMap, parseChunkSize } from './codec/chunkmap/chunk-map';
export { loadPriorState } from './refresh/prior-state';
export { refreshCommand, type RefreshResult } from './commands/refresh';
export { pathFromBytes, pathToBytes, fsPath, showPath, isRawPath } from './codec/path-bytes';
