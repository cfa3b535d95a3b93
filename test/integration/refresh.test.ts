/**
 * `pgbb refresh` end to end against a real PostgreSQL 15: a plain backup,
 * then ~1% of rows updated, a table dropped, a table created, VACUUM; the
 * refresh must leave a directory that pg_verifybackup accepts, that restores
 * and starts with the source's data, while writing a small fraction of a
 * full backup. A refresh killed with SIGKILL (at a data write, and at commit
 * steps) leaves a directory `pgbb verify` calls incomplete, which the next
 * refresh completes.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { dataFingerprint, fillSampleData, type Cluster } from '../support/cluster';
import { run } from '../support/run';
import { connArgs, testScratch, verifybackup } from '../support/scratch';
import { runPgbb } from '../support/pgbb';
import { runKilledRefresh } from '../support/refresh-killed';
import { decodeChunkMap } from '../../src/codec/chunkmap/chunk-map';
import { restoreAndCompare } from '../support/restore-compare';

const scratchDirs = testScratch();
let cluster: Cluster;
let tsLocation: string;

before(async () => {
  cluster = await scratchDirs.cluster();
  await fillSampleData(cluster, { scale: 2 });
  // Settle hint bits and the visibility map first, so that a refresh measures the changes below, not the first VACUUM.
  await cluster.query('VACUUM FREEZE');
  await cluster.query('CHECKPOINT');
  [{ loc: tsLocation }] = await cluster.query<{ loc: string }>(`SELECT pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
});

const scratch = (prefix: string) => scratchDirs.dir(prefix);
const conn = () => connArgs(cluster);

/**
 * 1% of accounts updated (a run of neighbouring rows, as recent data tends to be), one table
 * dropped, one created, VACUUM. (Updates scattered over every page touch every chunk: bench/refresh.ts
 * measures that case too.)
 */
async function change(round: number): Promise<void> {
  const from = (round * 7919) % 190_000;
  await cluster.query(`UPDATE pgbench_accounts SET abalance = abalance + ${round} WHERE aid BETWEEN ${from} AND ${from + 1999}`);
  await cluster.query(`DROP TABLE IF EXISTS refresh_t${round - 1}`);
  await cluster.query(`CREATE TABLE refresh_t${round} AS SELECT i, md5(i::text) AS v FROM generate_series(1, 5000) i`);
  await cluster.query('VACUUM');
}

async function duSize(dir: string): Promise<number> {
  const { stdout } = await run('du', ['-sb', dir]);
  return Number(stdout.split('\t')[0]);
}


function resultOf(stderr: string): Record<string, number | string> {
  const line = stderr.split('\n').find((l) => l.includes('"event":"result"'));
  assert.ok(line, stderr);
  return JSON.parse(line);
}

test('refresh after ~1% of rows changed, a table dropped and one created: verifies, restores with the same data, writes a fraction', async () => {
  const root = await scratch('pgbb-refresh-');
  const dir = join(root, 'data');
  const b = await runPgbb(['backup', ...conn(), '-D', dir, '-c', 'fast', '-N', '-T', `${tsLocation}=${join(root, 'ts')}`]);
  assert.equal(b.code, 0, b.stderr);
  await verifybackup(dir);
  const map = decodeChunkMap(await fs.readFile(join(dir, 'pg_wal/pgbb.chunkmap')));
  assert.ok(map.files.has('base/5/' + (await cluster.query(`SELECT pg_relation_filenode('pgbench_accounts') AS f`))[0].f));
  const full = await duSize(dir);

  for (const round of [1, 2]) {
    await change(round);
    const fingerprint = await dataFingerprint(cluster);
    const r = await runPgbb(['refresh', ...conn(), '-D', dir, '-c', 'fast', '-N', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = resultOf(r.stderr);
    assert.equal(res.mode, 'full');
    assert.equal(res.filesReread, 0, 'a backup pgbb wrote is trusted through its map');
    assert.ok((res.chunksUnchanged as number) > (res.chunksChanged as number), JSON.stringify(res));
    assert.ok((res.filesAdded as number) >= 1 && (res.filesRemoved as number) >= 1, JSON.stringify(res));
    // Changed heap and index pages, the new table, the catalog, and the new WAL (a 16 MiB segment, a
    // quarter of this small backup): well under half of a full backup.
    assert.ok((res.bytesWritten as number) < full * 0.5, `round ${round}: wrote ${res.bytesWritten} of ${full}`);
    assert.ok((res.bytesReceived as number) > (res.bytesWritten as number));
    await verifybackup(dir);
    assert.ok(!existsSync(join(dir, 'pgbb_refresh_incomplete')));
    await restoreAndCompare(dir, root, fingerprint);
  }
});

test('a refresh killed with SIGKILL leaves a directory verify calls incomplete; the next refresh completes it', async () => {
  const root = await scratch('pgbb-refresh-kill-');
  const dir = join(root, 'data');
  const b = await runPgbb(['backup', ...conn(), '-D', dir, '-c', 'fast', '-N', '-T', `${tsLocation}=${join(root, 'ts')}`]);
  assert.equal(b.code, 0, b.stderr);
  let round = 10;
  for (const at of ['write:3', 'write:40', 'remove', 'map', 'marker']) {
    await change(++round);
    const killed = await runKilledRefresh(at, conn()[1], dir);
    assert.equal(killed.signal, 'SIGKILL', `${at}: ${killed.stderr}`);
    const v = await runPgbb(['verify', dir]);
    assert.equal(v.code, 1);
    assert.match(v.stderr, /incomplete refresh, run refresh again/, at);
    await assert.rejects(verifybackup(dir), at);
  }
  const fingerprint = await dataFingerprint(cluster);
  const r = await runPgbb(['refresh', ...conn(), '-D', dir, '-c', 'fast', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /interrupted refresh: completing it/);
  const res = resultOf(r.stderr);
  assert.ok((res.filesReread as number) > 0, 'files an interrupted run touched are read again');
  assert.ok((res.chunksUnchanged as number) > (res.chunksChanged as number), JSON.stringify(res));
  await verifybackup(dir);
  const ok = await runPgbb(['verify', dir]);
  assert.equal(ok.code, 0, ok.stderr);
  await restoreAndCompare(dir, root, fingerprint);
});

test('refresh refuses a directory that is not a backup, and another run holding the lock', async () => {
  const root = await scratch('pgbb-refresh-bad-');
  const r = await runPgbb(['refresh', ...conn(), '-D', root]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is not a plain backup \(no PG_VERSION\)/);
  await fs.writeFile(join(root, 'PG_VERSION'), '15\n');
  await fs.writeFile(join(root, '.pgbb-lock'), `${process.pid}\n`);
  const locked = await runPgbb(['refresh', ...conn(), '-D', root]);
  assert.equal(locked.code, 1);
  assert.match(locked.stderr, /is locked by another pgbb run \(pid \d+\)/);
  const usage = await runPgbb(['backup', ...conn(), '-D', join(root, 'x'), '--incremental-from', root]);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /-D must name the same directory/);
});
