/**
 * `pgbb standby` end to end against a real PostgreSQL 15 primary: from a
 * missing directory to a standby that streams (with a slot it creates),
 * replays what the primary writes afterwards, and is left alone by a second
 * run; a run killed with SIGKILL mid-backup, and one whose backup connection
 * the server ends, are completed by the next run (not started over); a
 * standby that starts but does not stream fails the run; --rebuild re-seeds
 * a running standby in place, one that was promoted and written to, and a
 * stopped one whose WAL the primary no longer has; a
 * live primary, a directory of someone else's files and (as root) a
 * root-owned place are refused before anything is written.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { DEBIAN_PG15_BIN, fillSampleData, type Cluster } from '../support/cluster';
import { isRoot, run } from '../support/run';
import { connArgs, testScratch } from '../support/scratch';
import { runPgbb } from '../support/pgbb';
import { assertSameData, cutOffTwice, onStandby, scratchStandbyPlace, standbyEvents, standbyResult, type StandbyPlace } from '../support/standby';

const scratch = testScratch();
let primary: Cluster;
let tsLocation: string;
/** What the first run of the first test wrote: a fresh backup's bytes, to compare rebuilds with. */
let freshBytes = 0;
/** The standby the resume test leaves running, for the tests after it. */
let resumed: StandbyPlace | undefined;

before(async () => {
  primary = await scratch.cluster();
  await fillSampleData(primary, { scale: 2 });
  await primary.query('CHECKPOINT');
  [{ tsLocation }] = await primary.query<{ tsLocation: string }>(`SELECT pg_tablespace_location(oid) AS "tsLocation" FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
});

const place = (name: string) => scratchStandbyPlace(scratch, name);

const standbyArgs = (p: StandbyPlace, extra: string[] = []) => [
  'standby', ...connArgs(primary), '-D', p.dataDir, '-T', `${tsLocation}=${p.tablespace}`, '-c', 'fast', '-o', p.options, '--json', ...extra,
];

const events = standbyEvents;
/** pg_ctl stop -m fast: a clean stop, so that the next start is quick. */
const stopStandby = (p: StandbyPlace) => run(join(DEBIAN_PG15_BIN, 'pg_ctl'), ['stop', '-D', p.dataDir, '-m', 'fast', '-w'], { asPostgres: true });
const resultOf = standbyResult;

const sameData = (p: StandbyPlace) => assertSameData(primary, p);

test('standby: from nothing to a streaming standby with its own slot; it replays later writes; a second run leaves it be', async (t) => {
  const p = await place('fresh');
  const r = await runPgbb(standbyArgs(p, ['--create-slot', 'pgbb_standby_fresh']));
  assert.equal(r.code, 0, r.stderr);
  const res = resultOf(r.stderr);
  assert.equal(res.status, 'streaming');
  assert.equal(res.found, 'new');
  assert.equal(res.slot, 'pgbb_standby_fresh');
  assert.ok(res.bytesWritten > 10 * 1024 * 1024, `wrote only ${res.bytesWritten} bytes`);
  assert.ok(Number.isInteger(res.replayLagBytes) && res.replayLagBytes >= 0, `replay lag ${res.replayLagBytes}`);
  freshBytes = res.bytesWritten;
  const steps = events(r.stderr).filter((e) => e.event === 'step').map((e) => e.code);
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
  assert.ok(events(rebuilt.stderr).some((e) => e.code === 'stop'));
  t.diagnostic(`rebuild of the running standby: received ${res3.bytesReceived} bytes, wrote ${res3.bytesWritten}; the fresh one wrote ${res.bytesWritten}`);
  assert.ok(res3.bytesWritten < res.bytesWritten * 0.8 && res3.chunksUnchanged > 0, `rebuild wrote ${res3.bytesWritten} bytes, the first run ${res.bytesWritten}`);
  await sameData(p);
});

test('standby: a run killed with -9, then one whose backup connection the server ends, are completed by the next run, not started over', async () => {
  const p = await place('resume');
  await cutOffTwice(primary, p, (extra) => standbyArgs(p, extra), 8 << 20, 24 << 20);

  const r = await runPgbb(standbyArgs(p));
  assert.equal(r.code, 0, r.stderr);
  const res = resultOf(r.stderr);
  assert.equal(res.found, 'incomplete');
  assert.equal(res.status, 'streaming');
  assert.ok(res.chunksUnchanged > 5, `the last run rewrote everything: ${JSON.stringify(res)}`);
  assert.ok(res.bytesWritten < res.bytesReceived * 0.8, `the last run wrote ${res.bytesWritten} of ${res.bytesReceived} bytes`);
  await sameData(p);
  resumed = p;
});

test('standby: a standby that starts but does not stream fails the run, in one line; the next run finds it and exits 0 once it streams', async () => {
  assert.ok(resumed, 'the resume test left a standby');
  const p = resumed;
  await stopStandby(p);
  // -o reaches the server: its primary_conninfo, on the command line, outranks postgresql.auto.conf's.
  const r = await runPgbb(['standby', ...connArgs(primary), '-D', p.dataDir, '-o', `${p.options} -c primary_conninfo=host=${p.sock}/nowhere`, '--wait-timeout', '5']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^pgbb: error: the standby in ".*" runs but does not stream after 5 s: its WAL receiver's status is "none"; see its log\n$/m);
  assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('pgbb: error:')).length, 1);
  assert.ok(!/streams \(/.test(r.stderr), 'no summary line from a run that did not stream');
  assert.deepEqual(await onStandby(p, "SELECT current_setting('primary_conninfo') AS c"), [{ c: `host=${p.sock}/nowhere` }]);

  // Restarted with the settings pgbb wrote, it streams, and the next run says so.
  await stopStandby(p);
  const again = await runPgbb(standbyArgs(p));
  assert.equal(again.code, 0, again.stderr);
  assert.equal(resultOf(again.stderr).found, 'stopped');
  assert.equal(resultOf(again.stderr).status, 'streaming');
});

test('standby: --rebuild re-seeds a standby that was promoted and written to, writing only what differs; it follows the primary again', async (t) => {
  assert.ok(resumed, 'the resume test left a standby');
  const p = resumed;
  await onStandby(p, 'SELECT pg_promote()');
  await onStandby(p, 'UPDATE pgbench_accounts SET abalance = abalance + 1000 WHERE aid <= 5000');
  await onStandby(p, "INSERT INTO pgbb_ts_rows VALUES (-2, 'written on the promoted standby')");
  await onStandby(p, 'CHECKPOINT');
  // A running primary is never touched, --rebuild or not.
  const live = await runPgbb(standbyArgs(p, ['--rebuild']));
  assert.equal(live.code, 1, live.stderr);
  assert.match(events(live.stderr).find((e) => e.event === 'error')?.message ?? '', /running PostgreSQL server that is not a standby/);
  await stopStandby(p);
  const stopped = await runPgbb(standbyArgs(p));
  assert.equal(stopped.code, 1, stopped.stderr);
  assert.match(events(stopped.stderr).find((e) => e.event === 'error')?.message ?? '', /stopped server that is not a standby .*use --rebuild/);

  const r = await runPgbb(standbyArgs(p, ['--rebuild']));
  assert.equal(r.code, 0, r.stderr);
  const res = resultOf(r.stderr);
  assert.equal(res.found, 'other');
  assert.equal(res.status, 'streaming');
  t.diagnostic(`rebuild of the promoted standby: received ${res.bytesReceived} bytes, wrote ${res.bytesWritten}; a fresh standby wrote ${freshBytes}`);
  assert.ok(res.bytesWritten < freshBytes * 0.5, `the rebuild wrote ${res.bytesWritten} bytes, a fresh standby ${freshBytes}`);
  // On the primary's timeline again, its writes undone, the primary's later ones replayed.
  const [{ tli }] = await primary.query<{ tli: number }>('SELECT timeline_id AS tli FROM pg_control_checkpoint()');
  assert.deepEqual(await onStandby(p, 'SELECT received_tli AS tli FROM pg_stat_wal_receiver'), [{ tli }]);
  assert.deepEqual(await onStandby(p, 'SELECT count(*)::int AS n FROM pgbb_ts_rows WHERE id = -2'), [{ n: 0 }]);
  await primary.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 97 = 0');
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

test('standby: --rebuild re-seeds a stopped standby the primary has left behind (the WAL it would need is gone), writing only what differs', async (t) => {
  assert.ok(resumed, 'the resume test left a standby');
  const p = resumed;
  await stopStandby(p);
  const { stdout } = await run(join(DEBIAN_PG15_BIN, 'pg_controldata'), ['-D', p.dataDir], { asPostgres: true });
  const needed = /^Latest checkpoint's REDO WAL file:\s+(\S+)$/m.exec(stdout)?.[1];
  assert.ok(needed, stdout);
  for (let i = 0; i < 3; i++) await primary.query(`INSERT INTO pgbb_ts_rows VALUES (${-10 - i}, 'while the standby was down'); SELECT pg_switch_wal()`);
  await primary.query('CHECKPOINT');
  const onPrimary = (await primary.query<{ name: string }>('SELECT name FROM pg_ls_waldir()')).map((r) => r.name);
  assert.ok(!onPrimary.includes(needed), `${needed} is still on the primary`);

  const r = await runPgbb(standbyArgs(p, ['--rebuild']));
  assert.equal(r.code, 0, r.stderr);
  const res = resultOf(r.stderr);
  assert.equal(res.found, 'stopped');
  assert.equal(res.status, 'streaming');
  t.diagnostic(`rebuild of the stopped standby left behind: received ${res.bytesReceived} bytes, wrote ${res.bytesWritten}; a fresh standby wrote ${freshBytes}`);
  assert.ok(res.bytesWritten < freshBytes * 0.5, `the rebuild wrote ${res.bytesWritten} bytes, a fresh standby ${freshBytes}`);
  await sameData(p);
  assert.deepEqual(await onStandby(p, 'SELECT count(*)::int AS n FROM pgbb_ts_rows WHERE id <= -10'), [{ n: 3 }]);
});
