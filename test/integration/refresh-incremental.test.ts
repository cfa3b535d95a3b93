/**
 * `pgbb refresh` against PostgreSQL 17 (the embedded binaries): with
 * summarize_wal on, the server is sent the backup's manifest and answers
 * with an INCREMENTAL backup, whose INCREMENTAL.<file> members are applied
 * in place. Correctness is judged the only way an incremental backup can be:
 * `pgbb verify` (manifest sizes and CRCs, page checksums, WAL) passes, and
 * the restored copy starts with the source's data. Also: the server refusing
 * (WAL summaries that do not reach back to the backup) falls back to full
 * streaming; a SIGKILLed incremental refresh is completed by the next one;
 * --no-incremental streams everything. (PG 15's pg_verifybackup cannot read
 * version 2 manifests, and the embedded 17 has none.)
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Cluster, dataFingerprint, embeddedBinDir, fillSampleData, makeTempDir } from '../support/cluster';
import { runPgbb } from '../support/pgbb';
import { runKilledRefresh } from '../support/refresh-killed';
import { run } from '../support/run';
import { restoreAndCompare } from '../support/restore-compare';

let cluster: Cluster;
let tsLocation: string;
const cleanup: Array<() => Promise<unknown>> = [];

before(async () => {
  // Summaries off at first: the first backup predates them, so the first refresh cannot be incremental.
  cluster = await Cluster.create({ binDir: embeddedBinDir(), conf: { summarize_wal: 'off' } });
  cleanup.push(() => cluster.destroy());
  await fillSampleData(cluster, { scale: 1 });
  await cluster.query('VACUUM FREEZE');
  await cluster.query('CHECKPOINT');
  [{ loc: tsLocation }] = await cluster.query<{ loc: string }>(`SELECT pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
});

after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
});

const conn = () => ['-d', `host=${cluster.host} port=${cluster.port} user=postgres`];

async function change(round: number): Promise<void> {
  const from = 1 + ((round * 7919) % 90_000);
  await cluster.query(`UPDATE pgbench_accounts SET abalance = abalance + ${round} WHERE aid BETWEEN ${from} AND ${from + 999}`);
  await cluster.query(`DROP TABLE IF EXISTS incr_t${round - 1}`);
  await cluster.query(`CREATE TABLE incr_t${round} AS SELECT i, md5(i::text) AS v FROM generate_series(1, 3000) i`);
  await cluster.query('VACUUM');
}

function resultOf(stderr: string): Record<string, number | string> {
  const line = stderr.split('\n').find((l) => l.includes('"event":"result"'));
  assert.ok(line, stderr);
  return JSON.parse(line);
}

async function refresh(dir: string, extra: string[] = []): Promise<{ res: Record<string, number | string>; stderr: string }> {
  const r = await runPgbb(['refresh', ...conn(), '-D', dir, '-c', 'fast', '-N', '--json', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return { res: resultOf(r.stderr), stderr: r.stderr };
}

async function verifyAndCompare(dir: string, root: string): Promise<void> {
  const fingerprint = await dataFingerprint(cluster);
  const v = await runPgbb(['verify', dir]);
  assert.equal(v.code, 0, v.stderr);
  await restoreAndCompare(dir, root, fingerprint);
}

test('PostgreSQL 17: fallback when summaries do not reach back, then INCREMENTAL refreshes, a SIGKILLed one completed, --no-incremental', async () => {
  const root = await makeTempDir('pgbb-refresh17-');
  cleanup.push(() => fs.rm(root, { recursive: true, force: true }));
  const dir = join(root, 'data');
  const b = await runPgbb(['backup', ...conn(), '-D', dir, '-c', 'fast', '-N', '-T', `${tsLocation}=${join(root, 'ts')}`]);
  assert.equal(b.code, 0, b.stderr);
  const full = Number((await run('du', ['-sb', dir])).stdout.split('\t')[0]);

  // Move WAL past the backup's start and let checkpoints recycle it before summaries begin.
  for (let i = 0; i < 4; i++) {
    await cluster.query(`CREATE TABLE filler_${i} AS SELECT generate_series(1, 1000) i`);
    await cluster.query('SELECT pg_switch_wal()');
    await cluster.query('CHECKPOINT');
  }
  await cluster.query(`ALTER SYSTEM SET summarize_wal = on`);
  await cluster.query('SELECT pg_reload_conf()');
  await change(1);
  // The backup started before summarization did: the server refuses INCREMENTAL, the refresh streams everything.
  let r = await refresh(dir);
  assert.equal(r.res.mode, 'full');
  assert.match(r.stderr, /"code":"incremental".*could not take an incremental backup/);
  await verifyAndCompare(dir, root);

  for (const round of [2, 3]) {
    await change(round);
    r = await refresh(dir);
    assert.equal(r.res.mode, 'incremental', r.stderr);
    // Unchanged blocks stayed on the server: far less came than the backup holds.
    assert.ok((r.res.bytesReceived as number) < 0.6 * full, `received ${r.res.bytesReceived} of ${full}: ${JSON.stringify(r.res)}`);
    assert.ok((r.res.bytesWritten as number) <= (r.res.bytesReceived as number) + 1024 * 1024, JSON.stringify(r.res));
    await verifyAndCompare(dir, root);
  }

  await change(4);
  const killed = await runKilledRefresh('write:2', conn()[1], dir, { sync: false });
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  const v = await runPgbb(['verify', dir]);
  assert.match(v.stderr, /incomplete refresh, run refresh again/);
  r = await refresh(dir);
  assert.equal(r.res.mode, 'full', 'an interrupted directory has no manifest to offer: compared client-side');
  await verifyAndCompare(dir, root);

  await change(5);
  r = await refresh(dir, ['--no-incremental']);
  assert.equal(r.res.mode, 'full');
  await verifyAndCompare(dir, root);
  // And back to incremental once the directory is whole and untouched again.
  await change(6);
  r = await refresh(dir);
  assert.equal(r.res.mode, 'incremental');
  await verifyAndCompare(dir, root);
});
