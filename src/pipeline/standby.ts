/**
 * standby: from an empty directory (or one a cut-off earlier run left) to a
 * running standby that streams — what `pgbb standby` runs.
 *
 *   ask the primary (version, system) ─► [--create-slot: the slot, kept] ─►
 *   look at DATADIR (src/standby/data-dir-state.ts):
 *     new / incomplete ─► seed ─► refresh (WAL streamed)   resumable: a cut-off
 *     ready             ─►                                 run leaves the refresh
 *     stopped standby   ─► [--rebuild: refresh]            marker, and the next
 *     running standby   ─► [--rebuild: stop, refresh]      completes it
 *   ─► recovery settings (postgresql.auto.conf, standby.signal) ─► pg_ctl start
 *   ─► wait until pg_stat_wal_receiver says streaming ─► replay lag
 *
 * The backup is a refresh from the start (src/standby/seed.ts): a plain
 * backup that fails removes what it wrote, a refresh that fails leaves its
 * marker and what it wrote, and the next refresh writes only what differs.
 * A running server that is not a standby, and a stopped one without
 * standby.signal, are refused (--rebuild re-seeds the latter); the primary's
 * own data directory is refused by the refresh's checks.
 *
 * Errors: those of refresh (saying so when DATADIR is left resumable); PgbbError 'standby' for a DATADIR pgbb will not
 * use, 'start', 'not_streaming', 'pg_bin'.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PgbbError } from '../errors';
import { clientConfig, connectionSettings, type ConnectionOptions } from '../net/conninfo';
import { ReplicationConnection } from '../net/replication-connection';
import { readServerSettings, type ServerSettings } from '../net/server-settings';
import { DEFAULT_TIMEOUT_MS } from '../net/silence-watchdog';
import { createPermanentSlot } from '../net/permanent-slot';
import { validateSlotName } from '../codec/protocol/replication-commands';
import { LiveDataDirectoryError } from '../io/live-cluster';
import { REFRESH_MARKER } from '../io/refresh-marker';
import { dataDirState, type DataDirState } from '../standby/data-dir-state';
import { seedDataDirectory } from '../standby/seed';
import { writeRecoveryFiles } from '../standby/recovery-files';
import { primaryConninfo } from '../standby/primary-conninfo';
import { findServerBinaries } from '../standby/pg-binaries';
import { listening, lsnBytes, startServer, stopServer, waitForStreaming, type StreamingStatus } from '../standby/standby-server';
import { refresh, type RefreshResult } from './refresh';
import type { RefreshOptions } from './refresh-plan';
import type { Reporter } from '../report/types';
import { majorOf } from '../codec/server-version';

export type StandbyStep = 'server' | 'slot' | 'datadir' | 'refresh' | 'recovery_config' | 'stop' | 'start' | 'waiting' | 'streaming';

export interface StandbyOptions extends Omit<RefreshOptions, 'target' | 'wal' | 'noSlot' | 'onStep' | 'incremental'> {
  /** The standby's data directory. */
  target: string;
  /** --create-slot NAME: a physical slot created on the primary (kept; reused when it exists). */
  createSlot?: string;
  /** -o: options pg_ctl passes to postgres. */
  serverOptions?: string;
  /** --pg-bin: where pg_ctl and postgres are (else PATH, pg_config, Debian's layout). */
  pgBin?: string;
  /** pg_ctl -l; default <target>/pgbb_standby.log. */
  logFile?: string;
  /** --rebuild: re-seed an existing standby (stopping it first), writing only what differs. */
  rebuild?: boolean;
  /** How long to wait for the standby to start and then to stream, in ms (default 5 minutes). */
  waitTimeout?: number;
  /** Each step, for progress (the CLI prints them, or --json events). */
  onStep?: (step: StandbyStep, message: string, detail?: Record<string, unknown>) => void;
}

export interface StandbyResult {
  dataDir: string;
  /** What DATADIR was when the run began. */
  found: DataDirState['kind'];
  /** The refresh, when one ran. */
  refreshed: RefreshResult | null;
  slot: string | null;
  status: StreamingStatus;
  /** The primary's WAL position minus what the standby has replayed, when it streamed. */
  replayLagBytes: number;
  seconds: number;
}

const DEFAULT_WAIT_MS = 5 * 60_000;
/** Least time between two `waiting` steps that say the same status (the -P convention: a line every 5 s). */
const WAITING_LINE_MS = 5000;

async function askPrimary(connection: ConnectionOptions, timeout: number, signal: AbortSignal | undefined, createSlot?: string): Promise<{ settings: ServerSettings; slotCreated: boolean | null }> {
  const conn = await ReplicationConnection.connect(clientConfig(connection, true), { timeoutMs: timeout, signal });
  try {
    const settings = await readServerSettings(conn);
    if (createSlot === undefined) return { settings, slotCreated: null };
    return { settings, slotCreated: await createPermanentSlot(conn, createSlot, settings.serverVersion, true) };
  } finally {
    await conn.close().catch(() => {});
  }
}

/** The options alone, checked before anything is looked at (the CLI calls it before it drops root). */
export function checkStandbyOptions(o: StandbyOptions): void {
  if (o.createSlot !== undefined && o.slot !== undefined) throw new PgbbError('usage', '-S and --create-slot cannot be used together');
  if (o.createSlot !== undefined) validateSlotName(o.createSlot);
  if (o.slot !== undefined) validateSlotName(o.slot);
  if (o.waitTimeout !== undefined && !(o.waitTimeout > 0)) throw new PgbbError('usage', '--wait-timeout must be more than 0 seconds');
  connectionSettings(o.connection); // every setting checked before anything is created
}

export async function standby(o: StandbyOptions): Promise<StandbyResult> {
  const began = Date.now();
  const dataDir = path.resolve(o.target);
  const step = o.onStep ?? (() => {});
  const timeout = o.timeout ?? DEFAULT_TIMEOUT_MS;
  const waitMs = o.waitTimeout ?? DEFAULT_WAIT_MS;
  checkStandbyOptions(o);

  const found = await dataDirState(dataDir);
  if (found.kind === 'running' && !found.standby) {
    throw new LiveDataDirectoryError(`"${dataDir}" is the data directory of a running PostgreSQL server that is not a standby (${found.why}): refusing to touch it`);
  }
  if (found.kind === 'other' && !o.rebuild) {
    throw new PgbbError('standby', `"${dataDir}" cannot become a standby: ${found.why} (use --rebuild to re-seed a former standby or server in place, writing only what differs)`);
  }
  // Found before anything is changed: a missing pg_ctl should not surface after a 2-hour backup.
  const { settings, slotCreated } = await askPrimary(o.connection, timeout, o.signal, o.createSlot);
  const major = majorOf(settings.serverVersion);
  const bin = findServerBinaries(major, o.pgBin);
  step('server', `primary: PostgreSQL ${settings.serverVersion}, system ${settings.systemIdentifier}, timeline ${settings.timeline}; server programs in ${bin.dir} (${bin.from})`, {
    serverVersion: settings.serverVersion, systemIdentifier: settings.systemIdentifier, pgBin: bin.dir, pgBinFrom: bin.from,
  });
  const slot = o.createSlot ?? o.slot ?? null;
  if (slotCreated !== null) step('slot', `replication slot "${o.createSlot}" ${slotCreated ? 'created' : 'exists already: reused'}`, { slot: o.createSlot, created: slotCreated });
  const logFile = path.resolve(o.logFile ?? path.join(dataDir, 'pgbb_standby.log'));
  const run = { pgCtl: bin.pgCtl, dataDir, logFile };

  let state = found;
  step('datadir', describeState(dataDir, found), { found: found.kind });
  if (state.kind === 'running' && o.rebuild) {
    step('stop', `stopping the standby to rebuild it`);
    await stopServer(run);
    state = await dataDirState(dataDir);
  }
  let refreshed: RefreshResult | null = null;
  const needsRefresh = state.kind === 'new' || state.kind === 'incomplete' || (o.rebuild && state.kind !== 'running');
  if (needsRefresh) {
    if (state.kind === 'new' || state.kind === 'incomplete') await seedDataDirectory(dataDir, major, o.sync ?? true);
    step('refresh', state.kind === 'new' ? 'taking the backup (resumable)' : state.kind === 'incomplete' ? 'completing the interrupted backup' : 're-seeding in place');
    const { createSlot: _c, serverOptions: _s, pgBin: _p, logFile: _l, rebuild: _r, waitTimeout: _w, onStep: _o, ...common } = o;
    // A seed is an "interrupted refresh" of nothing: the refresh's warnings about that would only mislead.
    const reporter = common.reporter && state.kind === 'new' ? quietAboutSeed(common.reporter) : common.reporter;
    refreshed = await refresh({ ...common, reporter, target: dataDir, wal: 'stream', slot: slot ?? undefined, incremental: 'off' }).catch(async (err) => {
      throw await sayResumable(err, dataDir);
    });
  }
  if (state.kind !== 'running') {
    step('recovery_config', `standby.signal and primary_conninfo${slot ? ` with primary_slot_name "${slot}"` : ''} written to postgresql.auto.conf`);
    await writeRecoveryFiles(dataDir, { primaryConninfo: primaryConninfo(o.connection), slot: slot ?? undefined }, o.sync ?? true);
    step('start', `starting the standby (pg_ctl start, log in ${logFile})`);
    await startServer(run, { serverOptions: o.serverOptions, waitSeconds: Math.max(1, Math.round(waitMs / 1000)) });
  }
  const at = await listening(dataDir);
  const cfg = clientConfig(o.connection, false);
  const s = connectionSettings(o.connection);
  let waitSaid = { status: '', ms: 0 };
  const status = await waitForStreaming(dataDir, at, {
    client: { user: cfg.user, password: cfg.password, database: s.dbname || 'postgres', application_name: 'pgbb', connectionTimeoutMillis: 10_000 },
    timeoutMs: waitMs,
    signal: o.signal,
    onStatus: (st, ms) => {
      if (st.status === 'streaming') return;
      // The standby is polled twice a second; a person (or a log) needs a line when the status changes, else every 5 s.
      if (st.status === waitSaid.status && ms - waitSaid.ms < WAITING_LINE_MS) return;
      waitSaid = { status: st.status, ms };
      step('waiting', `waiting for the standby to stream: WAL receiver ${st.status} (${Math.round(ms / 1000)} s)`, { status: st.status });
    },
  });
  const { settings: now } = await askPrimary(o.connection, timeout, o.signal);
  const replayLagBytes = lsnBytes(now.xlogpos, status.replayLsn);
  step('streaming', `the standby streams: replayed up to ${status.replayLsn}, ${replayLagBytes} bytes behind the primary`, {
    replayLsn: status.replayLsn, replayLagBytes, replayDelaySeconds: status.replayDelaySeconds,
  });
  return { dataDir, found: found.kind, refreshed, slot, status, replayLagBytes, seconds: (Date.now() - began) / 1000 };
}

/**
 * A refresh that failed and left its marker: the one error line also says
 * that the same command completes it (the message is extended in place so
 * that the error keeps its class and code for --json and the exit).
 */
async function sayResumable(err: unknown, dataDir: string): Promise<unknown> {
  if (!(err instanceof PgbbError)) return err;
  const marked = await fs.lstat(path.join(dataDir, REFRESH_MARKER)).then((st) => st.isFile(), () => false);
  if (marked) err.message += `; "${dataDir}" is left resumable: run the same pgbb standby again to complete it`;
  return err;
}

function quietAboutSeed(r: Reporter): Reporter {
  return { ...r, start: (ev) => r.start(ev), progress: (p) => r.progress(p), result: (x) => r.result(x), error: (e) => r.error(e), close: () => r.close(),
    warning: (code, message) => {
      if (code !== 'incomplete_refresh' && code !== 'reread') r.warning(code, message);
    } };
}

function describeState(dir: string, s: DataDirState): string {
  switch (s.kind) {
    case 'new': return `"${dir}" is ${s.exists ? 'empty' : 'new'}`;
    case 'incomplete': return `"${dir}" holds an interrupted backup: resuming it`;
    case 'ready': return `"${dir}" holds a complete backup that has not run yet`;
    case 'stopped': return `"${dir}" is a stopped standby`;
    case 'running': return `"${dir}" is a running standby`;
    case 'other': return `"${dir}": ${s.why}`;
  }
}
