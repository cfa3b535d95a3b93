/**
 * A tablespace whose location is longer than 99 bytes (past tar's link
 * field), against a real PostgreSQL 15, one server for the file.
 *
 * The server refuses to put such a pg_tblspc link in tar; `pgbb backup -F tar`
 * then takes the backup again asking for tablespace_map instead, as
 * pg_basebackup -Ft always does (src/pipeline/tablespace-map-retry.ts). Restore makes the links where -T says and leaves the
 * map out, and the backup_manifest it writes leaves the map's entry out too
 * (its checksum written again), so pg_verifybackup accepts the restored
 * directory — for pgbb's tar backups and pg_basebackup's alike.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEBIAN_PG15_BIN } from '../support/cluster';
import { runPgbb } from '../support/pgbb';
import { deepDir, run } from '../support/run';
import { useSampleServer } from '../support/sample-server';

let root: string;
let longLocation: string;
let longOid: string;

const pg = useSampleServer({
  fingerprint: true,
  setup: async (c) => {
    root = await pg.scratch('pgbb-longts-');
    longLocation = await deepDir(root, 'server-ts');
    await c.query(`CREATE TABLESPACE pgbb_long_ts LOCATION '${longLocation}'`);
    await c.query(`CREATE TABLE in_long_ts TABLESPACE pgbb_long_ts AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g`);
    [{ oid: longOid }] = await c.query<{ oid: string }>(`SELECT oid::text AS oid FROM pg_tablespace WHERE spcname = 'pgbb_long_ts'`);
  },
});
const { conn, verify, startAndCompare } = pg;

/** Restores `backup` with both tablespaces mapped to new > 100-byte paths; checks links, map, manifest (pg_verifybackup) and data. */
async function restoreAndCheck(backup: string, name: string): Promise<void> {
  const ts1 = await deepDir(root, `${name}-ts1`);
  const ts2 = await deepDir(root, `${name}-ts2`);
  const data = join(root, `${name}-r`);
  const r = await runPgbb(['restore', backup, '-D', data, '-T', `${pg.tsLocation}=${ts1}`, '-T', `${longLocation}=${ts2}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await fs.readlink(join(data, 'pg_tblspc', longOid)), ts2);
  assert.equal(await fs.readlink(join(data, 'pg_tblspc', pg.tsOid)), ts1);
  assert.ok(!existsSync(join(data, 'tablespace_map')), 'tablespace_map left out');
  const manifest = await fs.readFile(join(data, 'backup_manifest'), 'utf8');
  assert.doesNotMatch(manifest, /"tablespace_map"/);
  await verify(data);
  await startAndCompare(data);
}

test('pgbb -F tar with a > 99-byte tablespace location: backup and verify pass; restored with -T to other long paths, pg_verifybackup accepts it and it starts with the same data', async () => {
  const backup = join(root, 'tar');
  const b = await runPgbb(['backup', ...conn(), '-D', backup, '-F', 'tar', '-c', 'fast']);
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stderr, /^pgbb: warning: a tablespace location is too long for a tar link: taking the backup again with tablespace_map instead/m);
  assert.ok(existsSync(join(backup, `${longOid}.tar`)));
  const v = await runPgbb(['verify', backup]);
  assert.equal(v.code, 0, v.stderr);
  await restoreAndCheck(backup, 'tar');
});

test('pg_basebackup -Ft with a > 99-byte tablespace location, restored by pgbb with -T: pg_verifybackup accepts the restored directory, which starts', async () => {
  const backup = join(root, 'pgbb-ft');
  const c = pg.cluster;
  await run(join(DEBIAN_PG15_BIN, 'pg_basebackup'), ['-h', c.host, '-p', String(c.port), '-U', 'postgres', '-c', 'fast', '-D', backup, '-Ft']);
  const manifest = await fs.readFile(join(backup, 'backup_manifest'), 'utf8');
  assert.match(manifest, /"tablespace_map"/);
  await restoreAndCheck(backup, 'pgbb-ft');
});
