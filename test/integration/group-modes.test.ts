/**
 * A group-readable cluster (initdb -g, data_directory_mode 0750): as
 * pg_basebackup, pgbb writes everything 0750/0640 — the cluster's files, and
 * also what it adds (backup_manifest, streamed WAL, the chunk map), the
 * target and a tablespace directory it creates for -T; tar backups' archives
 * and manifest 0640 in a 0750 directory. Compared mode by mode with
 * pg_basebackup's own backups of the same server, made by this test.
 */
import assert from 'node:assert/strict';
import { lstatSync, promises as fs } from 'node:fs';
import { join, relative } from 'node:path';
import { before, test } from 'node:test';
import { Cluster, DEBIAN_PG15_BIN, fillSampleData } from '../support/cluster';
import { run } from '../support/run';
import { connArgs, testScratch } from '../support/scratch';
import { runPgbb } from '../support/pgbb';

const scratch = testScratch();
let cluster: Cluster;
let tsLocation: string;

before(async () => {
  cluster = await Cluster.create({ initdbArgs: ['-g'] });
  scratch.defer(() => cluster.destroy());
  await fillSampleData(cluster, { scale: 1 });
  [{ tsLocation }] = await cluster.query<{ tsLocation: string }>(`SELECT pg_tablespace_location(oid) AS "tsLocation" FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
  const [{ mode }] = await cluster.query<{ mode: string }>("SELECT current_setting('data_directory_mode') AS mode");
  assert.equal(mode, '0750');
});

/** Every path below `root` (links not followed) with its permission bits. */
async function modes(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  out.set('.', lstatSync(root).mode & 0o7777);
  for (const rel of (await fs.readdir(root, { recursive: true })) as string[]) {
    const st = lstatSync(join(root, rel));
    if (!st.isSymbolicLink()) out.set(rel, st.mode & 0o7777);
  }
  return out;
}

const basebackup = (args: string[]) =>
  run(join(DEBIAN_PG15_BIN, 'pg_basebackup'), ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-c', 'fast', '-N', ...args], { asPostgres: true });

test('plain: every directory 0750 and every file 0640, as pg_basebackup writes them, pgbb\'s own files and -T directories too', async () => {
  const base = await scratch.dir('pgbb-gmodes-');
  const theirs = join(base, 'theirs');
  await basebackup(['-D', theirs, '-T', `${tsLocation}=${join(base, 'theirs-ts')}`]);
  const mine = join(base, 'mine');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', mine, '-T', `${tsLocation}=${join(base, 'mine-ts')}`, '-c', 'fast', '-N']);
  assert.equal(r.code, 0, r.stderr);
  const want = await modes(theirs);
  const got = await modes(mine);
  const wrong: string[] = [];
  for (const [rel, m] of got) {
    const expected = want.get(rel) ?? (lstatSync(join(mine, rel)).isDirectory() ? 0o750 : 0o640);
    if (m !== expected) wrong.push(`${rel}: ${m.toString(8)}, pg_basebackup ${expected.toString(8)}`);
  }
  for (const [rel, m] of await modes(join(base, 'mine-ts'))) {
    const expected = (await modes(join(base, 'theirs-ts'))).get(rel);
    if (m !== expected) wrong.push(`tablespace ${rel}: ${m.toString(8)}, pg_basebackup ${expected?.toString(8)}`);
  }
  assert.deepEqual(wrong, []);
  assert.ok(got.has('pg_wal/pgbb.chunkmap') && got.has('backup_manifest'));
});

test('tar: the directory 0750, archives and manifest 0640, as pg_basebackup -Ft', async () => {
  const base = await scratch.dir('pgbb-gmodes-');
  const theirs = join(base, 'theirs');
  await basebackup(['-D', theirs, '-Ft']);
  const mine = join(base, 'mine');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', mine, '-F', 'tar', '-c', 'fast', '-N']);
  assert.equal(r.code, 0, r.stderr);
  const want = await modes(theirs);
  const got = await modes(mine);
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort().map((k) => k));
  for (const [rel, m] of got) assert.equal(m.toString(8), want.get(rel)!.toString(8), `${relative(base, join(mine, rel))}`);
});

test('refresh: what it adds (new files, a new tablespace\'s directory, manifest, map, WAL) is 0750/0640 too', async () => {
  const base = await scratch.dir('pgbb-gmodes-');
  const mine = join(base, 'mine');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', mine, '-T', `${tsLocation}=${join(base, 'mine-ts')}`, '-c', 'fast', '-N']);
  assert.equal(r.code, 0, r.stderr);
  const fresh = await cluster.makeDir('refresh-ts');
  await cluster.query(`CREATE TABLESPACE refresh_ts LOCATION '${fresh}'`);
  await cluster.query('CREATE TABLE refresh_new TABLESPACE refresh_ts AS SELECT g FROM generate_series(1, 1000) g');
  await cluster.query('CREATE TABLE refresh_new_base AS SELECT g FROM generate_series(1, 1000) g');
  const f = await runPgbb(['refresh', ...connArgs(cluster), '-D', mine, '-T', `${fresh}=${join(base, 'mine-fresh-ts')}`, '-c', 'fast', '-N']);
  assert.equal(f.code, 0, f.stderr);
  const wrong: string[] = [];
  for (const root of [mine, join(base, 'mine-ts'), join(base, 'mine-fresh-ts')]) {
    for (const [rel, m] of await modes(root)) {
      const expected = lstatSync(join(root, rel)).isDirectory() ? 0o750 : 0o640;
      if (m !== expected) wrong.push(`${relative(base, join(root, rel))}: ${m.toString(8)}`);
    }
  }
  assert.deepEqual(wrong, []);
});
