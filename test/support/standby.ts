/**
 * What the `pgbb standby` tests (standby.test.ts, versions.test.ts) share: a
 * place for a standby (its own port and socket directory), its --json
 * result, the wait until it has replayed the primary's position, and runs
 * cut off in the middle of their backup the two ways a user meets:
 *
 *   const p = await standbyPlace(base);           // p.options for -o
 *   const cut = await cutOffStandby(primary, args, 'kill', 6 << 20);
 *   const r = standbyResult((await runPgbb(args)).stderr);
 *   await waitForReplay(primary, p);
 *   await assertSameData(primary, p);             // waits, then compares pgbench_accounts
 *   const q = await scratchStandbyPlace(scratch, 'name');  // its server stopped after the file's tests
 *
 * 'kill' is kill -9 of pgbb; 'network' ends the backup's connection on the
 * server (pg_terminate_backend of the walsender sending it), which pgbb sees
 * as a connection that went away. Either happens once the server has sent
 * `afterBytes` of the backup (pg_stat_progress_basebackup), so that the run
 * is cut off in its middle, not before or after it.
 *
 * Errors: assertion failures naming what was seen.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { freePort, type Cluster } from './cluster';
import { spawnPgbb, waitFor } from './failure-helpers';
import type { PgbbRun } from './pgbb';
import { isRoot } from './run';
import { killServer } from './reaper';
import type { Scratch } from './scratch';

export interface StandbyPlace {
  dataDir: string;
  sock: string;
  port: number;
  /** -o for pg_ctl: its own port and socket, loopback only. */
  options: string;
  /** Where -T may put the primary's tablespace. */
  tablespace: string;
}

/** base/data for the standby, base/sock for its socket (owned as base is, for the server's user). */
export async function standbyPlace(base: string): Promise<StandbyPlace> {
  const sock = join(base, 'sock');
  await fs.mkdir(sock);
  if (isRoot()) await fs.chown(sock, statSync(base).uid, statSync(base).gid);
  const port = await freePort();
  return { dataDir: join(base, 'data'), sock, port, options: `-p ${port} -k ${sock} -c listen_addresses=127.0.0.1`, tablespace: join(base, 'ts') };
}

/** A place under a scratch directory; whatever server runs on it when the file's tests end is stopped by its pid. */
export async function scratchStandbyPlace(scratch: Scratch, name: string): Promise<StandbyPlace> {
  const p = await standbyPlace(await scratch.dir(`pgbb-standby-${name}-`));
  scratch.defer(async () => {
    const pid = postmasterPid(p.dataDir);
    if (pid) await killServer(pid);
  });
  return p;
}

export function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function standbyEvents(stderr: string): Array<Record<string, any>> {
  return stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** The standby's --json `result` (the refresh inside it reports one of its own, without replayLagBytes). */
export function standbyResult(stderr: string): Record<string, any> {
  const r = standbyEvents(stderr).find((e) => e.event === 'result' && 'replayLagBytes' in e);
  assert.ok(r, `no standby result in:\n${stderr}`);
  return r;
}

export async function onStandby<T = any>(p: StandbyPlace, sql: string): Promise<T[]> {
  const c = new Client({ host: p.sock, port: p.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

/** Waits (up to 60 s) until the standby has replayed what the primary has written so far. */
export async function waitForReplay(primary: Cluster, p: StandbyPlace): Promise<void> {
  const [{ lsn }] = await primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  for (let i = 0; ; i++) {
    const [{ caught }] = await onStandby<{ caught: boolean }>(p, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn AS caught`);
    if (caught) return;
    assert.ok(i < 120, `the standby did not replay up to ${lsn} within 60 s`);
    await sleep(500);
  }
}

/** Waits until the standby has replayed the primary's position, then compares a digest of pgbench_accounts. */
export async function assertSameData(primary: Cluster, p: StandbyPlace): Promise<void> {
  await waitForReplay(primary, p);
  const digest = `SELECT count(*)::text AS n, sum(abalance)::text AS s, md5(string_agg(aid::text || ':' || abalance, ',' ORDER BY aid)) AS h FROM pgbench_accounts`;
  assert.deepEqual(await onStandby(p, digest), await primary.query(digest));
}

/** What a cut-off run leaves: the refresh marker, no manifest (so never taken for a backup), no server. */
export function assertResumable(dataDir: string, why: string): void {
  assert.ok(existsSync(join(dataDir, 'pgbb_refresh_incomplete')), `${why}: the refresh marker is there`);
  assert.ok(!existsSync(join(dataDir, 'backup_manifest')), `${why}: no backup_manifest`);
  assert.equal(postmasterPid(dataDir), undefined, `${why}: no server started`);
}

/** Runs `pgbb ARGS` (throttle it with -r) and cuts it off once the server has sent afterBytes of the backup. */
export async function cutOffStandby(primary: Cluster, args: string[], how: 'kill' | 'network', afterBytes: number): Promise<PgbbRun> {
  const p = spawnPgbb(args);
  const exited = p.done.then(() => true);
  await waitFor(`the backup to send ${afterBytes} bytes`, async () => {
    if (await Promise.race([exited, sleep(0, false)])) throw new Error(`pgbb ended before it was cut off:\n${(await p.done).stderr}`);
    const rows = await primary.query<{ sent: string }>('SELECT backup_streamed::text AS sent FROM pg_stat_progress_basebackup');
    return rows.some((r) => Number(r.sent) >= afterBytes);
  }, 120_000);
  if (how === 'kill') p.child.kill('SIGKILL');
  else {
    const [{ n }] = await primary.query<{ n: number }>('SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_progress_basebackup');
    assert.equal(n, 1, 'one backup to cut off');
  }
  return p.done;
}

/**
 * The resume tests' first half: VACUUM FREEZE and CHECKPOINT (hint bits
 * settled, so that the completing run finds the earlier runs' chunks as they
 * were), then a run killed with -9 after killAt bytes and one whose backup
 * connection the server ends after cutAt, each checked to leave DATADIR
 * resumable. `args` are the `pgbb standby` arguments (with --json); the runs
 * are throttled to 8 MB/s so that they are cut off in their middle.
 * Returns the error the second run reported.
 */
export async function cutOffTwice(primary: Cluster, p: StandbyPlace, args: (extra: string[]) => string[], killAt: number, cutAt: number): Promise<string> {
  await primary.query('VACUUM FREEZE');
  await primary.query('CHECKPOINT');
  const killed = await cutOffStandby(primary, args(['-r', '8M']), 'kill', killAt);
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assertResumable(p.dataDir, 'after kill -9');

  const cut = await cutOffStandby(primary, args(['-r', '8M']), 'network', cutAt);
  assert.equal(cut.code, 1, cut.stderr);
  const ev = standbyEvents(cut.stderr);
  assert.equal(ev.find((e) => e.event === 'step' && e.code === 'datadir')?.found, 'incomplete', 'the second run found the first one\'s');
  assert.ok(!ev.some((e) => e.event === 'result'), 'no result from a run that was cut off');
  const errors = ev.filter((e) => e.event === 'error');
  assert.equal(errors.length, 1, cut.stderr);
  assert.match(errors[0].message, /connection to server .* lost/);
  assert.ok(errors[0].message.endsWith(`; "${p.dataDir}" is left resumable: run the same pgbb standby again to complete it`), errors[0].message);
  assertResumable(p.dataDir, 'after the connection was ended');
  return errors[0].message;
}
