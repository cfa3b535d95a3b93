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
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { run } from '../support/run';
import { runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import type { BackupEvent } from '../../src/index';

const pg = useSampleServer({ fingerprint: true });
// A full GC on demand, to measure what is kept rather than what awaits collection.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
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

test('-D - with stdout a file itself (writev on the descriptor): a whole tar that verifies; a full device is a one-line error', async () => {
  const root = await scratch('pgbb-stdout-fd-');
  const file = join(root, 'backup.tar');
  const r = await runPgbb(['backup', ...conn(), '-D', '-', '-c', 'fast', '-X', 'fetch'], { stdoutTo: file });
  assert.equal(r.code, 0, r.stderr);
  const names = (await run('tar', ['-tf', file])).stdout.split('\n').filter(Boolean);
  assert.equal(names[names.length - 1], 'backup_manifest');
  const data = join(root, 'data');
  await fs.mkdir(data, { mode: 0o700 });
  await run('tar', ['-xf', file, '-C', data]);
  await verify(data);
  const full = await runPgbb(['backup', ...conn(), '-D', '-', '-c', 'fast', '-X', 'fetch'], { stdoutTo: '/dev/full' });
  assert.equal(full.code, 1);
  assert.match(full.stderr, /^pgbb: error: could not write to file "standard output": no space left on device\n$/);
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

test('backpressure: a sink that stalls holds the source to under 2 MiB in flight; the backup keeps under 10 MiB of live memory, flat whatever its size', async (t) => {
  const source = pg.source();
  // Bytes of data the source has pushed, against those the sink has taken:
  // the difference is what the source holds (its buffer, one socket read).
  let pushed = 0;
  let taken = 0;
  const push = source.push.bind(source);
  source.push = (ev: BackupEvent | null) => {
    if (ev?.type === 'data') pushed += ev.chunk.length;
    return push(ev);
  };
  const inFlight: number[] = [];
  const live: number[] = [];
  // Every 2 MiB the sink stops until the source has stopped too (nothing
  // pushed for 100 ms): what is held then is all it would ever hold, however
  // fast the server or slow this machine. Live memory is taken after a full
  // GC, so it counts what is kept (anywhere in the process), not garbage.
  const STALL_EVERY = 2 * 1024 * 1024;
  let nextStall = STALL_EVERY;
  const stall = async () => {
    const t0 = Date.now();
    for (let last = -1; pushed !== last && Date.now() - t0 < 10_000; ) {
      last = pushed;
      await sleep(100);
    }
    inFlight.push(pushed - taken);
    gc();
    const m = process.memoryUsage();
    live.push(m.heapUsed + m.arrayBuffers);
  };
  const slow = new Writable({
    objectMode: true,
    highWaterMark: 4,
    write(ev: BackupEvent, _enc, cb) {
      if (ev.type !== 'data') return cb();
      taken += ev.chunk.length;
      if (taken < nextStall) return cb();
      nextStall += STALL_EVERY;
      stall().then(() => cb(), cb);
    },
  });
  gc();
  const before = process.memoryUsage();
  await pipeline(source, slow);
  assert.ok(taken > 30 * 1024 * 1024, `backed up ${taken} bytes`);
  assert.equal(pushed, taken, 'every byte pushed reached the sink');
  const MiB = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MiB`;
  const held = Math.max(...live) - (before.heapUsed + before.arrayBuffers);
  // The first samples are taken while the connection and pools warm up.
  const growth = Math.max(...live.slice(3)) - Math.min(...live.slice(0, 3));
  t.diagnostic(
    `${live.length} stalls over ${MiB(taken)}: in flight at most ${MiB(Math.max(...inFlight))}; ` +
      `live memory at most ${MiB(held)} above what it was before the backup, ${MiB(growth)} above its first samples`,
  );
  // The source's buffer (16 events) plus one socket read (64 KiB) and the sink's 4 events.
  assert.ok(Math.max(...inFlight) < 2 * 1024 * 1024, `the source held up to ${MiB(Math.max(...inFlight))} while the sink stalled`);
  // Bounded and flat: 16 MiB read ahead anywhere (a queue before push, a parser
  // buffer, a connection that does not pause) would show here, even where the
  // push count above cannot see it.
  assert.ok(held < 10 * 1024 * 1024, `the backup kept up to ${MiB(held)} of live memory`);
  assert.ok(growth < 8 * 1024 * 1024, `live memory grew by ${MiB(growth)} over the backup`);
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

test('usage errors are one line with exit 1', async () => {
  const r1 = await runPgbb(['backup', ...conn(), '-D', '/tmp/x', '-F', 'zip']);
  assert.equal(r1.code, 1);
  assert.equal(r1.stderr, 'pgbb: error: invalid output format "zip", must be "plain" or "tar"\n');
  const r2 = await runPgbb(['backup', ...conn(), '-D', '-', '-F', 'plain']);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /requires tar format/);
  const r3 = await runPgbb(['backup', ...conn(), '-D', '/tmp/x', '-r', '5']);
  assert.equal(r3.code, 1);
  assert.match(r3.stderr, /out of range/);
});
