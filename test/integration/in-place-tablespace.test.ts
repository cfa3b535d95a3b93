/**
 * In-place tablespaces (allow_in_place_tablespaces, CREATE TABLESPACE …
 * LOCATION ''), against a real PostgreSQL 15: the server sends them inside
 * base.tar as pg_tblspc/<oid>/ directories, and pgbb backs them up and
 * restores them as PostgreSQL lays them out — plain (pg_verifybackup accepts
 * it), tar restored and started with the same data, refreshed in place.
 */
import assert from 'node:assert/strict';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { Cluster } from '../support/cluster';
import { connArgs, testScratch, verifybackup } from '../support/scratch';
import { runPgbb } from '../support/pgbb';

const scratch = testScratch();
let cluster: Cluster;
let oid: string;

before(async () => {
  cluster = await Cluster.create({ conf: { allow_in_place_tablespaces: 'on' } });
  scratch.defer(() => cluster.destroy());
  await cluster.query(`CREATE TABLESPACE in_place LOCATION ''`);
  await cluster.query(`CREATE TABLE t TABLESPACE in_place AS SELECT g, md5(g::text) AS h FROM generate_series(1, 5000) g`);
  await cluster.query('CHECKPOINT');
  [{ oid }] = await cluster.query<{ oid: string }>(`SELECT oid::text FROM pg_tablespace WHERE spcname = 'in_place'`);
});

const digest = `SELECT count(*)::text AS n, md5(string_agg(h, ',' ORDER BY g)) AS d FROM t`;

test('plain: the in-place tablespace is a directory of the backup; pg_verifybackup accepts it; a refresh keeps it', async () => {
  const dir = join(await scratch.dir('pgbb-inplace-'), 'b');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', dir, '-c', 'fast', '-N']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(lstatSync(join(dir, 'pg_tblspc', oid)).isDirectory(), 'a directory, not a link');
  await verifybackup(dir);
  await cluster.query('UPDATE t SET h = h || \'!\' WHERE g <= 10');
  const f = await runPgbb(['refresh', ...connArgs(cluster), '-D', dir, '-c', 'fast', '-N']);
  assert.equal(f.code, 0, f.stderr);
  assert.ok(lstatSync(join(dir, 'pg_tblspc', oid)).isDirectory());
  await verifybackup(dir);
});

test('tar: restored as PostgreSQL lays it out, and the restored cluster has the same data', async () => {
  const base = await scratch.dir('pgbb-inplace-');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', join(base, 'tar'), '-F', 'tar', '-c', 'fast', '-N']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await runPgbb(['verify', join(base, 'tar')])).code, 0);
  const restored = join(base, 'restored');
  const rr = await runPgbb(['restore', join(base, 'tar'), '-D', restored]);
  assert.equal(rr.code, 0, rr.stderr);
  assert.ok(lstatSync(join(restored, 'pg_tblspc', oid)).isDirectory());
  const copy = await Cluster.startExisting(restored);
  try {
    assert.deepEqual(await copy.query(digest), await cluster.query(digest));
  } finally {
    await copy.stop();
  }
});
