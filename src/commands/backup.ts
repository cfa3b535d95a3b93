/**
 * `pgbb backup`: options → pipeline, the way pg_basebackup takes them.
 *
 *   ReplicationSource ─► manifest-verify ─► throttle (-r) ─► progress (-P/--json) ─► tap ─► sink
 *
 * The target is checked before the server is contacted: a non-empty target
 * or -T directory is refused untouched, and a missing or empty target is
 * locked for this run (sinks/target-dir.ts lockTarget), so that a second run
 * aimed at it is refused while the first goes on unharmed. The reporter
 * hears start, warnings, progress and the result (or the error, from the
 * caller).
 *
 * Failures: every stage cleans up before the promise rejects
 * (src/pipeline.ts); then the lock goes, and with it the target if this run
 * created it. A reader of stdout that goes away (EPIPE) is an IoError.
 */
import { ReplicationSource, type ReplicationSourceOptions } from '../sources/replication-source';
import { DirectorySink } from '../../sinks/directory';
import { TarFilesSink } from '../../sinks/tar-files';
import { StdoutSink } from '../../sinks/stdout';
import { runPipeline } from '../pipeline';
import { tap } from '../../transforms/tap';
import { manifestVerify } from '../../transforms/manifest-verify';
import { throttle } from '../../transforms/throttle';
import { progress } from '../../transforms/progress';
import { chunkMapBuild } from '../../transforms/chunk-map-build';
import { RateLimiter } from '../rate-limiter';
import { plainReporter, type Reporter } from '../report/reporters';
import type { CompressSpec } from '../codec/compression';
import { IoError, PgbbError, UsageError } from '../errors';
import { checkEmptyOrMissing, lockTarget } from '../../sinks/target-dir';
import { checkZstdOptions } from '../../transforms/zstd-compress';
import type { ConnectionOptions } from '../net/conninfo';
import type { EndEvent, StartEvent } from '../events';
import * as path from 'node:path';

export interface BackupCommandOptions {
  connection: ConnectionOptions;
  target: string;
  format: 'plain' | 'tar';
  checkpoint: 'fast' | 'spread';
  label: string;
  tablespaceMapping: Record<string, string>;
  wal: 'stream' | 'fetch' | 'none';
  /** -S: stream from this existing slot. */
  slot?: string;
  /** --no-slot: stream without a temporary slot. */
  noSlot?: boolean;
  /** -r: kB/s, one token bucket for everything the backup transfers. */
  maxRate?: number;
  /**
   * --wal-spool, -D - only: where streamed WAL waits until the base backup is
   * over (default: os.tmpdir() or /var/tmp, whichever is on disk). A plain
   * backup writes its WAL straight into its pg_wal/, a tar backup spools
   * inside its target.
   */
  walSpool?: string;
  /** --compress, for tar and stdout targets. */
  compress?: CompressSpec;
  /** Ask the server for size estimates and report progress (-P, --json). */
  progress?: boolean;
  reporter?: Reporter;
  sync: boolean;
  manifest: boolean;
  verifyChecksums: boolean;
  /** --timeout: ms of server silence (while data is due) before giving up; 0: never. Default 60 s. */
  timeout?: number;
  /** --chunk-size of the chunk map every plain backup records (transforms/chunk-map-build.ts); default 1 MiB. */
  chunkSize?: number;
  signal?: AbortSignal;
}

export interface BackupResult {
  start: StartEvent;
  end: EndEvent;
  bytes: number;
  files: number;
  seconds: number;
}

/** Refuses option combinations the sinks cannot take; touches nothing. */
export function checkSinkOptions(o: Pick<BackupCommandOptions, 'target' | 'format' | 'tablespaceMapping' | 'compress' | 'walSpool' | 'wal'>): void {
  const compressed = o.compress !== undefined && o.compress.method !== 'none';
  const mapped = Object.keys(o.tablespaceMapping).length > 0;
  if (o.target === '-' && o.format === 'plain') throw new UsageError('-D - (stdout) requires tar format (-F tar)');
  if ((o.target === '-' || o.format === 'tar') && mapped) throw new UsageError('-T/--tablespace-mapping is only allowed with plain format');
  if (o.target !== '-' && o.format === 'plain' && compressed) throw new UsageError('--compress is only allowed with tar format or -D -');
  if (o.compress?.method === 'zstd') checkZstdOptions(o.compress);
  if (o.walSpool !== undefined && (o.target !== '-' || o.wal !== 'stream')) {
    throw new UsageError('--wal-spool is only for -X stream to -D - (other targets keep their WAL inside the target)');
  }
}

/** Where a backup's streamed WAL is written: straight into a plain target's pg_wal/, a spool inside a tar target, else --wal-spool. */
function walPlace(o: Pick<BackupCommandOptions, 'target' | 'walSpool'>, sink: ReturnType<typeof makeSink>): Partial<ReplicationSourceOptions> {
  if (sink instanceof DirectorySink) return { walDir: path.join(path.resolve(o.target), 'pg_wal') };
  if (sink instanceof TarFilesSink) return { walSpool: path.resolve(o.target) };
  return o.walSpool !== undefined ? { walSpool: path.resolve(o.walSpool) } : {};
}

/** The replication source the backup-taking commands (backup, refresh) share. */
export function replicationSourceFor(
  o: Pick<BackupCommandOptions, 'connection' | 'label' | 'checkpoint' | 'wal' | 'slot' | 'noSlot' | 'manifest' | 'verifyChecksums' | 'progress' | 'timeout'>,
  extra: Partial<ReplicationSourceOptions> = {},
): ReplicationSource {
  return new ReplicationSource({
    connection: o.connection,
    label: o.label,
    checkpoint: o.checkpoint,
    wal: o.wal,
    slot: o.slot,
    noSlot: o.noSlot,
    manifest: o.manifest,
    verifyChecksums: o.verifyChecksums,
    progress: o.progress,
    timeout: o.timeout,
    ...extra,
  });
}

export function makeSink(
  o: Pick<BackupCommandOptions, 'target' | 'format' | 'tablespaceMapping' | 'sync' | 'compress' | 'walSpool' | 'wal'>,
): DirectorySink | TarFilesSink | StdoutSink {
  checkSinkOptions(o);
  if (o.target === '-') return new StdoutSink({ compress: o.compress });
  if (o.format === 'tar') return new TarFilesSink({ target: o.target, sync: o.sync, compress: o.compress });
  return new DirectorySink({ target: o.target, tablespaceMapping: o.tablespaceMapping, sync: o.sync });
}

export async function backupCommand(o: BackupCommandOptions): Promise<BackupResult> {
  const began = process.hrtime.bigint();
  const reporter = o.reporter ?? plainReporter();
  // Options first, then the target is checked (and created, and locked), all
  // before the server is contacted. The sink comes after the lock: it starts
  // preparing its directory as soon as it exists.
  checkSinkOptions(o);
  for (const dir of Object.values(o.tablespaceMapping)) await checkEmptyOrMissing(dir);
  const lock = o.target === '-' ? null : await lockTarget(o.target);
  try {
    return await runBackup(o, makeSink(o), reporter, began);
  } catch (err) {
    throw o.target === '-' && (err as NodeJS.ErrnoException).code === 'EPIPE' && !(err instanceof PgbbError)
      ? new IoError('could not write to standard output: broken pipe (the reader went away)', { cause: err })
      : err;
  } finally {
    await lock?.release();
  }
}

async function runBackup(
  o: BackupCommandOptions,
  sink: ReturnType<typeof makeSink>,
  reporter: Reporter,
  began: bigint,
): Promise<BackupResult> {
  // A sink that cannot set up also emits 'error'; ready() reports it, the pipeline everything later.
  sink.on('error', () => {});
  await sink.ready();
  // Client-side, so that one bucket covers the WAL stream too (and later parallel workers):
  // the server's MAX_RATE only paces its own connection, in bursts.
  const limiter = o.maxRate !== undefined ? new RateLimiter(o.maxRate * 1024) : null;
  const source = replicationSourceFor(o, { ...walPlace(o, sink), ...(limiter ? { rateLimiter: limiter } : {}) });
  let start: StartEvent | null = null;
  let end: EndEvent | null = null;
  let bytes = 0;
  let files = 0;
  const observer = tap((ev) => {
    if (ev.type === 'start') {
      start = ev;
      reporter.start(ev);
    } else if (ev.type === 'end') end = ev;
    else if (ev.type === 'data') bytes += ev.chunk.length;
    else if (ev.type === 'entry' && ev.kind === 'file') files++;
    // Checksum failures are listed in the error that ends the backup.
    else if (ev.type === 'warning' && ev.code !== 'checksum') reporter.warning(ev.code, ev.message);
  });
  if (o.wal === 'none') reporter.warning('no_wal', 'WAL is not included (-X none): the backup cannot be restored without a WAL archive');
  // The server's manifest is checked against every byte received (size and CRC32C),
  // before any later stage could change a file.
  const stages = [
    ...(o.manifest ? [manifestVerify()] : []),
    observer,
    ...(limiter ? [throttle(limiter)] : []),
    ...(o.progress ? [progress({ onProgress: (p) => reporter.progress(p) })] : []),
    // Every plain backup records its chunk map (pg_wal/pgbb.chunkmap), so that `pgbb refresh` can later write only what changed.
    ...(sink instanceof DirectorySink ? [chunkMapBuild({ chunkSize: o.chunkSize, tablespaceMapping: o.tablespaceMapping })] : []),
  ];
  await runPipeline(source, stages, sink, o.signal);
  const result = {
    start: start!,
    end: end!,
    bytes,
    files,
    seconds: Number(process.hrtime.bigint() - began) / 1e9,
  };
  reporter.result({ startLsn: result.start.startLsn, endLsn: result.end.endLsn, timeline: result.end.timeline, bytes, files, seconds: result.seconds });
  return result;
}
