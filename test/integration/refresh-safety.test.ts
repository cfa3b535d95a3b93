/**
 * What `pgbb refresh` will not touch, against a real PostgreSQL 15 and real
 * backup directories: links planted in a backup (a `pg_tblspc/<digits>` link
 * to someone's files, links at the names of the files refresh creates, a
 * data directory replaced by a link) never make it write or remove outside
 * the backup and its recorded tablespace locations; and a running server's
 * own data directory is refused before anything is read or written, whether
 * postmaster.pid shows it or only the server's data_directory does.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type { Cluster } from '../support/cluster';
import { run } from '../support/run';
import { connArgs, testScratch, verifybackup } from '../support/scratch';
import { PGBB_CLI, runPgbb, type PgbbRun } from '../support/pgbb';
import { treeOf } from '../support/chunk-fixtures';

const scratchDirs = testScratch();
let cluster: Cluster;
let tsLocation: string;

before(async () => {
  cluster = await scratchDirs.cluster();
  tsLocation = await cluster.makeDir('ts');
  await cluster.query(`CREATE TABLESPACE pgbb_ts LOCATION '${tsLocation}'`);
  await cluster.query(`CREATE TABLE t_main AS SELECT i, md5(i::text) AS v FROM generate_series(1, 20000) i`);
  await cluster.query(`CREATE TABLE t_ts TABLESPACE pgbb_ts AS SELECT i FROM generate_series(1, 5000) i`);
  await cluster.query('CHECKPOINT');
});

const scratch = (prefix: string) => scratchDirs.dir(prefix);
const conn = () => connArgs(cluster);

/** A fresh pgbb backup in root/data, its tablespace in root/ts. */
async function backup(root: string): Promise<string> {
  const dir = join(root, 'data');
  const b = await runPgbb(['backup', ...conn(), '-D', dir, '-c', 'fast', '-N', '-T', `${tsLocation}=${join(root, 'ts')}`]);
  assert.equal(b.code, 0, b.stderr);
  return dir;
}

const refresh = (dir: string, extra: string[] = []) => runPgbb(['refresh', ...conn(), '-D', dir, '-c', 'fast', '-N', '--json', ...extra]);

/** Someone's files, outside any backup: nothing a refresh does may change them. */
async function victims(root: string, shape: 'plain' | 'tablespace' = 'plain'): Promise<string> {
  const dir = join(root, 'victims');
  const sub = shape === 'tablespace' ? join(dir, 'PG_15_202209061', '5') : join(dir, 'docs');
  await fs.mkdir(sub, { recursive: true });
  await fs.writeFile(join(dir, shape === 'tablespace' ? 'PG_15_202209061/5/99001' : 'precious.txt'), 'do not delete\n');
  await fs.writeFile(join(sub, 'notes'), 'keep me\n');
  return dir;
}

function errorOf(r: PgbbRun): { code: string; message: string } {
  const line = r.stderr.split('\n').find((l) => l.includes('"event":"error"'));
  assert.ok(line, r.stderr);
  return JSON.parse(line);
}

test('a planted pg_tblspc/<digits> link is refused before anything is written, and every file it leads to survives', async () => {
  for (const variant of ['pgbb backup', 'no chunk map'] as const) {
    const root = await scratch('pgbb-refresh-tslink-');
    const dir = await backup(root);
    if (variant === 'no chunk map') await fs.rm(join(dir, 'pg_wal/pgbb.chunkmap'));
    const sandbox = await victims(root);
    const want = await treeOf(sandbox);
    await fs.symlink(sandbox, join(dir, 'pg_tblspc', '99999'));
    const before = await treeOf(dir);
    const r = await refresh(dir);
    assert.equal(r.code, 1, `${variant}: ${r.stderr}`);
    const e = errorOf(r);
    assert.equal(e.code, 'unsafe_tablespace_link', variant);
    assert.match(e.message, /pg_tblspc\/99999" -> ".*victims": its target holds "(docs|precious\.txt)", which is not a PG_15_<catversion> directory/);
    assert.equal(r.stderr.trim().split('\n').filter((l) => l.includes('"event":"error"')).length, 1);
    assert.deepEqual(await treeOf(sandbox), want, `${variant}: the victims are untouched`);
    assert.deepEqual(await treeOf(dir, (p) => p === '.pgbb-lock'), before, `${variant}: nothing in the backup changed`);
  }
});

test('a planted link shaped like a tablespace: refused when the chunk map records other locations; without a map only the link goes', async () => {
  const root = await scratch('pgbb-refresh-tsshape-');
  const dir = await backup(root);
  const sandbox = await victims(root, 'tablespace');
  const want = await treeOf(sandbox);
  await fs.symlink(sandbox, join(dir, 'pg_tblspc', '99999'));
  const r = await refresh(dir);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(errorOf(r).code, 'unsafe_tablespace_link');
  assert.match(errorOf(r).message, /the backup records no tablespace 99999/);
  assert.deepEqual(await treeOf(sandbox), want);

  // A pg_basebackup directory records nothing: the link passes the shape checks, but the server has no
  // tablespace 99999, and a location the backup never recorded is not emptied: the link alone goes.
  await fs.rm(join(dir, 'pg_wal/pgbb.chunkmap'));
  const ok = await refresh(dir);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(await treeOf(sandbox), want);
  assert.ok(!existsSync(join(dir, 'pg_tblspc', '99999')));
  await verifybackup(dir);
});

test('links planted at the names refresh creates are replaced, never written through', async () => {
  const root = await scratch('pgbb-refresh-ownlinks-');
  const dir = await backup(root);
  const sandbox = join(root, 'victims');
  await fs.mkdir(sandbox);
  const names = ['pg_wal/pgbb.chunkmap.tmp', 'backup_manifest.tmp', 'global/pg_control.pgbb-new'];
  for (const [i, name] of names.entries()) {
    await fs.writeFile(join(sandbox, `v${i}`), `victim ${i}\n`);
    await fs.symlink(join(sandbox, `v${i}`), join(dir, name));
  }
  const want = await treeOf(sandbox);
  await cluster.query('INSERT INTO t_main SELECT i, md5(i::text) FROM generate_series(1, 1000) i');
  const r = await refresh(dir);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await treeOf(sandbox), want, 'no victim changed');
  for (const name of names) assert.ok(!existsSync(join(dir, name)), `${name} is gone`);
  await verifybackup(dir);

  // The marker (and journal) is appended to across runs: one planted as a link is refused.
  await fs.writeFile(join(sandbox, 'marker-victim'), 'victim\n');
  await fs.symlink(join(sandbox, 'marker-victim'), join(dir, 'pgbb_refresh_incomplete'));
  const m = await refresh(dir);
  assert.equal(m.code, 1, m.stderr);
  assert.match(errorOf(m).message, /pgbb_refresh_incomplete" is a symbolic link/);
  assert.equal(await fs.readFile(join(sandbox, 'marker-victim'), 'utf8'), 'victim\n');
});

test('a data directory planted as a link (base/<n> -> elsewhere) is replaced by a real directory, nothing written through it', async () => {
  const root = await scratch('pgbb-refresh-dirlink-');
  const dir = await backup(root);
  const oid = String((await cluster.query<{ oid: number }>(`SELECT oid FROM pg_database WHERE datname = 'postgres'`))[0].oid);
  const sandbox = join(root, 'victims');
  await fs.rename(join(dir, 'base', oid), sandbox);
  await fs.writeFile(join(sandbox, 'precious.txt'), 'do not delete\n');
  await fs.symlink(sandbox, join(dir, 'base', oid));
  const want = await treeOf(sandbox);
  const r = await refresh(dir);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await treeOf(sandbox), want);
  assert.ok((await fs.lstat(join(dir, 'base', oid))).isDirectory());
  await verifybackup(dir);
});

/** What must hold after a refresh was pointed at the running server's own data directory. */
async function assertServerUnharmed(controlBefore: Buffer): Promise<void> {
  assert.deepEqual(await fs.readFile(join(cluster.dataDir, 'global/pg_control')), controlBefore, 'pg_control untouched');
  for (const name of ['.pgbb-lock', 'pgbb_refresh_incomplete']) assert.ok(!existsSync(join(cluster.dataDir, name)), `no ${name}`);
  await cluster.query('CHECKPOINT');
  assert.deepEqual(await cluster.query('SELECT 1 AS one'), [{ one: 1 }]);
}

test('refresh -D <running server data directory> is refused with one line, and the server runs on', async () => {
  const control = await fs.readFile(join(cluster.dataDir, 'global/pg_control'));
  const r = await refresh(cluster.dataDir);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(errorOf(r).code, 'live_data_directory');
  assert.match(errorOf(r).message, /is the data directory of a running PostgreSQL server \(postmaster\.pid: pid \d+ is running\)/);
  await assertServerUnharmed(control);
});

test('the server\'s data_directory is refused even when postmaster.pid cannot show it is live (another PID and IPC namespace)', async () => {
  const control = await fs.readFile(join(cluster.dataDir, 'global/pg_control'));
  // In new PID and IPC namespaces neither the postmaster's pid nor its shared memory is visible.
  const args = ['--pid', '--ipc', '--fork', '--mount-proc', process.execPath, PGBB_CLI, 'refresh', ...conn(), '-D', cluster.dataDir, '-c', 'fast', '-N', '--json'];
  const r = await run('unshare', args).then((o) => ({ code: 0, ...o }), (e) => ({ code: e.exitCode as number, stdout: e.stdout as string, stderr: e.stderr as string }));
  assert.equal(r.code, 1, r.stderr);
  const e = errorOf({ ...r, signal: null });
  assert.equal(e.code, 'live_data_directory');
  assert.match(e.message, /is the data directory of the server refresh connects to \(it reports data_directory/);
  await assertServerUnharmed(control);
});

test('a copy of a live data directory with a stale postmaster.pid is judged by the server: refreshed, but never through links to the live tablespace', async () => {
  const root = await scratch('pgbb-refresh-copy-');
  const copy = join(root, 'copy');
  await run('cp', ['-a', cluster.dataDir, copy]);
  const pid = (await fs.readFile(join(copy, 'postmaster.pid'), 'utf8')).split('\n');
  pid[0] = '999999'; // no such process
  if (pid[6]) pid[6] = '99999999 99999999'; // no such shared memory segment
  await fs.writeFile(join(copy, 'postmaster.pid'), pid.join('\n'));
  const liveTs = await treeOf(tsLocation);
  // Its pg_tblspc link still leads to the server's own tablespace: that is refused.
  const r = await refresh(copy);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(errorOf(r).code, 'live_data_directory');
  assert.match(errorOf(r).message, /tablespace \d+ of ".*copy" is at ".*", the server's own location of it/);
  assert.deepEqual(await treeOf(tsLocation), liveTs);
  // Given its own copy of the tablespace, it is just a directory to refresh.
  const [link] = await fs.readdir(join(copy, 'pg_tblspc'));
  await run('cp', ['-a', tsLocation, join(root, 'ts-copy')]);
  await fs.rm(join(copy, 'pg_tblspc', link));
  await fs.symlink(join(root, 'ts-copy'), join(copy, 'pg_tblspc', link));
  const ok = await refresh(copy);
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(!existsSync(join(copy, 'postmaster.pid')), 'a file no backup has is gone');
  await verifybackup(copy);
  assert.deepEqual(await treeOf(tsLocation), liveTs);
});
