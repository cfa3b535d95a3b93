/**
 * Recycled read memory (src/io/slab-pool.ts) against a real PostgreSQL 15:
 * every pgbb run of the tests poisons each slab it recycles
 * (test/support/slab-poison.ts), so a stage that gave bytes back before it
 * was done with them would write 0xA5 where data belongs. Here: the plain,
 * tar and zstd stdout paths do recycle (the poison is not idle), and what
 * they wrote verifies with pg_verifybackup and starts with the same data;
 * a stage of the caller's own turns recycling off, so the chunks it keeps
 * stay what the server sent; a tee holds each chunk once per sink; a
 * refresh recycles too, and its result verifies and starts.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Transform } from 'node:stream';
import { run } from '../support/run';
import { runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import { backup, compose, DirectorySink, TarFilesSink, tee, type BackupEvent } from '../../src/index';
import '../support/slab-poison';
import { slabEvents } from '../../src/io/slab-pool';

const pg = useSampleServer({ sampleData: { scale: 4 }, fingerprint: true, conf: { fsync: false } });
const { conn, scratch, verify } = pg;

/** Runs pgbb with the poison's count on; returns how many slabs it recycled. */
async function recycledBy(args: string[], extra: { stdoutTo?: string } = {}): Promise<number> {
  const log = join(await scratch('pgbb-slab-log-'), 'count');
  const r = await runPgbb(args, { ...extra, env: { PGBB_TEST_SLAB_LOG: log } });
  assert.equal(r.code, 0, r.stderr);
  return Number((await fs.readFile(log, 'utf8')).trim());
}

/** Slabs this process recycles while `fn` runs. */
async function recycledDuring(fn: () => Promise<unknown>): Promise<number> {
  let n = 0;
  const was = slabEvents.recycled;
  slabEvents.recycled = (slab) => {
    n++;
    was(slab);
  };
  try {
    await fn();
  } finally {
    slabEvents.recycled = was;
  }
  return n;
}

/** A 60 MB backup passes ~240 slabs: most must come back, or recycling is not happening. */
const ENOUGH = 100;

test('slab reads: a plain backup recycles its read memory and still verifies and starts with the same data', async () => {
  const root = await scratch('pgbb-slab-plain-');
  const target = join(root, 'data');
  const n = await recycledBy(['backup', ...conn(), '-D', target, '-T', `${pg.tsLocation}=${join(root, 'ts')}`, '-c', 'fast', '-N']);
  assert.ok(n >= ENOUGH, `only ${n} slabs recycled`);
  await verify(target);
  await pg.startAndCompare(target);
});

test('slab reads: -F tar -X stream and -D - with zstd recycle too, and their archives verify', async () => {
  const root = await scratch('pgbb-slab-tar-');
  const tarDir = join(root, 'tar');
  const nTar = await recycledBy(['backup', ...conn(), '-D', tarDir, '-F', 'tar', '-c', 'fast', '-N']);
  assert.ok(nTar >= ENOUGH, `-F tar: only ${nTar} slabs recycled`);
  const zst = join(root, 'backup.tar.zst');
  const nZstd = await recycledBy(['backup', ...conn(), '-D', '-', '--compress', 'zstd:1', '-X', 'fetch', '-c', 'fast'], { stdoutTo: zst });
  assert.ok(nZstd >= ENOUGH, `-D - zstd: only ${nZstd} slabs recycled`);

  const fromTar = join(root, 'from-tar');
  await extract(join(tarDir, 'base.tar'), fromTar, join(root, 'from-tar-ts'), join(tarDir, `${pg.tsOid}.tar`));
  await run('tar', ['-xf', join(tarDir, 'pg_wal.tar'), '-C', join(fromTar, 'pg_wal')]);
  await fs.copyFile(join(tarDir, 'backup_manifest'), join(fromTar, 'backup_manifest'));
  await verify(fromTar);

  // One tar stream: base, then the tablespace under pg_tblspc/<oid>/, the manifest last.
  const fromStdout = join(root, 'from-stdout');
  await fs.mkdir(fromStdout, { mode: 0o700 });
  await run('tar', ['--zstd', '-xf', zst, '-C', fromStdout]);
  await verify(fromStdout);
});

test('slab reads: with an observer of yours, chunks it keeps stay what was written (no recycling under it)', async () => {
  const root = await scratch('pgbb-slab-lib-');
  const target = join(root, 'data');
  const kept = new Map<string, Buffer[]>();
  let file = '';
  let archive = '';
  const keep = new Transform({
    objectMode: true,
    transform(ev: BackupEvent, _enc, done) {
      if (ev.type === 'archive') archive = ev.name;
      if (ev.type === 'entry') file = `${archive}/${ev.path}`;
      // By reference, as a script might: no copy.
      if (ev.type === 'data' && archive === 'base' && /^base\/\d+\/\d+$/.test(file.slice(5))) kept.set(file, [...(kept.get(file) ?? []), ev.chunk]);
      done(null, ev);
    },
  });
  const connection = { host: pg.cluster.host, port: String(pg.cluster.port), user: 'postgres' };
  // (The WAL connection still recycles its reads: they are written before anything sees them.)
  await backup({ connection, target, checkpoint: 'fast', sync: false, tablespaceMapping: { [pg.tsLocation]: join(root, 'ts') }, observers: [keep] });
  assert.ok(kept.size > 10, `kept ${kept.size} files`);
  for (const [name, chunks] of kept) {
    assert.ok(Buffer.concat(chunks).equals(await fs.readFile(join(target, name.slice(5)))), `${name}: the kept chunks differ from the file`);
  }
});

test('slab reads: recycleBuffers under a tee of a directory and tar files: each sink writes every byte before the slab comes back', async () => {
  const root = await scratch('pgbb-slab-tee-');
  const plain = join(root, 'plain');
  const tarDir = join(root, 'tar');
  const recycled = await recycledDuring(async () => {
    const sink = tee(new TarFilesSink({ target: tarDir, sync: false }), new DirectorySink({ target: plain, tablespaceMapping: { [pg.tsLocation]: join(root, 'ts') }, sync: false }));
    await compose({ sink, source: (place) => pg.source({ recycleBuffers: true, ...(place ?? {}) }) });
  });
  assert.ok(recycled >= ENOUGH, `only ${recycled} slabs recycled`);
  await verify(plain);
  const fromTar = join(root, 'from-tar');
  await extract(join(tarDir, 'base.tar'), fromTar, join(root, 'from-tar-ts'), join(tarDir, `${pg.tsOid}.tar`));
  await fs.copyFile(join(tarDir, 'backup_manifest'), join(fromTar, 'backup_manifest'));
  await verify(fromTar);
});

test('slab reads: a refresh recycles its read memory (the chunks it drops as unchanged, the pages it compares and writes) and still verifies and starts with the same data', async () => {
  const root = await scratch('pgbb-slab-refresh-');
  const target = join(root, 'data');
  const b = await runPgbb(['backup', ...conn(), '-D', target, '-T', `${pg.tsLocation}=${join(root, 'ts')}`, '-c', 'fast', '-N']);
  assert.equal(b.code, 0, b.stderr);
  const same = await recycledBy(['refresh', ...conn(), '-D', target, '-c', 'fast', '-N']);
  assert.ok(same >= ENOUGH, `nothing changed: only ${same} slabs recycled`);
  await verify(target);

  // Rows changed on pages spread over a table: its chunks change, and their pages are compared with DIR's.
  pg.onCleanup(() => pg.cluster.query('DROP TABLE IF EXISTS slab_refresh'));
  await pg.cluster.query("CREATE TABLE slab_refresh WITH (fillfactor = 50) AS SELECT i AS id, 0 AS v, repeat('r', 200) AS pad FROM generate_series(1, 40000) i");
  const n = await recycledBy(['refresh', ...conn(), '-D', target, '-c', 'fast', '-N']);
  await pg.cluster.query('UPDATE slab_refresh SET v = id WHERE id % 97 = 0');
  const m = await recycledBy(['refresh', ...conn(), '-D', target, '-c', 'fast', '-N']);
  assert.ok(n >= ENOUGH && m >= ENOUGH, `only ${n} and ${m} slabs recycled`);
  const [want] = await pg.cluster.query<{ s: string; c: string }>('SELECT sum(v)::text AS s, count(*)::text AS c FROM slab_refresh');
  await verify(target);
  await pg.withStarted(target, async (restored) => {
    const [got] = await restored.query<{ s: string; c: string }>('SELECT sum(v)::text AS s, count(*)::text AS c FROM slab_refresh');
    assert.deepEqual(got, want);
  });
  await pg.cluster.query('DROP TABLE slab_refresh');
});

/** -F tar's base.tar and tablespace archive, extracted as a DBA restores them. */
async function extract(base: string, data: string, tsDir: string, tsTar: string): Promise<void> {
  await fs.mkdir(data, { mode: 0o700 });
  await fs.mkdir(tsDir, { mode: 0o700 });
  await run('tar', ['-xf', base, '-C', data]);
  await run('tar', ['-xf', tsTar, '-C', tsDir]);
  await fs.rm(join(data, 'pg_tblspc', pg.tsOid));
  await fs.symlink(tsDir, join(data, 'pg_tblspc', pg.tsOid));
}
