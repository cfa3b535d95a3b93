import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DirectorySink } from '../../sinks/directory';
import { DATA_FILE_BATCH } from '../../src/io/file-writer';
import { mountSmallFs } from '../support/small-fs';
import { run } from '../support/run';
import { runPipeline } from '../../src/pipeline';
import { WalSpool } from '../../src/wal/wal-spool';
import { walArchiveEvents } from '../../src/wal/wal-archive';
import type { BackupEvent, StartEvent } from '../../src/events';

const SEG = 64 * 1024;
const mtime = new Date('2024-01-02T03:04:05Z');

const start: StartEvent = {
  type: 'start',
  serverVersion: 150018,
  systemIdentifier: '7300000000000000001',
  timeline: 1,
  startLsn: '0/20028',
  tablespaces: [{ oid: null, location: '', size: null }],
  walSegmentSize: SEG,
  blockSize: 8192,
  segmentBlocks: 131072,
  dataChecksums: true,
  label: 'test',
  totalBytes: null,
};

/** base.tar of a -X stream backup: pg_wal/ and pg_wal/archive_status/ exist, no segments. */
function baseArchive(): BackupEvent[] {
  const dir = (path: string): BackupEvent[] => [{ type: 'entry', path, kind: 'directory', size: 0, mode: 0o700, mtime }, { type: 'entry-end' }];
  return [
    { type: 'archive', kind: 'base', name: 'base', location: '' },
    { type: 'entry', path: 'PG_VERSION', kind: 'file', size: 3, mode: 0o600, mtime },
    { type: 'data', offset: 0, chunk: Buffer.from('15\n') },
    { type: 'entry-end' },
    ...dir('pg_wal'),
    ...dir('pg_wal/archive_status'),
    { type: 'archive-end' },
  ];
}

async function* events(spool: WalSpool, cutAfterWalData = false): AsyncGenerator<BackupEvent> {
  yield start;
  yield* baseArchive();
  for await (const ev of walArchiveEvents(spool.summary(), { mtime })) {
    yield ev;
    if (cutAfterWalData && ev.type === 'data') throw new Error('source failed mid-WAL');
  }
  yield { type: 'manifest', data: Buffer.from('{}\n') };
  yield { type: 'end', endLsn: '0/30100', timeline: 1 };
}

async function spoolWithWal(): Promise<WalSpool> {
  const s = await WalSpool.create();
  s.begin(BigInt(2 * SEG), 1, SEG);
  s.write(BigInt(2 * SEG), Buffer.alloc(SEG + 100, 0x5a));
  return s;
}

test('the wal archive lands in <target>/pg_wal beside what base.tar created', async () => {
  const root = await fs.mkdtemp(join(tmpdir(), 'pgbb-dirsink-'));
  const spool = await spoolWithWal();
  try {
    const target = join(root, 'data');
    await pipeline(Readable.from(events(spool)), new DirectorySink({ target, sync: false }));
    assert.deepEqual((await fs.readdir(join(target, 'pg_wal'))).sort(), [
      '000000010000000000000002',
      '000000010000000000000003',
      'archive_status',
    ]);
    assert.deepEqual(await fs.readdir(join(target, 'pg_wal', 'archive_status')), ['000000010000000000000002.done']);
    const seg3 = await fs.readFile(join(target, 'pg_wal', '000000010000000000000003'));
    assert.equal(seg3.length, SEG);
    assert.equal(seg3[99], 0x5a);
    assert.equal(seg3[100], 0);
    assert.equal((await fs.stat(join(target, 'pg_wal', '000000010000000000000002'))).mode & 0o777, 0o600);
    assert.equal(await fs.readFile(join(target, 'backup_manifest'), 'utf8'), '{}\n');
  } finally {
    await spool.remove();
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('a source failing inside the wal archive leaves no target behind', async () => {
  const root = await fs.mkdtemp(join(tmpdir(), 'pgbb-dirsink-'));
  const spool = await spoolWithWal();
  try {
    const target = join(root, 'data');
    // runPipeline waits for every stage's cleanup before it rejects.
    await assert.rejects(runPipeline(Readable.from(events(spool, true)), [], new DirectorySink({ target, sync: false })), /mid-WAL/);
    assert.ok(!existsSync(target));
  } finally {
    await spool.remove();
    await fs.rm(root, { recursive: true, force: true });
  }
});

/** Descriptors of this process open on something under `dir` (deleted or not). */
async function fdsUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const fd of await fs.readdir('/proc/self/fd')) {
    const to = await fs.readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (to.startsWith(`${dir}/`)) out.push(`${fd} -> ${to}`);
  }
  return out;
}

test('a file whose last write fails (a full disk) is closed: the sink leaves no descriptor open', async (t) => {
  const root = await fs.mkdtemp(join(tmpdir(), 'pgbb-dirsink-'));
  const mnt = join(root, 'mnt');
  await fs.mkdir(mnt);
  const small = await mountSmallFs(mnt, 4);
  t.diagnostic(`a 4 MiB ${small.kind}`);
  try {
    // Leave ~4 KiB: the file's 24 KiB stay below one batch (DATA_FILE_BATCH, 32 KiB), so only its entry-end flush writes them, and fails.
    const { stdout } = await run('df', ['-B1', '--output=avail', mnt]);
    await fs.writeFile(join(mnt, 'filler'), Buffer.alloc(Math.max(0, Number(stdout.trim().split('\n').pop()) - 4 * 1024)));
    const target = join(mnt, 'data');
    const evs: BackupEvent[] = [
      start,
      { type: 'archive', kind: 'base', name: 'base', location: '' },
      { type: 'entry', path: 'big', kind: 'file', size: 24 * 1024, mode: 0o600, mtime },
      ...Array.from({ length: 3 }, (_, i): BackupEvent => ({ type: 'data', offset: i * 8 * 1024, chunk: Buffer.alloc(8 * 1024, 0x61) })),
      { type: 'entry-end' },
      { type: 'archive-end' },
      { type: 'end', endLsn: '0/30100', timeline: 1 },
    ];
    await assert.rejects(runPipeline(Readable.from(evs), [], new DirectorySink({ target, sync: false })), /no space left on device/i);
    assert.deepEqual(await fdsUnder(mnt), [], 'no descriptor left open on the full disk');
    assert.ok(!existsSync(target), 'target removed');
  } finally {
    await small.unmount();
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('a sink destroyed while it prepares a tablespace directory removes that directory too', async () => {
  const root = await fs.mkdtemp(join(tmpdir(), 'pgbb-dirsink-'));
  try {
    // A race: repeated so that a sink that cleans up without waiting for its write loses it at least once.
    for (let i = 0; i < 10; i++) {
      const target = join(root, `data${i}`);
      const ts = join(root, `ts${i}`);
      const sink = new DirectorySink({ target, tablespaceMapping: { '/srv/ts': ts }, sync: false });
      await sink.ready();
      await new Promise((r) => setImmediate(r)); // construct has called back: writes go straight to _write
      sink.write({ ...start, tablespaces: [{ oid: '16385', location: '/srv/ts', size: null }, ...start.tablespaces] });
      sink.on('error', () => {});
      sink.destroy(new Error('aborted'));
      await new Promise((r) => sink.once('close', r));
      // Time for a preparation still running after 'close' to land (without the wait in _destroy, it does).
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(!existsSync(target), 'target removed');
      assert.ok(!existsSync(ts), `tablespace directory removed, not made after the cleanup (round ${i})`);
    }
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('the manifest goes to backup_manifest.tmp as its pieces come and is renamed last; a destroy mid-manifest removes it with the rest', async () => {
  const root = await fs.mkdtemp(join(tmpdir(), 'pgbb-dirsink-'));
  try {
    for (const abort of [false, true]) {
      const target = join(root, `data-${abort}`);
      const sink = new DirectorySink({ target, sync: false });
      sink.on('error', () => {});
      const write = (ev: BackupEvent) => new Promise<void>((resolve, reject) => sink.write(ev, (err) => (err ? reject(err) : resolve())));
      await write(start);
      for (const ev of baseArchive()) await write(ev);
      const big = Buffer.alloc(300 * 1024, 0x20);
      await write({ type: 'manifest', data: big });
      // Past the write batch: on disk already, not held until commit.
      assert.equal((await fs.stat(join(target, 'backup_manifest.tmp'))).size, big.length);
      assert.ok(!existsSync(join(target, 'backup_manifest')));
      await write({ type: 'manifest', data: Buffer.from('{}\n') });
      if (abort) {
        sink.destroy(new Error('aborted'));
        await new Promise((r) => sink.once('close', r));
        assert.ok(!existsSync(target), 'target removed');
        continue;
      }
      await write({ type: 'end', endLsn: '0/30100', timeline: 1 });
      await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
      const m = await fs.readFile(join(target, 'backup_manifest'));
      assert.ok(m.equals(Buffer.concat([big, Buffer.from('{}\n')])));
      assert.ok(!existsSync(join(target, 'backup_manifest.tmp')));
    }
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('many small files are written and fsynced with no FileHandle of their own: per-file native memory would grow with the file count', async () => {
  const { countAsyncResources } = await import('../support/async-resources');
  const root = await fs.mkdtemp(join(tmpdir(), 'pgbb-dirsink-'));
  const many = 300;
  function* members(): Generator<BackupEvent> {
    yield start;
    yield { type: 'archive', kind: 'base', name: 'base', location: '' };
    yield { type: 'entry', path: 'base', kind: 'directory', size: 0, mode: 0o700, mtime };
    yield { type: 'entry-end' };
    for (let i = 0; i < many; i++) {
      const body = Buffer.from(`file ${i}`);
      yield { type: 'entry', path: `base/f${i}`, kind: 'file', size: body.length, mode: 0o600, mtime };
      yield { type: 'data', offset: 0, chunk: body };
      yield { type: 'entry-end' };
    }
    yield { type: 'archive-end' };
    yield { type: 'manifest', data: Buffer.from('{}\n') };
    yield { type: 'end', endLsn: '0/30100', timeline: 1 };
  }
  try {
    const target = join(root, 'data');
    const counts = await countAsyncResources(() => pipeline(Readable.from(members()), new DirectorySink({ target, sync: true })));
    assert.equal(await fs.readFile(join(target, 'base', 'f123'), 'utf8'), 'file 123');
    assert.equal((await fs.readdir(join(target, 'base'))).length, many);
    // The target's lock file and backup_manifest: a few handles, none per file; one fsync request per file stays.
    assert.ok((counts.get('FILEHANDLE') ?? 0) < 10, `FileHandles for ${many} files: ${counts.get('FILEHANDLE')}`);
    assert.ok((counts.get('FSREQPROMISE') ?? 0) < many / 4, `promise fs requests for ${many} files: ${counts.get('FSREQPROMISE')}`);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('a data file is written in writes of about one CopyData (DATA_FILE_BATCH), not 256 KiB batches, and comes out whole', async (t) => {
  const root = await fs.mkdtemp(join(tmpdir(), 'pgbb-dirsink-'));
  const target = join(root, 'data');
  const size = 1024 * 1024;
  const content = Buffer.alloc(size);
  for (let i = 0; i < size; i++) content[i] = (i * 7 + (i >> 13)) & 0xff;
  const piece = 8 * 1024 + 100; // CopyData pieces do not fall on the batch size
  const evs: BackupEvent[] = [start, { type: 'archive', kind: 'base', name: 'base', location: '' }, { type: 'entry', path: 'rel', kind: 'file', size, mode: 0o600, mtime }];
  for (let at = 0; at < size; at += piece) evs.push({ type: 'data', offset: at, chunk: content.subarray(at, Math.min(size, at + piece)) });
  evs.push({ type: 'entry-end' }, { type: 'archive-end' }, { type: 'manifest', data: Buffer.from('{}\n') }, { type: 'end', endLsn: '0/30100', timeline: 1 });
  const sizes: number[] = [];
  // The module object itself (a named import would be a copy): WriteBatcher's writevSync is looked up on it at each call.
  const nodeFs = require('node:fs') as { writevSync: typeof import('node:fs').writevSync };
  const real = nodeFs.writevSync;
  t.after(() => {
    nodeFs.writevSync = real;
  });
  nodeFs.writevSync = ((fd: number, bufs: NodeJS.ArrayBufferView[], pos?: number) => {
    sizes.push(bufs.reduce((n, b) => n + b.byteLength, 0));
    return real(fd, bufs, pos);
  }) as typeof real;
  try {
    await pipeline(Readable.from(evs), new DirectorySink({ target, sync: false }));
    nodeFs.writevSync = real;
    // At most a batch and one piece: below 64 KiB (256 KiB batches made the page-cache copy the plain backup's main cost).
    assert.ok(DATA_FILE_BATCH + piece < 64 * 1024);
    assert.ok(Math.max(...sizes) < 64 * 1024, `largest write ${Math.max(...sizes)} bytes`);
    assert.ok(sizes.length >= 16, `${sizes.length} writes for 1 MiB`);
    assert.equal(sizes.reduce((a, b) => a + b, 0) >= size, true);
    assert.ok((await fs.readFile(join(target, 'rel'))).equals(content), 'the file holds every byte in order');
  } finally {
    nodeFs.writevSync = real;
    await fs.rm(root, { recursive: true, force: true });
  }
});
