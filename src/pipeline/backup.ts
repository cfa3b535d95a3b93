/**
 * backup: a base backup from a live server into a directory, tar files or
 * one tar stream — what `pgbb backup` runs, and what a script calls.
 *
 *   settleBackup(options) ─► lock the target ─► sink ─► compose:
 *   [-C: create the slot] ─►
 *   ReplicationSource ─► manifest-verify ─► tally ─► throttle (-r) ─► progress ─► [recovery-config -R] ─► [yours] ─► [chunk-map-build | s3 stages] ─► sink
 *   (s3 stages: src/pipeline/s3-incremental.ts)
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
import type { S3Sink } from '../../sinks/s3';
import { chunkMapBuild } from '../../transforms/chunk-map-build';
import { recoveryConfig } from '../../transforms/recovery-config';
import { primaryConninfo } from '../standby/primary-conninfo';
import { ReplicationConnection } from '../net/replication-connection';
import { createPermanentSlot, dropSlot } from '../net/permanent-slot';
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
import { withTablespaceMap } from './tablespace-map-retry';
import type { ParallelSource } from '../sources/parallel-source';
import type { S3BackupStages } from './s3-incremental';

export interface BackupResult {
  start: StartEvent;
  end: EndEvent;
  /** Bytes of file data received (WAL included). */
  bytes: number;
  files: number;
  /** Of `bytes` and `files`, WAL files'. */
  walBytes: number;
  walFiles: number;
  /** The whole run, and of it the wait for the start checkpoint. */
  seconds: number;
  checkpointSeconds: number;
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
  let slotMade = false;
  try {
    if (plan.createSlot) {
      slotMade = await withConnection(plan, options.signal, (conn, version) => createPermanentSlot(conn, plan.slot!, version, false));
      reporter.step?.({ code: 'slot', message: `created replication slot "${plan.slot}"` });
    }
    return await runBackup(plan, reporter, options, began).catch((err: unknown) => {
      const again = withTablespaceMap(plan, err);
      if (!again) throw err;
      reporter.warning('tablespace_map', 'a tablespace location is too long for a tar link: taking the backup again with tablespace_map instead, as pg_basebackup -Ft does');
      return runBackup(again, reporter, options, began);
    });
  } catch (err) {
    // What this run created goes with it: the slot too (the server keeps WAL for a slot until it is dropped).
    if (slotMade) await withConnection(plan, undefined, (conn) => dropSlot(conn, plan.slot!)).catch(() => {});
    throw plan.sink === 'stdout' && (err as NodeJS.ErrnoException).code === 'EPIPE' && !(err instanceof PgbbError)
      ? new IoError('could not write to standard output: broken pipe (the reader went away)', { cause: err })
      : err;
  } finally {
    await lock?.release();
  }
}

async function withConnection<T>(plan: BackupPlan, signal: AbortSignal | undefined, f: (conn: ReplicationConnection, serverVersion: number) => Promise<T>): Promise<T> {
  const conn = await ReplicationConnection.connect(plan.clientConfig, { timeoutMs: plan.timeout, signal });
  try {
    return await f(conn, Number(await conn.show('server_version_num')));
  } finally {
    await conn.close().catch(() => {});
  }
}

/**
 * The sink a plan names. Made after the lock: it starts preparing its directory as soon as it exists.
 * Each sink's code is loaded when named (and -j's and S3's stages when planned): a backup then
 * compiles only its own path, ~70 modules fewer for `-F tar` than all of them, at every start.
 */
export function backupSink(plan: BackupPlan, s3Stages?: S3BackupStages['sink']): BackupSink {
  switch (plan.sink) {
    case 'stdout': {
      const { StdoutSink } = require('../../sinks/stdout') as typeof import('../../sinks/stdout');
      return new StdoutSink({ compress: plan.compress, output: plan.output, encrypt: plan.encrypt });
    }
    case 'tar-files': {
      const { TarFilesSink } = require('../../sinks/tar-files') as typeof import('../../sinks/tar-files');
      return new TarFilesSink({ target: plan.target, sync: plan.sync, compress: plan.compress, encrypt: plan.encrypt });
    }
    case 's3': {
      const { S3Sink } = require('../../sinks/s3') as typeof import('../../sinks/s3');
      const { encryptedObjects } = require('../../sinks/encrypted-output') as typeof import('../../sinks/encrypted-output');
      return new S3Sink({ location: plan.s3!.location, compress: plan.compress, ...plan.s3!.options, ...s3Stages, ...encryptedObjects(plan.encrypt) });
    }
    case 'directory': {
      const { DirectorySink } = require('../../sinks/directory') as typeof import('../../sinks/directory');
      return new DirectorySink({ target: plan.target, tablespaceMapping: plan.tablespaceMapping, sync: plan.sync, ...(plan.walDirectory !== null ? { walDirectory: plan.walDirectory } : {}) });
    }
  }
}

async function runBackup(plan: BackupPlan, reporter: Reporter, { observers: own = [], signal }: BackupOptions, began: bigint): Promise<BackupResult> {
  const limiter = rateLimiterFor(plan);
  const tally = newTally();
  // An S3 backup keeps its chunk map; an incremental one uploads only what changed since its parent.
  const s3Stages = plan.s3 ? await (await import('./s3-incremental')).s3BackupStages(plan.s3.location, plan.s3.options, plan.chunkSize, plan.encrypt !== null) : null;
  const par = plan.sqlConfig ? await import('./parallel-stages') : null;
  let parallel: ParallelSource | null = null;
  const observers = [
    ...(par ? par.parallelStages(plan, () => parallel) : []),
    ...takingStages({ manifest: plan.manifest && !plan.sqlConfig, checksums: plan.manifestChecksums, shareCrc: plan.chunkMap || s3Stages !== null, limiter, progress: plan.progress, reporter, tally }),
    // After the manifest check (the files it changes no longer match the server's manifest; pg_verifybackup ignores both), before the chunk map.
    ...(plan.writeRecoveryConf ? [recoveryConfig({ primaryConninfo: primaryConninfo(plan.connection), slot: plan.slot })] : []),
    ...own,
    ...(s3Stages?.observers ?? []),
    ...(plan.chunkMap ? [chunkMapBuild({ chunkSize: plan.chunkSize, tablespaceMapping: plan.tablespaceMapping })] : []),
  ];
  const sink = backupSink(plan, s3Stages?.sink);
  try {
    await compose({
      sink,
      source: (place) => {
        reporter.step?.({ code: 'checkpoint', message: `initiating base backup, waiting for checkpoint to complete (${plan.checkpoint === 'fast' ? 'fast' : 'spread: -c fast to hurry it'})` });
        // Recycled read memory only where every stage is pgbb's (a stage of yours may keep chunks: src/io/slab-pool.ts).
        const recycleBuffers = own.length === 0;
        const source = par ? (parallel = par.parallelSourceFor(plan, place, limiter)) : replicationSourceFor(plan, place, { recycleBuffers, ...(limiter ? { rateLimiter: limiter } : {}) });
        // Said once the target is ready, as the backup begins.
        if (plan.wal === 'none') reporter.warning('no_wal', 'WAL is not included (-X none): the backup cannot be restored without a WAL archive');
        return source;
      },
      observers,
      signal,
    });
  } finally {
    // The S3 sink read its chunk map at commit: its temporary file goes now, whatever happened.
    s3Stages?.release?.();
  }
  reporter.step?.({ code: 'done', message: 'base backup completed' });
  return {
    start: tally.start!,
    end: tally.end!,
    bytes: tally.bytes,
    files: tally.files,
    walBytes: tally.walBytes,
    walFiles: tally.walFiles,
    seconds: Number(process.hrtime.bigint() - began) / 1e9,
    checkpointSeconds: tally.startedAt === null ? 0 : Number(tally.startedAt - began) / 1e9,
    ...(plan.sink === 's3' ? { location: (sink as S3Sink).location() } : {}),
  };
}
