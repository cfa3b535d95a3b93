/**
 * The walking skeleton end to end against a real PostgreSQL 15: pgbb backup
 * in each format, judged by PostgreSQL's own tools (pg_verifybackup, a
 * restored server returning the same data) and by the system tar.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { run } from '../support/run';
import { runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import type { BackupEvent } from '../../src/index';

const pg = useSampleServer({ fingerprint: true });
const { conn, scratch, verify, startAndCompare } = pg;

test('plain backup with -T: pg_verifybackup accepts it, modes and symlinks are right, the copy starts with the same data', async () => {
  const root = await scratch('pgbb-plain-');
  const target = join(root, 'data');
  const tsTarget = join(root, 'ts');
  const r = await runPgbb(['backup', ...conn(), '-D', target, '-c', 'fast', '-T', `${pg.tsLocation}=${tsTarget}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  await verify(target);

  assert.equal((await fs.stat(target)).mode & 0o777, 0o700);
  assert.equal((await fs.stat(join(target, 'PG_VERSION'))).mode & 0o777, 0o600);
  assert.equal((await fs.stat(join(target, 'base'))).mode & 0o777, 0o700);
  assert.equal(await fs.readlink(join(target, 'pg_tblspc', pg.tsOid)), tsTarget);
  assert.ok((await fs.readdir(tsTarget)).some((n) => n.startsWith('PG_15_')), 'tablespace written to the mapped place');
  assert.match(await fs.readFile(join(target, 'backup_label'), 'utf8'), /^LABEL: pgbb base backup$/m);
  // -X stream (the default): the WAL needed to restore is in the backup.
  assert.ok((await fs.readdir(join(target, 'pg_wal'))).some((n) => /^[0-9A-F]{24}$/.test(n)));
  assert.ok(!existsSync(join(target, 'backup_manifest.tmp')));

  await startAndCompare(target);
});

test('tar format: base.tar, <oid>.tar and backup_manifest, readable by the system tar', async () => {
  const root = await scratch('pgbb-tar-');
  const target = join(root, 'tar');
  const r = await runPgbb(['backup', ...conn(), '-D', target, '-F', 'tar', '-c', 'fast', '-N']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await fs.readdir(target)).sort(), [`${pg.tsOid}.tar`, 'backup_manifest', 'base.tar', 'pg_wal.tar'].sort());
  const base = (await run('tar', ['-tf', join(target, 'base.tar')])).stdout.split('\n');
  assert.ok(base.includes('backup_label'));
  assert.ok(base.includes('global/pg_control'));
  const ts = (await run('tar', ['-tf', join(target, `${pg.tsOid}.tar`)])).stdout;
  assert.match(ts, /^PG_15_\d+\//m);

  // Unpacked the way a DBA restores -Ft, pg_verifybackup accepts it and the copy starts.
  const data = join(root, 'data');
  const tsDir = join(root, 'ts');
  await fs.mkdir(data, { mode: 0o700 });
  await fs.mkdir(tsDir, { mode: 0o700 });
  await run('tar', ['-xf', join(target, 'base.tar'), '-C', data]);
  await run('tar', ['-xf', join(target, `${pg.tsOid}.tar`), '-C', tsDir]);
  await run('tar', ['-xf', join(target, 'pg_wal.tar'), '-C', join(data, 'pg_wal')]);
  await fs.rm(join(data, 'pg_tblspc', pg.tsOid));
  await fs.symlink(tsDir, join(data, 'pg_tblspc', pg.tsOid));
  await fs.copyFile(join(target, 'backup_manifest'), join(data, 'backup_manifest'));
  await verify(data);
  await startAndCompare(data);
});

test('-D - writes one tar stream carrying the tablespace under pg_tblspc/<oid>/; extracted, it verifies and starts', async () => {
  const root = await scratch('pgbb-stdout-');
  const file = join(root, 'backup.tar');
  const r = await runPgbb(['backup', ...conn(), '-D', '-', '-c', 'fast'], { stdoutFile: file });
  assert.equal(r.code, 0, r.stderr);
  const names = (await run('tar', ['-tf', file])).stdout.split('\n').filter(Boolean);
  assert.equal(names[names.length - 1], 'backup_manifest');
  assert.ok(names.some((n) => n.startsWith(`pg_tblspc/${pg.tsOid}/PG_15_`)));
  const data = join(root, 'data');
  await fs.mkdir(data, { mode: 0o700 });
  await run('tar', ['-xf', file, '-C', data]);
  assert.ok((await fs.lstat(join(data, 'pg_tblspc', pg.tsOid))).isDirectory());
  await verify(data);
  // PostgreSQL wants pg_tblspc/<oid> to be a symlink: move the tablespace out, as a restore does.
  await fs.rename(join(data, 'pg_tblspc', pg.tsOid), join(root, 'ts'));
  await fs.symlink(join(root, 'ts'), join(data, 'pg_tblspc', pg.tsOid));
  await startAndCompare(data);
});

test('library: ReplicationSource → DirectorySink with stream.pipeline', async () => {
  const root = await scratch('pgbb-lib-');
  const seen = new Set<string>();
  const source = pg.source();
  source.on('data', (ev: BackupEvent) => seen.add(ev.type));
  source.pause();
  await pipeline(source, pg.directorySink(root));
  for (const t of ['start', 'archive', 'entry', 'data', 'entry-end', 'archive-end', 'manifest', 'end']) assert.ok(seen.has(t), t);
  await verify(join(root, 'data'));
});

test('backpressure: a slow sink stops the socket read instead of buffering the backup', async () => {
  const source = pg.source();
  let maxBuffered = 0;
  let dataEvents = 0;
  let bytes = 0;
  const slow = new Writable({
    objectMode: true,
    highWaterMark: 4,
    write(ev: BackupEvent, _enc, cb) {
      maxBuffered = Math.max(maxBuffered, source.readableLength);
      if (ev.type === 'data') {
        dataEvents++;
        bytes += ev.chunk.length;
        // Every 50th chunk takes a while: the server must wait for us.
        if (dataEvents % 50 === 0) return void setTimeout(cb, 5);
      }
      cb();
    },
  });
  const rss0 = process.memoryUsage().rss;
  await pipeline(source, slow);
  assert.ok(bytes > 30 * 1024 * 1024, `backed up ${bytes} bytes`);
  // One socket read (≤ 64 KiB) yields at most a few hundred events beyond highWaterMark,
  // whereas an unthrottled source would queue the whole backup (thousands of events).
  assert.ok(maxBuffered < 600, `source buffered up to ${maxBuffered} events`);
  assert.ok(process.memoryUsage().rss - rss0 < bytes, 'memory did not grow with the backup');
});

test('a non-empty target is refused before the server is contacted, and left untouched', async () => {
  const root = await scratch('pgbb-nonempty-');
  await fs.writeFile(join(root, 'keep.txt'), 'precious');
  // Port 1 has no server: the error must be about the target, not the connection.
  const r = await runPgbb(['backup', '-d', 'host=127.0.0.1 port=1 user=postgres', '-D', root]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `pgbb: error: directory "${root}" exists but is not empty\n`);
  assert.deepEqual(await fs.readdir(root), ['keep.txt']);
});

test('an unreachable server: one line, non-zero exit, no target left behind', async () => {
  const root = await scratch('pgbb-noserver-');
  const target = join(root, 'data');
  const r = await runPgbb(['backup', '-h', '127.0.0.1', '-p', '1', '-U', 'postgres', '-D', target]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^pgbb: error: connection to server at "127\.0\.0\.1:1" failed: .*ECONNREFUSED.*\n$/);
  assert.equal(r.stderr.split('\n').length, 2, 'exactly one line');
  assert.ok(!existsSync(target), 'the target pgbb created is removed');
});

test('usage errors are one line with exit 2', async () => {
  const r1 = await runPgbb(['backup', ...conn(), '-D', '/tmp/x', '-F', 'zip']);
  assert.equal(r1.code, 2);
  assert.equal(r1.stderr, 'pgbb: error: invalid output format "zip", must be "plain" or "tar"\n');
  const r2 = await runPgbb(['backup', ...conn(), '-D', '-', '-F', 'plain']);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /requires tar format/);
  const r3 = await runPgbb(['backup', ...conn(), '-D', '/tmp/x', '-r', '5']);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /out of range/);
});
