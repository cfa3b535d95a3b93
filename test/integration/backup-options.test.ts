/**
 * pg_basebackup's options that pgbb backup takes as pg_basebackup does, against
 * a real PostgreSQL 15: -R (standby.signal, primary_conninfo and
 * primary_slot_name in postgresql.auto.conf, 0600, accepted by
 * pg_verifybackup), -C -S (a slot that stays; dropped again when the backup
 * fails after making it; an existing one refused), -Z as --compress, and -z
 * and a bare -Z level refused with what to type instead; --waldir (pg_wal a
 * link to it, refused outside plain format, removed when the backup fails).
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { fillSampleData, type Cluster } from '../support/cluster';
import { connArgs, testScratch, verifybackup } from '../support/scratch';
import { runPgbb } from '../support/pgbb';

const scratch = testScratch();
let cluster: Cluster;
let tsLocation: string;

before(async () => {
  cluster = await scratch.cluster();
  await fillSampleData(cluster, { scale: 1 });
  [{ tsLocation }] = await cluster.query<{ tsLocation: string }>(`SELECT pg_tablespace_location(oid) AS "tsLocation" FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
});

const slots = async () => (await cluster.query<{ slot_name: string; temporary: boolean }>('SELECT slot_name, temporary FROM pg_replication_slots ORDER BY 1'));

test('-R -C -S: the slot is made and kept, the backup carries the recovery settings, pg_verifybackup accepts it', async () => {
  const base = await scratch.dir('pgbb-opts-');
  const dir = join(base, 'b');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', dir, '-T', `${tsLocation}=${join(base, 'ts')}`, '-c', 'fast', '-R', '-C', '-S', 'pgbb_opt_slot', '-N']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await slots(), [{ slot_name: 'pgbb_opt_slot', temporary: false }]);
  assert.equal(statSync(join(dir, 'standby.signal')).size, 0);
  const conf = readFileSync(join(dir, 'postgresql.auto.conf'), 'utf8');
  assert.match(conf, new RegExp(`^primary_conninfo = 'host=127\\.0\\.0\\.1 port=${cluster.port} user=postgres'$`, 'm'));
  assert.match(conf, /^primary_slot_name = 'pgbb_opt_slot'$/m);
  assert.equal(statSync(join(dir, 'postgresql.auto.conf')).mode & 0o777, 0o600);
  await verifybackup(dir);
  // pgbb verify leaves the files -R changed alone, as pg_verifybackup does, in a directory and in a tar.
  const v = await runPgbb(['verify', dir]);
  assert.equal(v.code, 0, v.stderr);
  const tar = join(base, 't');
  const rt = await runPgbb(['backup', ...connArgs(cluster), '-D', tar, '-F', 'tar', '-c', 'fast', '-R', '-S', 'pgbb_opt_slot', '-N']);
  assert.equal(rt.code, 0, rt.stderr);
  const vt = await runPgbb(['verify', tar]);
  assert.equal(vt.code, 0, vt.stderr);

  // The slot exists now: -C refuses it, as pg_basebackup does, and leaves it be.
  const again = await runPgbb(['backup', ...connArgs(cluster), '-D', join(base, 'c'), '-c', 'fast', '-C', '-S', 'pgbb_opt_slot', '-N']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^pgbb: error: .*replication slot "pgbb_opt_slot" already exists/m);
  assert.ok(!existsSync(join(base, 'c')));
  assert.deepEqual(await slots(), [{ slot_name: 'pgbb_opt_slot', temporary: false }]);
  await cluster.query(`SELECT pg_drop_replication_slot('pgbb_opt_slot')`);
});

test('-C: a backup that fails after making its slot drops it again', async () => {
  const base = await scratch.dir('pgbb-opts-');
  const busy = join(base, 'busy');
  await fs.mkdir(busy);
  await fs.writeFile(join(busy, 'someone-else'), 'x');
  // A -T place that is not empty is refused when the sink gets ready: after the slot was made.
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', join(base, 'b'), '-T', `${tsLocation}=${busy}`, '-c', 'fast', '-C', '-S', 'pgbb_opt_gone', '-N']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /not empty/);
  assert.deepEqual(await slots(), []);
});

test('-Z is --compress; -z and a bare -Z level say what to use instead', async () => {
  const base = await scratch.dir('pgbb-opts-');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', join(base, 't'), '-F', 'tar', '-Z', 'zstd:1', '-c', 'fast', '-N']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(base, 't', 'base.tar.zst')));
  const z = await runPgbb(['backup', ...connArgs(cluster), '-D', join(base, 'u'), '-F', 'tar', '-z']);
  assert.equal(z.code, 1);
  assert.match(z.stderr, /^pgbb: error: -z\/--gzip: pgbb does not write gzip; use -Z zstd/m);
  const five = await runPgbb(['backup', ...connArgs(cluster), '-D', join(base, 'v'), '-F', 'tar', '-Z', '5']);
  assert.equal(five.code, 1);
  assert.match(five.stderr, /a bare level means gzip to pg_basebackup.*use "zstd:5"/);
  assert.ok(!existsSync(join(base, 'u')) && !existsSync(join(base, 'v')));
});

test('without -h and PGHOST, pgbb connects over the Unix socket as libpq does (/var/run/postgresql, then /tmp)', async () => {
  // The test server's socket lives in its own directory; a link in /tmp stands for a server whose libpq default is /tmp.
  const link = `/tmp/.s.PGSQL.${cluster.port}`;
  await fs.symlink(join(cluster.baseDir, 'sock', `.s.PGSQL.${cluster.port}`), link);
  scratch.defer(() => fs.rm(link, { force: true }));
  const base = await scratch.dir('pgbb-opts-');
  const env = { PGHOST: '', PGHOSTADDR: '' };
  const r = await runPgbb(['backup', '-p', String(cluster.port), '-U', 'postgres', '-D', join(base, 'b'), '-F', 'tar', '-X', 'none', '-c', 'fast', '-N', '-v'], { env });
  assert.equal(r.code, 0, r.stderr);
  const [{ n }] = await cluster.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_stat_activity WHERE backend_type = 'walsender'`);
  assert.equal(n, '0');
  await fs.rm(link);
  const gone = await runPgbb(['backup', '-p', String(cluster.port), '-U', 'postgres', '-D', join(base, 'c'), '-F', 'tar', '-X', 'none', '--timeout', '5'], { env });
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, new RegExp(`connection to server at "/var/run/postgresql/\\.s\\.PGSQL\\.${cluster.port}" failed`));
});

test('--manifest-checksums and --manifest-force-encode reach the server; pgbb and pg_verifybackup check the result', async () => {
  const base = await scratch.dir('pgbb-opts-');
  const dir = join(base, 'sha');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', dir, '-T', `${tsLocation}=${join(base, 'ts')}`, '-c', 'fast', '-N', '--manifest-checksums', 'sha256', '--manifest-force-encode']);
  assert.equal(r.code, 0, r.stderr);
  const manifest = JSON.parse(readFileSync(join(dir, 'backup_manifest'), 'utf8'));
  assert.ok(manifest.Files.length > 100);
  for (const f of manifest.Files) {
    assert.equal(f['Checksum-Algorithm'], 'SHA256');
    assert.match(f.Checksum, /^[0-9a-f]{64}$/);
    assert.ok('Encoded-Path' in f && !('Path' in f), JSON.stringify(f));
  }
  await verifybackup(dir);
  const ok = await runPgbb(['verify', dir]);
  assert.equal(ok.code, 0, ok.stderr);
  // A flipped byte is caught by the SHA-256 the manifest holds.
  const victim = join(dir, 'PG_VERSION');
  await fs.writeFile(victim, readFileSync(victim, 'utf8').replace(/\d/, (d) => String((Number(d) + 1) % 10)));
  const bad = await runPgbb(['verify', dir]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /PG_VERSION/);

  const none = await runPgbb(['backup', ...connArgs(cluster), '-D', join(base, 'none'), '-F', 'tar', '-c', 'fast', '-N', '--manifest-checksums', 'NONE']);
  assert.equal(none.code, 0, none.stderr);
  const m2 = JSON.parse(readFileSync(join(base, 'none', 'backup_manifest'), 'utf8'));
  assert.ok(m2.Files.every((f: Record<string, unknown>) => !('Checksum' in f)));
  const wrong = await runPgbb(['backup', ...connArgs(cluster), '-D', join(base, 'w'), '--manifest-checksums', 'md5']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /invalid manifest checksum algorithm "md5", must be one of NONE, CRC32C/);
});

test('--waldir: pg_wal is a link to it, the WAL is there, pg_verifybackup and the started copy agree; refused outside plain; a failed backup removes it', async () => {
  const base = await scratch.dir('pgbb-opts-');
  const dir = join(base, 'b');
  const wal = join(base, 'wal');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', dir, '--waldir', wal, '-T', `${tsLocation}=${join(base, 'ts')}`, '-c', 'fast', '-N']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await fs.readlink(join(dir, 'pg_wal')), wal);
  const segments = (await fs.readdir(wal)).filter((n) => /^[0-9A-F]{24}$/.test(n));
  assert.ok(segments.length >= 1, `segments in --waldir: ${segments.join(' ')}`);
  assert.ok(existsSync(join(wal, 'archive_status')));
  await verifybackup(dir); // parses the WAL through the link
  // pgbb's own reader follows no link it did not make: the WAL directory is named, as pg_verifybackup -w does.
  const v = await runPgbb(['verify', '-w', wal, dir]);
  assert.equal(v.code, 0, v.stderr);

  for (const [args, message] of [
    [['-F', 'tar', '--waldir', wal + '2'], /^pgbb: error: WAL directory location can only be specified in plain mode\n$/],
    [['--waldir', 'relative/wal'], /^pgbb: error: WAL directory location must be an absolute path\n$/],
  ] as const) {
    const u = await runPgbb(['backup', ...connArgs(cluster), '-D', join(base, 'refused'), ...args]);
    assert.equal(u.code, 1);
    assert.match(u.stderr, message);
  }
  const failedWal = join(base, 'failed-wal');
  const f = await runPgbb(['backup', ...connArgs(cluster), '-D', join(base, 'failed'), '--waldir', failedWal, '-T', `${tsLocation}=${join(base, 'failed-ts')}`, '-S', 'no_such_slot', '-c', 'fast', '-N']);
  assert.equal(f.code, 1, f.stderr);
  assert.ok(!existsSync(failedWal) && !existsSync(join(base, 'failed')), 'target and --waldir removed');
});
