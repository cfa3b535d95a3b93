/**
 * `pgbb backup -t server:/DIR | blackhole` against real servers: on
 * PostgreSQL 15 the server writes base.tar, the tablespace's archive and
 * backup_manifest into DIR (with -X fetch, its WAL in base.tar), which
 * `pgbb verify` accepts and `pgbb restore` restores (it starts with the same data); blackhole completes and keeps
 * nothing; pg_basebackup's refused combinations fail in one line, before
 * any connection; PostgreSQL 14 is refused in one line.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { Cluster, fillSampleData, serverBinDir } from '../support/cluster';
import { runPgbb } from '../support/pgbb';
import { assertStartsLike } from '../support/restore-compare';
import { connArgs, testScratch } from '../support/scratch';

const scratch = testScratch();
let cluster: Cluster;

before(async () => {
  cluster = await scratch.cluster();
  await fillSampleData(cluster, { scale: 1 });
});

test('-t server:/DIR -X fetch: the server writes the backup there; pgbb verify accepts it, pgbb restore restores it', async () => {
  // The cluster's own base directory: the server's OS user may write there.
  const dir = join(cluster.baseDir, 'on-server');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-c', 'fast', '-t', `server:${dir}`, '-X', 'fetch', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const names = await fs.readdir(dir);
  assert.ok(names.includes('base.tar') && names.includes('backup_manifest'), names.join(' '));
  assert.ok(names.some((n) => /^\d+\.tar$/.test(n)), `a tablespace archive in ${names.join(' ')}`);
  const result = r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.event === 'result');
  assert.equal(result.target, `server:${dir}`);
  assert.ok(result.bytes > 10_000_000, `server progress: ${result.bytes}`);
  const v = await runPgbb(['verify', dir]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /backup successfully verified: \d+ files/);
  assert.match(v.stdout, /\(1 segments, \d+ records\)/, 'the fetched WAL checked');
  // (pg_verifybackup reads tar backups only from 18 on.) Restored with -T, it starts with the same data.
  const [{ loc }] = await cluster.query<{ loc: string }>(`SELECT pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
  const root = await scratch.dir('pgbb-target-restore-');
  const target = join(root, 'restored');
  const rr = await runPgbb(['restore', dir, '-D', target, '-N', '-T', `${loc}=${target}-ts`]);
  assert.equal(rr.code, 0, rr.stderr);
  await assertStartsLike(target, cluster);
});

test('-t server:/DIR -Z server-zstd:1: the server writes base.tar.zst there, which pgbb verify accepts', async () => {
  const dir = join(cluster.baseDir, 'on-server-zstd');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-c', 'fast', '-t', `server:${dir}`, '-X', 'fetch', '-Z', 'server-zstd:1']);
  assert.equal(r.code, 0, r.stderr);
  const names = await fs.readdir(dir);
  assert.ok(names.includes('base.tar.zst') && names.includes('backup_manifest'), names.join(' '));
  const v = await runPgbb(['verify', dir]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /backup successfully verified: \d+ files/);
});

test('-t blackhole -X none: completes, the server keeps nothing, the result says blackhole', async () => {
  const before = await fs.readdir(cluster.baseDir);
  const r = await runPgbb(['backup', ...connArgs(cluster), '-c', 'fast', '-t', 'blackhole', '-X', 'none', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const events = r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const result = events.find((e) => e.event === 'result');
  assert.equal(result.target, 'blackhole');
  assert.match(result.endLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
  assert.ok(events.some((e) => e.event === 'warning' && e.code === 'no_wal'), 'the -X none warning');
  assert.deepEqual(await fs.readdir(cluster.baseDir), before);
});

for (const [args, message] of [
  [['-t', 'blackhole'], /^pgbb: error: WAL cannot be streamed when a backup target is specified: use -X fetch or -X none\n/],
  [['-t', 'blackhole', '-X', 'stream'], /WAL cannot be streamed when a backup target is specified/],
  [['-t', 'blackhole', '-X', 'none', '-D', '/tmp/x'], /^pgbb: error: cannot specify both output directory and backup target\n/],
  [['-t', 'blackhole', '-X', 'none', '-F', 'tar'], /^pgbb: error: cannot specify both format and backup target\n/],
  [['-t', 'bogus', '-X', 'none'], /^pgbb: error: unrecognized target: "bogus"/],
  [['-t', 'server', '-X', 'none'], /^pgbb: error: target "server" requires a target detail/],
  [['-t', 'server:relative/dir', '-X', 'none'], /must be an absolute path/],
  [['-t', 'blackhole:x', '-X', 'none'], /target "blackhole" does not accept a target detail/],
  [['-t', 'blackhole', '-X', 'none', '-Z', 'zstd'], /^pgbb: error: client-side compression is not possible when a backup target is specified/],
  [['-t', 'blackhole', '-X', 'none', '-R'], /^pgbb: error: recovery configuration cannot be written when a backup target is used\n/],
  [['-t', 'blackhole', '-X', 'none', '--waldir', '/tmp/w'], /WAL directory location cannot be specified along with a backup target/],
  [['-t', 'blackhole', '-X', 'none', '-j', '2'], /-j\/--jobs is not possible with a backup target/],
  [['-X', 'none'], /^pgbb: error: must specify output directory or backup target/],
] as const) {
  test(`refused in one line, nothing contacted: backup ${args.join(' ')}`, async () => {
    // A port nobody listens on: a refusal must come before any connection.
    const r = await runPgbb(['backup', '-d', 'host=127.0.0.1 port=1 user=postgres', ...args]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trimEnd().split('\n').filter((l) => !/^pgbb: hint:|Try /.test(l)).length, 1, r.stderr);
  });
}

test('PostgreSQL 14: -t blackhole is refused in one line, as pg_basebackup does', async () => {
  const old = await Cluster.create({ binDir: serverBinDir(14), conf: { fsync: false } });
  try {
    const dir = join(old.baseDir, 'on-server');
    for (const target of ['blackhole', `server:${dir}`]) {
      const r = await runPgbb(['backup', ...connArgs(old), '-c', 'fast', '-t', target, '-X', 'none']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^pgbb: error: backup targets are not supported by this server version \(--target needs PostgreSQL 15 or later\)\n$/);
    }
    assert.equal(existsSync(dir), false);
  } finally {
    await old.destroy();
  }
});
