/**
 * The standby server's life as `pgbb standby` drives it: pg_ctl start and
 * stop, where the running server listens (postmaster.pid), and the wait until
 * its WAL receiver streams.
 *
 * pg_ctl runs with the caller's uid (src/standby/run-as-owner.ts has made it
 * the data directory's owner). Connections to the standby go to the socket
 * directory or address its postmaster.pid names, with the user (and password
 * settings) of the connection to the primary: the standby's pg_hba.conf and
 * roles are the primary's copy.
 *
 * Errors: PgbbError 'start' (pg_ctl failed; the log's last lines), 'not_streaming'
 * (the deadline passed; the WAL receiver's last status), 'interrupted'.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientConfig } from 'pg';
import { pgClient } from '../net/pg-module';
import { PgbbError } from '../errors';
import { readLimited } from '../io/read-limited';
import { pidAlive, POSTMASTER_PID } from '../io/live-cluster';
import { parseLsn } from '../codec/lsn';

export interface PgCtlRun {
  pgCtl: string;
  dataDir: string;
  logFile: string;
}

/** Runs pg_ctl; resolves with its output, rejects with its last lines and the log's. */
function pgCtl(run: PgCtlRun, args: string[], what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(run.pgCtl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (err) => reject(new PgbbError('start', `could not run "${run.pgCtl}": ${err.message}`)));
    child.on('close', async (code) => {
      if (code === 0) return resolve(out);
      const said = out.trim().split('\n').filter(Boolean).slice(-2).join(' / ');
      const log = await logTail(run.logFile);
      reject(new PgbbError('start', `pg_ctl could not ${what} the standby in "${run.dataDir}" (exit ${code}${said ? `: ${said}` : ''})${log ? `; server log "${run.logFile}" ends: ${log}` : ''}`));
    });
  });
}

/** The log's last two lines, capped: it is the server's, and may be large. */
async function logTail(file: string): Promise<string> {
  const fh = await fs.open(file, 'r').catch(() => null);
  if (!fh) return '';
  try {
    const { size } = await fh.stat();
    const n = Math.min(size, 4096);
    const buf = Buffer.alloc(n);
    await fh.read(buf, 0, n, size - n);
    return buf.toString('utf8').trim().split('\n').slice(-2).join(' / ');
  } finally {
    await fh.close();
  }
}

/** pg_ctl start -w: returns once the server accepts connections (a hot standby does once consistent). */
export async function startServer(run: PgCtlRun, o: { serverOptions?: string; waitSeconds: number }): Promise<void> {
  const args = ['start', '-D', run.dataDir, '-l', run.logFile, '-w', '-t', String(o.waitSeconds)];
  if (o.serverOptions) args.push('-o', o.serverOptions);
  await pgCtl(run, args, 'start');
}

export async function stopServer(run: PgCtlRun): Promise<void> {
  await pgCtl(run, ['stop', '-D', run.dataDir, '-m', 'fast', '-w', '-t', '120'], 'stop');
}

export interface Listening {
  pid: number;
  port: number;
  /** The first unix_socket_directories entry, or '' when the server has none. */
  socketDir: string;
  /** The first listen_addresses entry. */
  address: string;
}

/** postmaster.pid's lines 1, 4, 5 and 6 (pidfile.h LOCK_FILE_LINE_*). */
export async function listening(dataDir: string): Promise<Listening> {
  const file = path.join(dataDir, POSTMASTER_PID);
  const buf = await readLimited(file, { maxBytes: 64 * 1024, what: POSTMASTER_PID });
  const lines = buf ? buf.toString('utf8').split('\n') : [];
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!buf || !(pid > 0) || !(port > 0)) throw new PgbbError('start', `"${file}" does not say where the standby listens`);
  return { pid, port, socketDir: lines[4]?.trim() ?? '', address: (lines[5] ?? '').trim() };
}

export interface StreamingStatus {
  /** pg_stat_wal_receiver.status, or 'none' before the receiver runs. */
  status: string;
  flushedLsn: string | null;
  replayLsn: string | null;
  /** Seconds since the last replayed transaction's commit (null before one). */
  replayDelaySeconds: number | null;
}

export interface WaitOptions {
  /** What the standby connects as (user, password, TLS off: it is local). */
  client: ClientConfig;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Each status seen, for progress. */
  onStatus?: (s: StreamingStatus, elapsedMs: number) => void;
}

/** Polls the standby until its WAL receiver reports `streaming`. */
export async function waitForStreaming(dataDir: string, at: Listening, o: WaitOptions): Promise<StreamingStatus> {
  const began = Date.now();
  const host = at.socketDir || (at.address && at.address !== '*' ? at.address : '127.0.0.1');
  let last: StreamingStatus | null = null;
  let lastError = '';
  for (;;) {
    if (o.signal?.aborted) throw new PgbbError('interrupted', 'interrupted while waiting for the standby to stream');
    if (!pidAlive(at.pid)) throw new PgbbError('start', `the standby in "${dataDir}" (pid ${at.pid}) stopped while pgbb waited for it to stream`);
    const client = new (pgClient())({ ...o.client, host, port: at.port, ssl: false });
    client.on('error', () => {});
    try {
      await client.connect();
      const r = await client.query(
        `SELECT (SELECT status FROM pg_stat_wal_receiver) AS status,
                (SELECT flushed_lsn::text FROM pg_stat_wal_receiver) AS flushed,
                pg_last_wal_replay_lsn()::text AS replay,
                extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS delay`,
      );
      const row = r.rows[0] ?? {};
      last = { status: row.status ?? 'none', flushedLsn: row.flushed ?? null, replayLsn: row.replay ?? null, replayDelaySeconds: row.delay ?? null };
      o.onStatus?.(last, Date.now() - began);
      if (last.status === 'streaming') return last;
    } catch (err) {
      lastError = (err as Error).message;
    } finally {
      await client.end().catch(() => {});
    }
    if (Date.now() - began > o.timeoutMs) {
      const why = last ? `its WAL receiver's status is "${last.status}"` : `pgbb could not query it (${lastError})`;
      throw new PgbbError('not_streaming', `the standby in "${dataDir}" runs but does not stream after ${Math.round(o.timeoutMs / 1000)} s: ${why}; see its log`);
    }
    await sleep(500, undefined, { signal: o.signal }).catch(() => {});
  }
}

/** Bytes from `from` to `to` (LSN text), never negative. */
export function lsnBytes(to: string, from: string | null): number {
  if (!from) return Number(parseLsn(to));
  const d = parseLsn(to) - parseLsn(from);
  return d > 0n ? Number(d) : 0;
}
