/**
 * `pgbb refresh -D DIR`: bring an existing plain backup up to date in place,
 * writing only what changed.
 *
 *   refuse a live DIR (postmaster.pid) ─► check the server (system, version,
 *   its data_directory is not DIR; src/refresh/server-check.ts) ─► lock DIR
 *   ─► loadPriorState (tablespace links checked, chunk map of what DIR
 *   holds; reads only)
 *
 *   ReplicationSource ─► manifest-verify ─► tap ─► throttle ─► progress ─► [incremental-apply] ─► chunk-diff ─► refresh-directory sink
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
 *
 * Result: RefreshResult (bytes received and written, chunks and files
 * changed, added, removed), also as one JSON line for --json.
 */
import { replicationSourceFor, type BackupCommandOptions } from './backup';
import { runPipeline } from '../pipeline';
import { tap } from '../../transforms/tap';
import { manifestVerify } from '../../transforms/manifest-verify';
import { throttle } from '../../transforms/throttle';
import { progress } from '../../transforms/progress';
import { chunkDiff } from '../../transforms/chunk-diff';
import { RefreshDirectorySink, type RefreshDirectorySinkOptions } from '../../sinks/refresh-directory';
import { RateLimiter } from '../rate-limiter';
import { plainReporter, type Reporter } from '../report/reporters';
import type { EndEvent, StartEvent } from '../events';
import { loadPriorState, type PriorState } from '../refresh/prior-state';
import { lockForRefresh } from '../io/target-lock';
import { describeError, InterruptedError, ServerError, UsageError } from '../errors';
import { incrementalApply } from '../../transforms/incremental-apply';
import { refuseLiveDataDirectory } from '../io/live-cluster';
import { checkRefreshServer } from '../refresh/server-check';
import * as path from 'node:path';

/** Everything `backup` takes but the output format and compression (a refresh writes a plain directory in place). */
export interface RefreshCommandOptions extends Omit<BackupCommandOptions, 'format' | 'compress' | 'walSpool'> {
  /** The plain backup to refresh in place. */
  target: string;
  /** -T OLD=NEW, for tablespaces that are new since the backup. */
  tablespaceMapping: Record<string, string>;
  /** --chunk-size; default the backup's own map's, else 1 MiB. */
  chunkSize?: number;
  /** 'auto' (default): INCREMENTAL when the server and DIR allow it; 'off': always stream everything. */
  incremental?: 'auto' | 'off';
  /** Fault injection for library users' and pgbb's own crash tests (see RefreshDirectorySink); the CLI never sets it. */
  onStep?: RefreshDirectorySinkOptions['onStep'];
}

export interface RefreshResult {
  start: StartEvent;
  end: EndEvent;
  /** 'incremental': BASE_BACKUP INCREMENTAL; 'full': everything streamed and compared here. */
  mode: 'incremental' | 'full';
  /** Data bytes that came from the server. */
  bytesReceived: number;
  /** Bytes the sink wrote into DIR (changed chunks, new files, chunk map, manifest); streamed WAL is written once, straight into pg_wal/ by the WAL receiver, and not counted here. */
  bytesWritten: number;
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

export async function refreshCommand(o: RefreshCommandOptions): Promise<RefreshResult> {
  const began = process.hrtime.bigint();
  const reporter = o.reporter ?? plainReporter();
  // Nothing of DIR is read (but postmaster.pid, PG_VERSION, pg_control) and nothing written before both checks.
  await refuseLiveDataDirectory(o.target, 'refresh it');
  await checkRefreshServer(o.target, { connection: o.connection, timeout: o.timeout, signal: o.signal, warning: (c, m) => reporter.warning(c, m) });
  const lock = await lockForRefresh(o.target);
  try {
    const prior = await loadPriorState(o.target, { chunkSize: o.chunkSize });
    if (prior.incomplete) reporter.warning('incomplete_refresh', `"${prior.dir}" holds an interrupted refresh: completing it`);
    if (prior.reread) reporter.warning('reread', `${prior.reread} files (${prior.rereadBytes} bytes) of "${prior.dir}" were read again: ${prior.mapProblem ?? 'they changed after the chunk map was written'}`);
    const incremental = o.incremental !== 'off' && prior.pristine ? prior.manifest : null;
    let r: RunResult;
    try {
      r = await run(o, prior, reporter, incremental);
    } catch (err) {
      // Refused before anything was sent (no WAL summaries back to the prior backup, say): nothing was written.
      if (!incremental || !(err instanceof NotStarted) || !(err.cause instanceof ServerError)) throw err instanceof NotStarted ? err.cause : err;
      reporter.warning('incremental', `the server could not take an incremental backup (${describeError(err.cause)}): streaming everything`);
      r = await run(o, prior, reporter, null).catch((e) => {
        throw e instanceof NotStarted ? e.cause : e;
      });
    }
    // The caller reports the result: --json wants the refresh's own fields (refreshResultJson).
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

async function run(o: RefreshCommandOptions, prior: PriorState, reporter: Reporter, incrementalFrom: Buffer | null): Promise<RunResult> {
  const limiter = o.maxRate !== undefined ? new RateLimiter(o.maxRate * 1024) : null;
  // Streamed WAL goes straight into DIR's pg_wal/ (written once; the sink keeps it, see sinks/refresh-directory.ts).
  const source = replicationSourceFor(o, {
    walDir: path.join(prior.dir, 'pg_wal'),
    ...(limiter ? { rateLimiter: limiter } : {}),
    ...(incrementalFrom ? { incrementalFrom } : {}),
  });
  let start: StartEvent | null = null;
  let end: EndEvent | null = null;
  let bytesReceived = 0;
  const observer = tap((ev) => {
    if (ev.type === 'start') {
      start = ev;
      reporter.start(ev);
    } else if (ev.type === 'end') end = ev;
    else if (ev.type === 'data') bytesReceived += ev.chunk.length;
    else if (ev.type === 'warning' && ev.code !== 'checksum') reporter.warning(ev.code, ev.message);
  });
  const diff = chunkDiff({
    prior: prior.map, chunkSize: prior.chunkSize, rebuildManifest: 'incremental',
    tablespaces: { existing: prior.tablespaces, mapping: o.tablespaceMapping },
  });
  const sink = new RefreshDirectorySink({ prior, tablespaceMapping: o.tablespaceMapping, sync: o.sync, onStep: o.onStep });
  const stages = [
    ...(o.manifest ? [manifestVerify()] : []),
    observer,
    ...(limiter ? [throttle(limiter)] : []),
    ...(o.progress ? [progress({ onProgress: (p) => reporter.progress(p) })] : []),
    ...(incrementalFrom ? [incrementalApply({ target: prior.dir, prior: prior.map })] : []),
    diff,
  ];
  try {
    await runPipeline(source, stages, sink, o.signal);
  } catch (err) {
    throw start === null && !(err instanceof InterruptedError) ? new NotStarted(err) : err;
  }
  const d = diff.result!;
  const s = sink.result;
  return {
    start: start!,
    end: end!,
    mode: (start as StartEvent | null)?.incremental ? 'incremental' : 'full',
    bytesReceived,
    bytesWritten: s.bytesWritten,
    chunksChanged: d.chunksChanged,
    chunksUnchanged: d.chunksUnchanged,
    filesAdded: d.filesAdded,
    filesChanged: d.filesChanged,
    filesUnchanged: d.filesUnchanged,
    filesRemoved: s.filesRemoved,
    directoriesRemoved: s.directoriesRemoved,
  };
}

/** The --json result line of a refresh. */
export function refreshResultJson(r: RefreshResult): string {
  const { start: _s, end, seconds, ...rest } = r;
  return JSON.stringify({
    event: 'result',
    startLsn: r.start.startLsn,
    endLsn: end.endLsn,
    timeline: end.timeline,
    ...rest,
    seconds: Math.round(seconds * 1000) / 1000,
  });
}

/** `-v`: one line for people. */
export function refreshSummary(r: RefreshResult): string {
  return (
    `pgbb: refresh complete (${r.mode}): received ${r.bytesReceived} bytes, wrote ${r.bytesWritten} bytes; ` +
    `chunks ${r.chunksChanged} changed, ${r.chunksUnchanged} unchanged; files ${r.filesAdded} added, ${r.filesChanged} changed, ` +
    `${r.filesRemoved} removed; ${r.seconds.toFixed(2)} s, start ${r.start.startLsn} end ${r.end.endLsn} on timeline ${r.end.timeline}`
  );
}

/**
 * `pgbb backup --incremental-from PRIOR -D TARGET`: the refresh of PRIOR in
 * place, so TARGET must be PRIOR (plain format). Returns the directory.
 */
export function checkIncrementalFrom(prior: string, target: string, format: 'plain' | 'tar'): string {
  if (format !== 'plain' || target === '-') throw new UsageError('--incremental-from needs a plain backup (-F plain) written to a directory');
  if (path.resolve(prior) !== path.resolve(target)) {
    throw new UsageError(`--incremental-from refreshes the prior backup in place: -D must name the same directory as "${prior}" (copy it first to keep the old one)`);
  }
  return target;
}
