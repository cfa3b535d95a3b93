/**
 * A running server's data directory is never a target: `pgbb restore` and
 * `pgbb backup` aimed at it (as -D or as a -T tablespace target) are refused
 * with one line saying so (live_data_directory) before anything is written,
 * and the server keeps running on an untouched directory.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Cluster, makeTempDir } from '../support/cluster';
import { completeBackup, streamOf } from '../support/hostile-backup';
import { runPgbb } from '../support/pgbb';

let pg: Cluster;
let root: string;
const RECORDED = '/srv/pgbb-live-ts';

before(async () => {
  pg = await Cluster.create();
  root = await makeTempDir('pgbb-live-');
});
after(async () => {
  await pg?.destroy();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

const LIVE = /^pgbb: error: ".*" is the data directory of a running PostgreSQL server \(postmaster\.pid: pid \d+ is running\): refusing to write into it\n$/;

test('restore and backup refuse a running server\'s data directory, as -D and as a tablespace target', async () => {
  const names = (await fs.readdir(pg.dataDir)).sort();
  const input = await streamOf(completeBackup({ tablespace: RECORDED }));
  const other = join(root, 'data');
  const conn = ['-h', pg.host, '-p', String(pg.port), '-U', 'postgres'];
  const runs = [
    await runPgbb(['restore', '-', '-D', pg.dataDir, '-T', `${RECORDED}=${join(root, 'ts')}`], { input }),
    await runPgbb(['restore', '-', '-D', other, '-T', `${RECORDED}=${pg.dataDir}`], { input }),
    await runPgbb(['backup', ...conn, '-D', pg.dataDir, '-c', 'fast']),
    await runPgbb(['backup', ...conn, '-D', other, '-T', `/nowhere=${pg.dataDir}`, '-c', 'fast']),
  ];
  for (const [i, r] of runs.entries()) {
    assert.equal(r.code, 1, `run ${i}: ${r.stderr}`);
    assert.match(r.stderr, LIVE, `run ${i}`);
  }
  assert.ok(!existsSync(other), 'no target left behind');
  assert.ok(!existsSync(join(root, 'ts')));
  assert.deepEqual((await fs.readdir(pg.dataDir)).sort(), names);
  const [{ one }] = await pg.query<{ one: number }>('SELECT 1 AS one');
  assert.equal(one, 1);
});

test('nor a directory inside it: a new directory in a live data directory is a change to the live cluster (its next base backup carries it, or fails on it)', async () => {
  const names = (await fs.readdir(pg.dataDir)).sort();
  const input = await streamOf(completeBackup({ tablespace: RECORDED }));
  const other = join(root, 'data-inside');
  const conn = ['-h', pg.host, '-p', String(pg.port), '-U', 'postgres'];
  // Reached through a link too: the check follows the path's real location.
  const viaLink = join(root, 'pgdata-link');
  await fs.symlink(pg.dataDir, viaLink);
  const runs = [
    await runPgbb(['restore', '-', '-D', join(pg.dataDir, 'restored'), '-T', `${RECORDED}=${join(root, 'ts')}`], { input }),
    await runPgbb(['restore', '-', '-D', other, '-T', `${RECORDED}=${join(viaLink, 'base', 'ts')}`], { input }),
    await runPgbb(['backup', ...conn, '-D', join(pg.dataDir, 'pg_wal', 'bk'), '-c', 'fast']),
    await runPgbb(['backup', ...conn, '-D', other, '-T', `/nowhere=${join(pg.dataDir, 'ts')}`, '-c', 'fast']),
  ];
  for (const [i, r] of runs.entries()) {
    assert.equal(r.code, 1, `run ${i}: ${r.stderr}`);
    assert.match(r.stderr, /^pgbb: error: ".*" lies inside ".*", the data directory of a running PostgreSQL server \(postmaster\.pid: pid \d+ is running\): refusing to write into it\n$/, `run ${i}`);
  }
  assert.ok(!existsSync(other), 'no target left behind');
  assert.ok(!existsSync(join(root, 'ts')));
  assert.deepEqual((await fs.readdir(pg.dataDir)).sort(), names);
  assert.deepEqual(await fs.readdir(join(pg.dataDir, 'base')).then((b) => b.includes('ts')), false);
});
