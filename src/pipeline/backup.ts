/**
 * backup: a base backup from a live server into a directory, tar files or
 * one tar stream — what `pgbb backup` runs, and what a script calls.
 *
 *   settleBackup(options) ─► lock the target ─► sink ─► compose:
 *   ReplicationSource ─► manifest-verify ─► tally ─► throttle (-r) ─► progress ─► [yours] ─► [chunk-map-build] ─► sink
 *
 * The plan (src/pipeline/backup-plan.ts) is settled before anything is
 * touched; then the target is locked (a second run aimed at it is refused
 * while this one goes on unharmed), the sink readied (target and -T
 * directories checked and created) and only then the server contacted. The
 * chunk map is recorded on plain backups, so that `pgbb refresh` can later
 * write only what changed.
 *
 * Failures: every stage cleans up before the promise rejects; then the lock
 * goes, and with it the target if this run created it. A reader of the tar
 * stream that goes away (EPIPE) is an IoError.
 */
import { DirectorySink } from '../../sinks/directory';
import { TarFilesSink } from '../../sinks/tar-files';
import { StdoutSink } from '../../sinks/stdout';
import { S3Sink } from '../../sinks/s3';
import { chunkMapBuild } from '../../transforms/chunk-map-build';
import { lockTarget } from '../../sinks/target-dir';
import { plainReporter } from '../report/reporters';
import type { Reporter } from '../report/types';
import { IoError, PgbbError } from '../errors';
import type { EndEvent, StartEvent } from '../events';
import type { BackupSink } from '../sink';
import { settleBackup, type BackupOptions, type BackupPlan } from './backup-plan';
import { compose } from './compose';
import { newTally, takingStages } from './observers';
import { rateLimiterFor, replicationSourceFor } from './live-source';

export interface BackupResult {
  start: StartEvent;
  end: EndEvent;
  /** Bytes of file data received. */
  bytes: number;
  files: number;
  seconds: number;
  /** Where an S3 backup went: s3://bucket/prefix/<id>. */
  location?: string;
}

/** Takes a backup; resolves once it is complete on disk (or on the stream), rejects having cleaned up. */
export async function backup(options: BackupOptions): Promise<BackupResult> {
  const began = process.hrtime.bigint();
  const plan = settleBackup(options);
  const reporter = options.reporter ?? plainReporter();
  // An S3 backup gets an id of its own (refused if taken): nothing local to lock.
  const lock = plan.sink === 'stdout' || plan.sink === 's3' ? null : await lockTarget(plan.target);
  try {
    return await runBackup(plan, reporter, options, began);
  } catch (err) {
    throw plan.sink === 'stdout' && (err as NodeJS.ErrnoException).code === 'EPIPE' && !(err instanceof PgbbError)
      ? new IoError('could not write to standard output: broken pipe (the reader went away)', { cause: err })
      : err;
  } finally {
    await lock?.release();
  }
}

/** The sink a plan names. Made after the lock: it starts preparing its directory as soon as it exists. */
export function backupSink(plan: BackupPlan): BackupSink {
  switch (plan.sink) {
    case 'stdout':
      return new StdoutSink({ compress: plan.compress, output: plan.output });
    case 'tar-files':
      return new TarFilesSink({ target: plan.target, sync: plan.sync, compress: plan.compress });
    case 's3':
      return new S3Sink({ location: plan.s3!.location, compress: plan.compress, ...plan.s3!.options });
    case 'directory':
      return new DirectorySink({ target: plan.target, tablespaceMapping: plan.tablespaceMapping, sync: plan.sync });
  }
}

async function runBackup(plan: BackupPlan, reporter: Reporter, { observers: own = [], signal }: BackupOptions, began: bigint): Promise<BackupResult> {
  const limiter = rateLimiterFor(plan);
  const tally = newTally();
  const observers = [
    ...takingStages({ manifest: plan.manifest, limiter, progress: plan.progress, reporter, tally }),
    ...own,
    ...(plan.chunkMap ? [chunkMapBuild({ chunkSize: plan.chunkSize, tablespaceMapping: plan.tablespaceMapping })] : []),
  ];
  const sink = backupSink(plan);
  await compose({
    sink,
    source: (place) => {
      const source = replicationSourceFor(plan, place, limiter ? { rateLimiter: limiter } : {});
      // Said once the target is ready, as the backup begins.
      if (plan.wal === 'none') reporter.warning('no_wal', 'WAL is not included (-X none): the backup cannot be restored without a WAL archive');
      return source;
    },
    observers,
    signal,
  });
  return {
    start: tally.start!,
    end: tally.end!,
    bytes: tally.bytes,
    files: tally.files,
    seconds: Number(process.hrtime.bigint() - began) / 1e9,
    ...(sink instanceof S3Sink ? { location: sink.location() } : {}),
  };
}
