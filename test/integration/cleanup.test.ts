/**
 * Cleanup, as a library user whose backup fails meets it: whatever ends a
 * backup — an observer that throws, a sink refusing in ready(), one sink of a
 * tee failing, an abort — the promise rejects only once every resource is
 * released: no walsender and no slot left on the server, as many file
 * descriptors and threads as before, nothing left in $TMPDIR, and the target
 * removed.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { after, test } from 'node:test';
import { makeTempDir } from '../support/cluster';
import { setTimeout as sleep } from 'node:timers/promises';
import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { useSampleServer } from '../support/sample-server';
import { serverClean, spawnPgbb } from '../support/failure-helpers';
import { mountSmallFs } from '../support/small-fs';
import { run } from '../support/run';
import { backup, compose, DirectorySink, refresh, restore, tee, TarFilesSink, verify, type BackupEvent, type Reporter } from '../../src/index';

let tmp = '';
// Setup in the sample server's own hook (node 20 runs root before() hooks together).
const pg = useSampleServer({
  sampleData: { scale: 1 },
  setup: async (cluster) => {
    tmp = await makeTempDir('pgbb-cleanup-tmp-');
    // A whole backup first: libuv's thread pool and zstd's first use start lazily and stay.
    const warm = join(tmp, 'warm');
    const conninfo = `host=127.0.0.1 port=${cluster.port} user=postgres`;
    await backup({ connection: { conninfo }, target: warm, format: 'tar', checkpoint: 'fast', sync: false, compress: { method: 'zstd', level: 3, workers: 2 } });
    await fs.rm(warm, { recursive: true });
    process.env.TMPDIR = tmp;
  },
});
const { scratch } = pg;
after(async () => {
  delete process.env.TMPDIR;
  await fs.rm(tmp, { recursive: true, force: true });
});

const connection = () => ({ conninfo: `host=127.0.0.1 port=${pg.cluster.port} user=postgres` });

interface Held {
  fds: number;
  threads: number;
  tmp: string[];
}
// zstd-napi has no explicit free: a dropped compressor's worker threads are joined when V8 collects it.
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function held(): Held {
  return { fds: readdirSync('/proc/self/fd').length, threads: readdirSync('/proc/self/task').length, tmp: readdirSync(tmp) };
}

/** After a failure: the server has nothing of ours, and no fd, thread or temp file is left. */
async function assertReleased(before: Held, what: string): Promise<void> {
  // At the rejection: every file and socket of ours is closed, every temp file gone.
  const fds = held().fds;
  assert.ok(fds <= before.fds, `${what}: ${fds - before.fds} file descriptors still open at the rejection`);
  const left = (await fs.readdir(tmp)).filter((f) => !before.tmp.includes(f) && !f.startsWith('pgbb-cleanup-'));
  assert.deepEqual(left, [], `${what}: nothing left in $TMPDIR`);
  let threads = held().threads;
  for (let i = 0; i < 20 && threads > before.threads; i++) {
    gc();
    await sleep(50);
    threads = held().threads;
  }
  assert.ok(threads <= before.threads, `${what}: ${threads - before.threads} threads left running`);
  // The server notices a closed connection by itself, a moment later.
  await serverClean(pg.cluster, 5000);
}

/** A transform that throws on the n-th data event. */
function throwingObserver(n: number): Transform {
  let seen = 0;
  return new Transform({
    objectMode: true,
    transform(ev: BackupEvent, _e, cb) {
      if (ev.type === 'data' && ++seen === n) throw new Error('observer broke');
      cb(null, ev);
    },
  });
}

function failingWritable(n: number): Writable {
  let seen = 0;
  return new Writable({
    objectMode: true,
    write(_ev: BackupEvent, _e, cb) {
      cb(++seen === n ? new Error('upload failed') : null);
    },
  });
}

for (const format of ['plain', 'tar'] as const) {
  test(`backup(${format}): an observer throwing mid-backup rejects with its error once everything is released; target removed`, async () => {
    const root = await scratch('pgbb-cleanup-obs-');
    const target = join(root, 'b');
    const b = held();
    await assert.rejects(
      backup({ connection: connection(), target, format, ...(format === 'plain' ? { tablespaceMapping: { [pg.tsLocation]: join(root, 'ts') } } : {}), checkpoint: 'fast', sync: false, observers: [throwingObserver(50)], ...(format === 'tar' ? { compress: { method: 'zstd', level: 3, workers: 2 } } : {}) }),
      /observer broke/,
    );
    assert.ok(!existsSync(target), 'target removed');
    assert.ok(!existsSync(join(root, 'ts')), 'tablespace target removed');
    await assertReleased(b, 'observer throwing');
  });
}

test('backup(tar, zstd workers): aborted mid-backup rejects "interrupted" once everything is released; target removed', async () => {
  const root = await scratch('pgbb-cleanup-abort-');
  const target = join(root, 'b');
  const b = held();
  const ac = new AbortController();
  let n = 0;
  const trigger = new Transform({
    objectMode: true,
    transform(ev: BackupEvent, _e, cb) {
      if (ev.type === 'data' && ++n === 50) ac.abort();
      cb(null, ev);
    },
  });
  await assert.rejects(
    backup({ connection: connection(), target, format: 'tar', checkpoint: 'fast', sync: false, compress: { method: 'zstd', level: 3, workers: 2 }, observers: [trigger], signal: ac.signal }),
    { code: 'interrupted' },
  );
  assert.ok(!existsSync(target), 'target removed');
  await assertReleased(b, 'abort');
});

test('backup: a signal already aborted rejects "interrupted", contacts no server, creates no target', async () => {
  const root = await scratch('pgbb-cleanup-preabort-');
  const target = join(root, 'b');
  const b = held();
  await assert.rejects(backup({ connection: connection(), target, checkpoint: 'fast', sync: false, signal: AbortSignal.abort() }), { code: 'interrupted' });
  assert.ok(!existsSync(target), 'target not created');
  await assertReleased(b, 'pre-aborted');
});

test('stdout backup: the output failing mid-stream rejects once everything is released; no spool left', async () => {
  const b = held();
  const output = new Writable({
    write(_c, _e, cb) {
      cb(new Error('output broke'));
    },
  });
  await assert.rejects(backup({ connection: connection(), target: '-', checkpoint: 'fast', sync: false, output, compress: { method: 'zstd', level: 3, workers: 2 } }), /output broke/);
  await assertReleased(b, 'stdout output failing');
});

test('compose: a sink refusing in ready() — the source is never built, nothing contacts the server', async () => {
  const b = held();
  let built = false;
  const sink = Object.assign(new Writable({ objectMode: true, write: (_c, _e, cb) => cb() }), {
    ready: () => Promise.reject(new Error('bucket missing')),
    walPlace: () => null,
  });
  await assert.rejects(compose({ sink, source: () => { built = true; return pg.source(); } }), /bucket missing/);
  assert.equal(built, false);
  assert.ok(sink.destroyed);
  await assertReleased(b, 'ready refusing');
});

test('tee of tar files (zstd) and a failing sink: rejects with the failure once the tar target is removed and everything released', async () => {
  const root = await scratch('pgbb-cleanup-tee-');
  const target = join(root, 't');
  const b = held();
  const sink = tee(new TarFilesSink({ target, sync: false, compress: { method: 'zstd', level: 3, workers: 2 } }), failingWritable(300));
  await assert.rejects(compose({ sink, source: (place) => pg.source({ wal: 'stream', ...(place ?? {}) }) }), /upload failed/);
  assert.ok(!existsSync(target), 'tar target removed');
  await assertReleased(b, 'tee failing sink');
});

test('tee whose second sink refuses in ready(): the first removes its target, nothing contacts the server', async () => {
  const root = await scratch('pgbb-cleanup-tee-ready-');
  const b = held();
  await fs.mkdir(join(root, 'full'));
  await fs.writeFile(join(root, 'full', 'x'), 'x');
  const sink = tee(new DirectorySink({ target: join(root, 'd'), sync: false }), new DirectorySink({ target: join(root, 'full'), sync: false }));
  await assert.rejects(compose({ sink, source: () => pg.source() }), /not empty/);
  assert.ok(!existsSync(join(root, 'd')), 'first target removed');
  assert.deepEqual(await fs.readdir(join(root, 'full')), ['x'], 'the refused target untouched');
  await assertReleased(b, 'tee ready refusing');
});

/** A transform that throws on the first event `pick` accepts. */
function throwingAt(pick: (ev: BackupEvent, inWal: boolean) => boolean): Transform {
  let inWal = false;
  return new Transform({
    objectMode: true,
    transform(ev: BackupEvent, _e, cb) {
      if (ev.type === 'archive') inWal = ev.name === 'pg_wal';
      if (pick(ev, inWal)) throw new Error(`observer broke at ${ev.type}`);
      cb(null, ev);
    },
  });
}

for (const [where, pick] of [
  ['the pg_wal archive', (ev: BackupEvent, inWal: boolean) => inWal && ev.type === 'data'],
  ['the manifest', (ev: BackupEvent) => ev.type === 'manifest'],
  ['the end event', (ev: BackupEvent) => ev.type === 'end'],
] as const) {
  for (const format of ['plain', 'tar', 'stdout'] as const) {
    test(`backup(${format}): an observer throwing at ${where} rejects once everything is released; target removed`, async () => {
      const root = await scratch('pgbb-cleanup-late-');
      const target = format === 'stdout' ? '-' : join(root, 'b');
      const b = held();
      const output = new Writable({ write: (_c, _e, cb) => cb() });
      await assert.rejects(
        backup({
          connection: connection(),
          target,
          format: format === 'stdout' ? 'tar' : format,
          ...(format === 'plain' ? { tablespaceMapping: { [pg.tsLocation]: join(root, 'ts') } } : {}),
          ...(format === 'stdout' ? { output } : {}),
          checkpoint: 'fast',
          sync: false,
          observers: [throwingAt(pick)],
        }),
        /observer broke/,
      );
      if (format !== 'stdout') assert.ok(!existsSync(target), 'target removed');
      // An upload behind `output` is aborted, never ended as if the tar stream were whole.
      else assert.ok(output.destroyed && !output.writableFinished, 'the output destroyed, not finished');
      await assertReleased(b, `throwing at ${where}`);
    });
  }
}

test('refresh failing at each step (a write, removal, pg_control, map, manifest, marker, an abort): released, no temp file beside the backup, marked incomplete; the next refresh completes it', async () => {
  const root = await scratch('pgbb-cleanup-refresh-');
  const target = join(root, 'b');
  const tablespaceMapping = { [pg.tsLocation]: join(root, 'ts') };
  await backup({ connection: connection(), target, tablespaceMapping, checkpoint: 'fast', sync: false });
  const quiet = { start() {}, warning() {}, progress() {}, result() {} } as unknown as Reporter;
  for (const at of ['write:5', 'remove', 'control', 'map', 'manifest', 'marker', 'abort']) {
    await pg.cluster.query(`CREATE TABLE IF NOT EXISTS cleanup_t AS SELECT 1 AS i; INSERT INTO cleanup_t SELECT generate_series(1, 2000)`);
    const b = held();
    const ac = new AbortController();
    let writes = 0;
    const onStep = (step: string) => {
      if (at === 'abort' && step === 'write' && ++writes === 5) ac.abort();
      else if (at === `${step}` || (at === 'write:5' && step === 'write' && ++writes === 5)) throw new Error(`failed at ${step}`);
    };
    await assert.rejects(refresh({ connection: connection(), target, checkpoint: 'fast', sync: false, reporter: quiet, onStep, signal: ac.signal }), at === 'abort' ? { code: 'interrupted' } : /failed at/, at);
    await assertReleased(b, `refresh failing at ${at}`);
    const names = await fs.readdir(target);
    assert.deepEqual(names.filter((n) => /\.tmp$|\.partial$/.test(n)), [], `${at}: no temporary file left beside the backup`);
    await assert.rejects(verify({ source: target }), { code: 'incomplete_refresh' }, at);
  }
  await refresh({ connection: connection(), target, checkpoint: 'fast', sync: false, reporter: quiet });
  const report = await verify({ source: target });
  assert.deepEqual(report.problems, []);
  await pg.verify(target);
});

test('disk full: a refresh (left incomplete, resumable, no temp file, released) and -D - with --wal-spool on the full disk (CLI: exit 1, one line, spool gone)', async (t) => {
  const root = await scratch('pgbb-cleanup-enospc-');
  const mnt = join(root, 'mnt');
  await fs.mkdir(mnt);
  const size = Number((await run('du', ['-sm', pg.cluster.dataDir])).stdout.split('\t')[0]);
  const small = await mountSmallFs(mnt, size + 64);
  t.diagnostic(`an ${size + 64} MiB ${small.kind}`);
  try {
    const target = join(mnt, 'b');
    const tablespaceMapping = { [pg.tsLocation]: join(mnt, 'ts') };
    const quiet = { start() {}, warning() {}, progress() {}, result() {} } as unknown as Reporter;
    await backup({ connection: connection(), target, tablespaceMapping, checkpoint: 'fast', sync: false, wal: 'fetch' });
    // Leave ~2 MiB: the refresh's streamed WAL (16 MiB segments) cannot fit.
    const { stdout } = await run('df', ['-B1', '--output=avail', mnt]);
    const free = Number(stdout.trim().split('\n').pop());
    await fs.writeFile(join(mnt, 'filler'), Buffer.alloc(Math.max(0, free - 2 * 1024 * 1024)));
    await pg.cluster.query(`CREATE TABLE IF NOT EXISTS cleanup_full AS SELECT 1 AS i; INSERT INTO cleanup_full SELECT generate_series(1, 20000)`);
    const b = held();
    await assert.rejects(refresh({ connection: connection(), target, checkpoint: 'fast', sync: false, reporter: quiet }), /no space left on device|no room for streamed WAL/);
    await assertReleased(b, 'refresh on a full disk');
    assert.deepEqual((await fs.readdir(target)).filter((n) => /\.tmp$|\.partial$/.test(n)), [], 'no temporary file left beside the backup');
    await assert.rejects(verify({ source: target }), /incomplete refresh|no room|manifest/);
    await fs.rm(join(mnt, 'filler'));
    await refresh({ connection: connection(), target, checkpoint: 'fast', sync: false, reporter: quiet });
    await pg.verify(target);

    // --wal-spool on the full disk: the tar stream goes to stdout, its WAL waits on the small disk.
    await fs.rm(target, { recursive: true });
    await fs.rm(join(mnt, 'ts'), { recursive: true });
    const avail = Number((await run('df', ['-B1', '--output=avail', mnt])).stdout.trim().split('\n').pop());
    await fs.writeFile(join(mnt, 'filler'), Buffer.alloc(Math.max(0, avail - 4 * 1024 * 1024)));
    await fs.mkdir(join(mnt, 'spool'));
    const r = await spawnPgbb(['backup', ...pg.conn(), '-D', '-', '-c', 'fast', '--wal-spool', join(mnt, 'spool')]).done;
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.split('\n').length, 2, `one line: ${JSON.stringify(r.stderr)}`);
    assert.match(r.stderr, /no space left on device|no room for streamed WAL/);
    assert.deepEqual(await fs.readdir(join(mnt, 'spool')), [], 'the spool is gone');
    await serverClean(pg.cluster, 5000);
  } finally {
    await small.unmount();
  }
});

test('restore and verify of a truncated base.tar.zst: one clear error, the restore target removed, every file closed, before they reject', async () => {
  const root = await scratch('pgbb-cleanup-restore-');
  const backupDir = join(root, 'b');
  await backup({ connection: connection(), target: backupDir, format: 'tar', checkpoint: 'fast', sync: false, compress: { method: 'zstd', level: 1, workers: 2 } });
  const base = join(backupDir, 'base.tar.zst');
  const { size } = await fs.stat(base);
  await fs.truncate(base, Math.floor(size / 2));
  const b = held();
  const target = join(root, 'r');
  await assert.rejects(
    restore({ source: backupDir, target, tablespaceMapping: { [pg.tsLocation]: join(root, 'rts') }, sync: false }),
    (e: Error) => /base\.tar\.zst/.test(e.message) && !e.message.includes('\n'),
  );
  assert.ok(!existsSync(target), 'restore target removed');
  assert.ok(!existsSync(join(root, 'rts')), 'tablespace target removed');
  // A backup that cannot be read to its end fails verify outright, naming the archive.
  await assert.rejects(verify({ source: backupDir }), /^CompressionError: zstd data in ".*\/base\.tar\.zst" is truncated/);
  await assertReleased(b, 'truncated base.tar.zst');
});

test('compose with a source stream (not a factory) and a sink refusing in ready(): the source is destroyed too — no connection, no backup left running on the server', async () => {
  const b = held();
  const source = pg.source({ wal: 'stream' });
  const sink = Object.assign(new Writable({ objectMode: true, write: (_c, _e, cb) => cb() }), {
    // Slow enough that the source has connected by then.
    ready: () => sleep(1000).then(() => Promise.reject(new Error('bucket missing'))),
    walPlace: () => null,
  });
  await assert.rejects(compose({ sink, source }), /bucket missing/);
  assert.ok(source.destroyed, 'the source was destroyed');
  await assertReleased(b, 'ready refusing, source given as a stream');
});
