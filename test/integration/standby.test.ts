/**
 * `pgbb standby` end to end against a real PostgreSQL 15 primary: from a
 * missing directory to a standby that streams (with a slot it creates),
 * replays what the primary writes afterwards, and is left alone by a second
 * run; a run killed with SIGKILL mid-backup is completed by the next run
 * (not started over); --rebuild re-seeds a running standby in place; a live
 * primary, a directory of someone else's files and (as root) a root-owned
 * place are refused before anything is written.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, test } from 'node:test';
import { Client } from 'pg';
import { fillSampleData, freePort, type Cluster } from '../support/cluster';
import { isRoot } from '../support/run';
import { killServer } from '../support/reaper';
import { connArgs, testScratch } from '../support/scratch';
import { PGBB_CLI, runPgbb } from '../support/pgbb';

const scratch = testScratch();
let primary: Cluster;
let tsLocation: string;

before(async () => {
  primary = await scratch.cluster();
  await fillSampleData(primary, { scale: 2 });
  await primary.query('CHECKPOINT');
  [{ tsLocation }] = await primary.query<{ tsLocation: string }>(`SELECT pg_tablespace_location(oid) AS "tsLocation" FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
});

interface StandbyPlace {
  dataDir: string;
  sock: string;
  port: number;
  /** -o for pg_ctl: its own port and socket, loopback only. */
  options: string;
  /** Where -T puts the primary's tablespace (this host has the primary's own location). */
  tablespace: string;
}

async function place(name: string): Promise<StandbyPlace> {
  const base = await scratch.dir(`pgbb-standby-${name}-`);
  const sock = join(base, 'sock');
  await fs.mkdir(sock);
  if (isRoot()) await fs.chown(sock, statSync(base).uid, statSync(base).gid);
  const port = await freePort();
  const p = { dataDir: join(base, 'data'), sock, port, options: `-p ${port} -k ${sock} -c listen_addresses=127.0.0.1`, tablespace: join(base, 'ts') };
  // Whatever a test leaves running is stopped by its pid.
  scratch.defer(async () => {
    const pid = postmasterPid(p.dataDir);
    if (pid) await killServer(pid);
  });
  return p;
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const standbyArgs = (p: StandbyPlace, extra: string[] = []) => [
  'standby', ...connArgs(primary), '-D', p.dataDir, '-T', `${tsLocation}=${p.tablespace}`, '-c', 'fast', '-o', p.options, '--json', ...extra,
];

function events(stderr: string): Array<Record<string, any>> {
  return stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

const resultOf = (stderr: string) => {
  const r = events(stderr).find((e) => e.event === 'result' && 'replayLagBytes' in e);
  assert.ok(r, `no standby result in:\n${stderr}`);
  return r;
};

async function onStandby<T = any>(p: StandbyPlace, sql: string): Promise<T[]> {
  const c = new Client({ host: p.sock, port: p.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

/** Waits until the standby has replayed the primary's current position, then compares a digest of the data. */
async function sameData(p: StandbyPlace): Promise<void> {
  const [{ lsn }] = await primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  const digest = `SELECT count(*)::text AS n, sum(abalance)::text AS s, md5(string_agg(aid::text || ':' || abalance, ',' ORDER BY aid)) AS h FROM pgbench_accounts`;
  for (let i = 0; ; i++) {
    const [{ caught }] = await onStandby<{ caught: boolean }>(p, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn AS caught`);
    if (caught) break;
    assert.ok(i < 120, `the standby did not replay up to ${lsn} within 60 s`);
    await sleep(500);
  }
  assert.deepEqual(await onStandby(p, digest), await primary.query(digest));
}

test('standby: from nothing to a streaming standby with its own slot; it replays later writes; a second run leaves it be', async () => {
  const p = await place('fresh');
  const r = await runPgbb(standbyArgs(p, ['--create-slot', 'pgbb_standby_fresh']));
  assert.equal(r.code, 0, r.stderr);
  const res = resultOf(r.stderr);
  assert.equal(res.status, 'streaming');
  assert.equal(res.found, 'new');
  assert.equal(res.slot, 'pgbb_standby_fresh');
  assert.ok(res.bytesWritten > 10 * 1024 * 1024, `wrote only ${res.bytesWritten} bytes`);
  const steps = events(r.stderr).filter((e) => e.event === 'step').map((e) => e.step);
  for (const s of ['server', 'slot', 'refresh', 'recovery_config', 'start', 'streaming']) assert.ok(steps.includes(s), `no ${s} step in ${steps}`);
  assert.ok(events(r.stderr).every((e) => e.event !== 'step' || typeof e.time === 'string'));

  // What a standby needs, as pg_basebackup -R writes it, owner-only.
  assert.ok(existsSync(join(p.dataDir, 'standby.signal')));
  const conf = readFileSync(join(p.dataDir, 'postgresql.auto.conf'), 'utf8');
  assert.match(conf, /^primary_conninfo = '.*port=\d+.*'$/m);
  assert.match(conf, /^primary_slot_name = 'pgbb_standby_fresh'$/m);
  assert.equal(statSync(join(p.dataDir, 'postgresql.auto.conf')).mode & 0o777, 0o600);
  const [slot] = await primary.query(`SELECT active, slot_type FROM pg_replication_slots WHERE slot_name = 'pgbb_standby_fresh'`);
  assert.deepEqual(slot, { active: true, slot_type: 'physical' });
  if (isRoot()) assert.equal(statSync(join(p.dataDir, 'base')).uid, statSync(join(p.dataDir, '..')).uid, 'files belong to the directory owner');

  // The tablespace went where -T said, linked from pg_tblspc, and its table is there.
  const [{ oid }] = await primary.query<{ oid: string }>(`SELECT oid::text FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
  assert.equal(await fs.readlink(join(p.dataDir, 'pg_tblspc', oid)), p.tablespace);
  await primary.query('UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid % 50 = 0');
  await primary.query(`INSERT INTO pgbb_ts_rows VALUES (-1, 'after the standby started')`);
  await sameData(p);
  assert.deepEqual(await onStandby(p, 'SELECT payload FROM pgbb_ts_rows WHERE id = -1'), [{ payload: 'after the standby started' }]);
  const [{ recovering }] = await onStandby(p, 'SELECT pg_is_in_recovery() AS recovering');
  assert.equal(recovering, true);

  // Again: it is running and streaming, so there is nothing to do but say so.
  const again = await runPgbb(standbyArgs(p, ['--create-slot', 'pgbb_standby_fresh']));
  assert.equal(again.code, 0, again.stderr);
  const res2 = resultOf(again.stderr);
  assert.equal(res2.found, 'running');
  assert.equal(res2.bytesWritten, 0);
  assert.equal(res2.status, 'streaming');

  // --rebuild: stopped, re-seeded in place writing only what differs, started again.
  await primary.query('UPDATE pgbench_accounts SET abalance = abalance - 3 WHERE aid BETWEEN 1 AND 2000');
  const rebuilt = await runPgbb(standbyArgs(p, ['-S', 'pgbb_standby_fresh', '--rebuild']));
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  const res3 = resultOf(rebuilt.stderr);
  assert.equal(res3.status, 'streaming');
  assert.ok(events(rebuilt.stderr).some((e) => e.step === 'stop'));
  assert.ok(res3.bytesWritten < res.bytesWritten * 0.8 && res3.chunksUnchanged > 0, `rebuild wrote ${res3.bytesWritten} bytes, the first run ${res.bytesWritten}`);
  await sameData(p);
});

test('standby: a run killed mid-backup is completed by the next run, not started over', async () => {
  const p = await place('resume');
  // Hint bits settled first: the second run should find the first run's chunks as they were.
  await primary.query('VACUUM FREEZE');
  await primary.query('CHECKPOINT');
  // Throttled so that there is time to kill it in the middle.
  const child = spawn(process.execPath, [PGBB_CLI, ...standbyArgs(p, ['-r', '4M'])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const base = join(p.dataDir, 'base');
  for (let i = 0; ; i++) {
    const bytes = await du(base);
    if (bytes > 12 * 1024 * 1024) break;
    assert.ok(i < 600 && child.exitCode === null, `the backup did not get far enough (${bytes} bytes; exit ${child.exitCode}):\n${stderr}`);
    await sleep(100);
  }
  child.kill('SIGKILL');
  await new Promise((res) => child.once('close', res));
  assert.ok(existsSync(join(p.dataDir, 'pgbb_refresh_incomplete')), 'the cut-off run left its refresh marker');
  assert.ok(!existsSync(join(p.dataDir, 'backup_manifest')));
  assert.equal(postmasterPid(p.dataDir), undefined);

  const r = await runPgbb(standbyArgs(p));
  assert.equal(r.code, 0, r.stderr);
  const res = resultOf(r.stderr);
  assert.equal(res.found, 'incomplete');
  assert.equal(res.status, 'streaming');
  assert.ok(res.chunksUnchanged > 5, `the second run rewrote everything: ${JSON.stringify(res)}`);
  assert.ok(res.bytesWritten < res.bytesReceived * 0.8, `the second run wrote ${res.bytesWritten} of ${res.bytesReceived} bytes`);
  await sameData(p);
});

test('standby: refuses a live primary, a directory of other files and (as root) a root-owned place, writing nothing', async () => {
  const live = await runPgbb(['standby', ...connArgs(primary), '-D', primary.dataDir, '-o', '-p 1']);
  assert.equal(live.code, 1);
  assert.match(live.stderr, /^pgbb: error: .*running PostgreSQL server that is not a standby/m);
  assert.ok(!existsSync(join(primary.dataDir, 'standby.signal')));

  const p = await place('other');
  await fs.mkdir(p.dataDir, { mode: 0o700 });
  await fs.writeFile(join(p.dataDir, 'notes.txt'), 'mine');
  if (isRoot()) await fs.chown(p.dataDir, statSync(join(p.dataDir, '..')).uid, statSync(join(p.dataDir, '..')).gid);
  const other = await runPgbb(standbyArgs(p));
  assert.equal(other.code, 1);
  assert.match(events(other.stderr).find((e) => e.event === 'error')?.message ?? '', /cannot become a standby: it is not empty and holds no PG_VERSION/);
  assert.deepEqual(await fs.readdir(p.dataDir), ['notes.txt']);

  if (isRoot()) {
    const rootOwned = await fs.mkdtemp(join(await scratch.dir('pgbb-root-'), 'x'));
    await fs.chown(rootOwned, 0, 0);
    const r = await runPgbb(['standby', ...connArgs(primary), '-D', join(rootOwned, 'data')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^pgbb: error: running as root and ".*" is owned by root: PostgreSQL cannot run as root/m);
    assert.deepEqual(await fs.readdir(rootOwned), []);
  }
});

async function du(dir: string): Promise<number> {
  let total = 0;
  const names = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
  for (const n of names) {
    const st = await fs.lstat(join(dir, n)).catch(() => null);
    if (st?.isFile()) total += st.size;
  }
  return total;
}

