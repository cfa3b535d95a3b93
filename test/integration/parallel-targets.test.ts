/**
 * `pgbb backup -j N` into the targets other than a plain directory — one tar
 * stream on stdout and S3 (s3rver) — and a table dropped while the workers
 * run: its files vanish between the listing and their fetch, and are skipped
 * as BASE_BACKUP skips them. One PostgreSQL 15 with the sample data, judged
 * by pg_verifybackup, pgbb verify and a restored copy's data.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { runPgbb } from '../support/pgbb';
import { run } from '../support/run';
import { sharedS3Server } from '../support/s3-server';
import { useSampleServer } from '../support/sample-server';

const pg = useSampleServer({ fingerprint: true });
const s3Server = sharedS3Server(pg);
const { conn, scratch, verify } = pg;

test('-j 2 -D -: one tar stream with the tablespace under pg_tblspc/<oid>/ and the manifest last; extracted, it verifies and starts', async () => {
  const root = await scratch('pgbb-par-stdout-');
  const file = join(root, 'backup.tar');
  const r = await runPgbb(['backup', ...conn(), '-D', '-', '-j', '2', '-c', 'fast'], { stdoutFile: file });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const names = (await run('tar', ['-tf', file])).stdout.split('\n').filter(Boolean);
  assert.equal(names[names.length - 1], 'backup_manifest');
  assert.ok(names.some((n) => n.startsWith(`pg_tblspc/${pg.tsOid}/PG_15_`)), 'the tablespace is in the stream');
  assert.ok(names.some((n) => /^pg_wal\/[0-9A-F]{24}$/.test(n)), 'streamed WAL is in the stream');
  const data = join(root, 'data');
  await fs.mkdir(data, { mode: 0o700 });
  await run('tar', ['-xf', file, '-C', data]);
  await verify(data);
  // PostgreSQL wants pg_tblspc/<oid> to be a link: move the tablespace out, as a restore does.
  await fs.rename(join(data, 'pg_tblspc', pg.tsOid), join(root, 'ts'));
  await fs.symlink(join(root, 'ts'), join(data, 'pg_tblspc', pg.tsOid));
  await pg.startAndCompare(data);
});

test('-j 2 -D s3://…: a complete backup that pgbb verify accepts and that restores to the same data', async () => {
  const s3 = await s3Server();
  const repo = `s3://${s3.bucket}/par`;
  const b = await runPgbb(['backup', ...conn(), '-D', repo, '-j', '2', '-c', 'fast'], { env: s3.env });
  assert.equal(b.code, 0, b.stderr);
  const l = await runPgbb(['list', repo, '--json'], { env: s3.env });
  const rows = l.stdout.trim().split('\n').map((x) => JSON.parse(x));
  assert.deepEqual(rows.map((x) => x.status), ['complete']);
  const v = await runPgbb(['verify', repo], { env: s3.env });
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /backup successfully verified/);
  assert.deepEqual(await s3.openUploads(), [], 'no multipart upload left open');
  const root = await scratch('pgbb-par-s3-');
  const target = join(root, 'data');
  const r = await runPgbb(['restore', `${repo}/${rows[0].id}`, '-D', target, '-N', '-T', `${pg.tsLocation}=${target}-ts`], { env: s3.env });
  assert.equal(r.code, 0, r.stderr);
  await pg.startAndCompare(target);
});

test('a table dropped while -j 2 runs: its vanished files are skipped, the backup verifies, the copy starts without it', async () => {
  const c = pg.cluster;
  // Small files (batched, fetched after every larger piece) and one cut into chunks; ahead of them
  // (largest first) ~100 MB of filler, so that at -r 16 MB/s the workers, at most the 32 MiB window
  // ahead, reach the doomed files seconds after the drop.
  await c.query(`CREATE TABLE filler AS SELECT g AS id, repeat('f', 900) AS pad FROM generate_series(1, 100000) g`);
  await c.query(`CREATE TABLE doomed_small AS SELECT g AS id FROM generate_series(1, 1000) g`);
  await c.query(`CREATE TABLE doomed_big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 30000) g`);
  await c.query('CHECKPOINT');
  const files = (await c.query<{ path: string }>(`SELECT pg_relation_filepath(t) AS path FROM unnest(ARRAY['doomed_small', 'doomed_big']::regclass[]) t`)).map((x) => x.path);
  const root = await scratch('pgbb-par-vanish-');
  const target = join(root, 'data');
  const running = runPgbb(['backup', ...conn(), '-D', target, '-T', `${pg.tsLocation}=${join(root, 'ts')}`, '-j', '2', '-r', '16384', '-c', 'fast']);
  let seen = false;
  for (let i = 0; i < 200 && !seen; i++) {
    const [w] = await c.query(`SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT pg\\_read\\_binary\\_file%' AND pid <> pg_backend_pid()`);
    seen = w !== undefined;
    if (!seen) await sleep(25);
  }
  assert.ok(seen, 'the workers were fetching');
  await c.query('DROP TABLE doomed_small, doomed_big');
  // The first segment of a dropped relation goes at the next checkpoint.
  await c.query('CHECKPOINT');
  for (const f of files) assert.equal(existsSync(join(c.dataDir, f)), false, `${f} is gone from the server`);
  const r = await running;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'skipped silently, as BASE_BACKUP does');
  for (const f of files) assert.equal(existsSync(join(target, f)), false, `${f} is not in the backup`);
  await verify(target);
  await pg.withStarted(target, async (restored) => {
    const [t] = await restored.query<{ n: string }>(`SELECT count(*) AS n FROM pg_class WHERE relname LIKE 'doomed\\_%'`);
    assert.equal(t.n, '0');
  });
});
