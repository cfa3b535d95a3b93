/**
 * refresh: bring an existing plain backup up to date in place, writing only
 * what changed — what `pgbb refresh` runs, and what a script calls.
 *
 *   settleRefresh ─► refuse a live DIR (postmaster.pid) ─► check the server
 *   (system, version, its data_directory is not DIR; src/refresh/server-check.ts)
 *   ─► lock DIR ─► loadPriorState (tablespace links checked, chunk map of
 *   what DIR holds; reads only) ─► compose:
 *
 *   ReplicationSource ─► manifest-verify ─► tally ─► throttle ─► progress ─► [incremental-apply] ─► chunk-diff ─► refresh-directory sink
 *
 * manifest-verify checks what the server sent against its own manifest
 * before anything is compared or written. On PostgreSQL 17+ with
 * summarize_wal, when DIR is a whole, untouched pgbb backup (`pristine`), the
 * server is sent DIR's manifest (UPLOAD_MANIFEST) and asked for an
 * INCREMENTAL backup, so unchanged blocks do not cross the network;
 * incremental-apply turns its INCREMENTAL.<file> members into whole changed
 * chunks and chunk-diff then writes a manifest of the rebuilt files. If the
 * server refuses the incremental backup before sending anything (WAL
 * summaries do not reach back far enough, say) the refresh runs again
 * without it. Otherwise everything is streamed and compared client-side.
 * Streamed WAL goes where the sink says (straight into DIR's pg_wal/,
 * written once; see sinks/refresh-directory.ts).
 */
import type { EndEvent, StartEvent } from '../events';
import { RefreshDirectorySink } from '../../sinks/refresh-directory';
import { chunkDiff } from '../../transforms/chunk-diff';
import { incrementalApply } from '../../transforms/incremental-apply';
import { loadPriorState, type PriorState } from '../refresh/prior-state';
import { checkRefreshServer } from '../refresh/server-check';
import { lockForRefresh } from '../io/target-lock';
import { refuseLiveDataDirectory } from '../io/live-cluster';
import { describeError, InterruptedError, ServerError } from '../errors';
import { plainReporter } from '../report/reporters';
import type { Reporter } from '../report/types';
import { settleRefresh, type RefreshOptions, type RefreshPlan } from './refresh-plan';
import { compose } from './compose';
import { newTally, takingStages } from './observers';
import { rateLimiterFor, replicationSourceFor } from './live-source';
import type { ParallelSource } from '../sources/parallel-source';

export interface RefreshResult {
  start: StartEvent;
  end: EndEvent;
  /** 'incremental': BASE_BACKUP INCREMENTAL; 'full': everything streamed and compared here. */
  mode: 'incremental' | 'full';
  /** Data bytes that came from the server. */
  bytesReceived: number;
  /** Bytes the sink wrote into DIR (changed chunks, new files, chunk map, manifest); streamed WAL is written once, straight into pg_wal/ by the WAL receiver, and not counted here. */
  bytesWritten: number;
  /** Bytes of changed chunks that were already on disk, page by page, and so not written. */
  bytesSame: number;
  chunksChanged: number;
  chunksUnchanged: number;
  filesAdded: number;
  filesChanged: number;
  filesUnchanged: number;
  filesRemoved: number;
  directoriesRemoved: number;
  /** Files of DIR read again because the stored chunk map could not vouch for them, and their bytes. */
  filesReread: number;
  bytesReread: number;
  seconds: number;
}

export async function refresh(options: RefreshOptions): Promise<RefreshResult> {
  const began = process.hrtime.bigint();
  const plan = settleRefresh(options);
  const reporter = options.reporter ?? plainReporter();
  const { signal } = options;
  // Nothing of DIR is read (but postmaster.pid, PG_VERSION, pg_control) and nothing written before both checks.
  await refuseLiveDataDirectory(plan.target, 'refresh it');
  await checkRefreshServer(plan.target, { connection: plan.connection, timeout: plan.timeout, signal, warning: (c, m) => reporter.warning(c, m) });
  const lock = await lockForRefresh(plan.target);
  try {
    const prior = await loadPriorState(plan.target, { chunkSize: plan.chunkSize });
    if (prior.incomplete) reporter.warning('incomplete_refresh', `"${prior.dir}" holds an interrupted refresh: completing it`);
    if (prior.reread) reporter.warning('reread', `${prior.reread} files (${prior.rereadBytes} bytes) of "${prior.dir}" were read again: ${prior.mapProblem ?? 'they changed after the chunk map was written'}`);
    // INCREMENTAL is BASE_BACKUP's: -j compares with server-side hashes instead.
    const incremental = plan.incremental !== 'off' && prior.pristine && !plan.sqlConfig ? prior.manifest : null;
    let r: RunResult;
    try {
      r = await run(plan, prior, reporter, incremental, signal);
    } catch (err) {
      // Refused before anything was sent (no WAL summaries back to the prior backup, say): nothing was written.
      if (!incremental || !(err instanceof NotStarted) || !(err.cause instanceof ServerError)) throw err instanceof NotStarted ? err.cause : err;
      reporter.warning('incremental', `the server could not take an incremental backup (${describeError(err.cause)}): streaming everything`);
      r = await run(plan, prior, reporter, null, signal).catch((e) => {
        throw e instanceof NotStarted ? e.cause : e;
      });
    }
    return { ...r, filesReread: prior.reread, bytesReread: prior.rereadBytes, seconds: Number(process.hrtime.bigint() - began) / 1e9 };
  } finally {
    await lock.release();
  }
}

type RunResult = Omit<RefreshResult, 'filesReread' | 'bytesReread' | 'seconds'>;

/** A failure before the server started sending (and so before anything was written). */
class NotStarted extends Error {
  constructor(override readonly cause: unknown) {
    super('backup did not start');
  }
}

async function run(plan: RefreshPlan, prior: PriorState, reporter: Reporter, incrementalFrom: Buffer | null, signal?: AbortSignal): Promise<RunResult> {
  const limiter = rateLimiterFor(plan);
  const tally = newTally();
  const diff = chunkDiff({
    prior: prior.map, chunkSize: prior.chunkSize, rebuildManifest: 'incremental',
    tablespaces: { existing: prior.tablespaces, mapping: plan.tablespaceMapping },
  });
  const sink = new RefreshDirectorySink({ prior, tablespaceMapping: plan.tablespaceMapping, sync: plan.sync, onStep: plan.onStep });
  // -j N: the parallel source brings no manifest; pages are checked and the manifest built here, before chunk-diff.
  const par = plan.sqlConfig ? await import('./parallel-stages') : null; // -j's code only when asked for
  let parallel: ParallelSource | null = null;
  const observers = [
    ...(par ? par.parallelStages(plan, () => parallel) : []),
    ...takingStages({ manifest: plan.manifest && !plan.sqlConfig, shareCrc: true, limiter, progress: plan.progress, reporter, tally, written: () => sink.bytesWritten }),
    ...(incrementalFrom ? [incrementalApply({ target: prior.dir, prior: prior.map })] : []),
    diff,
  ];
  try {
    await compose({
      sink,
      source: (place) => {
        reporter.step?.({ code: 'checkpoint', message: `initiating base backup, waiting for checkpoint to complete (${plan.checkpoint === 'fast' ? 'fast' : 'spread: -c fast to hurry it'})` });
        if (par) return (parallel = par.parallelSourceFor(plan, place, limiter, prior.dir));
        // Recycled read memory: every stage here is pgbb's, and each gives back what it consumed (src/io/slab-pool.ts).
        return replicationSourceFor(plan, place, { recycleBuffers: true, ...(limiter ? { rateLimiter: limiter } : {}), ...(incrementalFrom ? { incrementalFrom } : {}) });
      },
      observers,
      signal,
    });
  } catch (err) {
    throw tally.start === null && !(err instanceof InterruptedError) ? new NotStarted(err) : err;
  }
  const d = diff.result!;
  const s = sink.result;
  const start = tally.start!;
  return {
    start,
    end: tally.end!,
    mode: start.incremental ? 'incremental' : 'full',
    // -j: only what the workers fetched crossed the network (pieces DIR held were read from it), and the WAL.
    bytesReceived: parallel ? (parallel as ParallelSource).networkBytes + tally.walBytes : tally.bytes,
    bytesWritten: s.bytesWritten,
    bytesSame: s.bytesSame,
    chunksChanged: d.chunksChanged,
    chunksUnchanged: d.chunksUnchanged,
    filesAdded: d.filesAdded,
    filesChanged: d.filesChanged,
    filesUnchanged: d.filesUnchanged,
    filesRemoved: s.filesRemoved,
    directoriesRemoved: s.directoriesRemoved,
  };
}
