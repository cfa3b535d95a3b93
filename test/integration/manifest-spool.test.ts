/**
 * A streamed backup whose manifest outgrows memory (ReplicationSource's
 * `manifestMemory`, here 4 KiB): the server's manifest waits in
 * `pgbb.manifest.partial` beside the WAL — in the target's pg_wal/ (plain),
 * in the spool inside a tar target — comes after the pg_wal archive in
 * pieces of at most 256 KiB, and leaves nothing behind; pg_verifybackup
 * accepts the backup.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { tap, TarFilesSink, type BackupEvent } from '../../src/index';
import { MANIFEST_SPOOL_NAME } from '../../src/sources/manifest-hold';
import { SLAB_SIZE, slabEvents } from '../../src/io/slab-pool';
import { useSampleServer } from '../support/sample-server';
import { watchNames } from '../support/watch-names';

const pg = useSampleServer();
const { scratch, verify } = pg;

/** Names seen under `dir` and one level below while `until` is pending. */
async function watch<T>(dir: string, until: Promise<T>): Promise<Set<string>> {
  return (await watchNames(dir, until, 5)).seen;
}

/** Event order around the manifest: pg_wal archive first, then every manifest piece, then end. */
function orderCheck() {
  const order: string[] = [];
  const pieces: number[] = [];
  const t = tap((ev: BackupEvent) => {
    if (ev.type === 'archive') order.push(`archive ${ev.name}`);
    else if (ev.type === 'manifest') {
      pieces.push(ev.data.length);
      if (order.at(-1) !== 'manifest') order.push('manifest');
    } else if (ev.type === 'end') order.push('end');
  });
  return { t, order, pieces };
}

test('plain: the large manifest waits in pg_wal/, follows the WAL in pieces, is gone after; pg_verifybackup accepts the backup', async () => {
  const root = await scratch('pgbb-mspool-plain-');
  const walDir = join(root, 'data', 'pg_wal');
  const { t, order, pieces } = orderCheck();
  // The sink makes data/ first, as compose() does: the WAL goes into its pg_wal/ (src/pipeline/compose.ts).
  const sink = pg.directorySink(root);
  await sink.ready();
  const run = pipeline(pg.source({ wal: 'stream', walDir, manifestMemory: 4096 }), t, sink);
  const seen = await watch(walDir, run);
  assert.ok(seen.has(MANIFEST_SPOOL_NAME), `the manifest waited beside the WAL: ${[...seen]}`);
  assert.ok(!existsSync(join(walDir, MANIFEST_SPOOL_NAME)), 'and is gone');
  assert.deepEqual(order.slice(-3), ['archive pg_wal', 'manifest', 'end']);
  assert.ok(pieces.reduce((a, n) => a + n, 0) > 4096 && pieces.every((n) => n <= 256 * 1024), `pieces ${pieces}`);
  await verify(join(root, 'data'));
});

test('tar: the large manifest waits in the WAL spool inside the target; nothing but the archives and the manifest remain', async () => {
  const root = await scratch('pgbb-mspool-tar-');
  const target = join(root, 'tar');
  const { t, order } = orderCheck();
  const run = pipeline(pg.source({ wal: 'stream', walSpool: target, manifestMemory: 4096 }), t, new TarFilesSink({ target, sync: false }));
  const seen = await watch(target, run);
  assert.ok([...seen].some((n) => n.endsWith(`/${MANIFEST_SPOOL_NAME}`)), `the manifest waited in the spool: ${[...seen]}`);
  assert.deepEqual((await fs.readdir(target)).sort(), [`${pg.tsOid}.tar`, 'backup_manifest', 'base.tar', 'pg_wal.tar'].sort());
  assert.deepEqual(order.slice(-3), ['archive pg_wal', 'manifest', 'end']);
});

test('recycleBuffers: the spooled manifest comes back in recycled slabs, given back only once written (poisoned on recycle); pg_verifybackup accepts', async () => {
  const root = await scratch('pgbb-mspool-slabs-');
  const walDir = join(root, 'data', 'pg_wal');
  const was = slabEvents.recycled;
  let recycled = 0;
  slabEvents.recycled = (slab) => {
    recycled++;
    new Uint8Array(slab).fill(0xa5);
  };
  let inSlabs = 0;
  let pieces = 0;
  const t = tap((ev: BackupEvent) => {
    if (ev.type !== 'manifest') return;
    pieces++;
    if (ev.data.buffer.byteLength === SLAB_SIZE) inSlabs++;
  });
  const sink = pg.directorySink(root);
  await sink.ready(); // data/ before the WAL goes into its pg_wal/
  try {
    await pipeline(pg.source({ wal: 'stream', walDir, manifestMemory: 4096, recycleBuffers: true }), t, sink);
  } finally {
    slabEvents.recycled = was;
  }
  assert.ok(pieces > 0 && inSlabs === pieces, `${inSlabs} of ${pieces} manifest pieces were slab views`);
  assert.ok(recycled > 0, 'slabs were recycled');
  await verify(join(root, 'data'));
});

test('recycleBuffers, tar target: backup_manifest on disk is byte for byte what the source sent from its slabs', async () => {
  const root = await scratch('pgbb-mspool-slabs-tar-');
  const target = join(root, 'tar');
  const was = slabEvents.recycled;
  slabEvents.recycled = (slab) => void new Uint8Array(slab).fill(0xa5);
  const sent: Buffer[] = [];
  let inSlabs = 0;
  const t = tap((ev: BackupEvent) => {
    if (ev.type !== 'manifest') return;
    if (ev.data.buffer.byteLength === SLAB_SIZE) inSlabs++;
    sent.push(Buffer.from(ev.data)); // a copy, taken before the sink gives the slab back
  });
  try {
    await pipeline(pg.source({ wal: 'stream', walSpool: target, manifestMemory: 4096, recycleBuffers: true }), t, new TarFilesSink({ target, sync: false }));
  } finally {
    slabEvents.recycled = was;
  }
  assert.ok(sent.length > 0 && inSlabs === sent.length, `${inSlabs} of ${sent.length} manifest pieces were slab views`);
  const written = await fs.readFile(join(target, 'backup_manifest'));
  assert.ok(written.equals(Buffer.concat(sent)), 'backup_manifest differs from what was sent (poisoned: given back before it was written?)');
  assert.match(written.toString('utf8', written.length - 200), /"Manifest-Checksum"/);
});

test('destroyed while the manifest waits in its file: the file goes with the spool, at once', async () => {
  const root = await scratch('pgbb-mspool-destroy-');
  const spool = join(root, 'spool');
  await fs.mkdir(spool);
  const src = pg.source({ wal: 'stream', walSpool: spool, manifestMemory: 4096 });
  let destroyed = false;
  const stop = tap((ev: BackupEvent) => {
    if (ev.type === 'archive' && ev.name === 'pg_wal' && !destroyed) {
      destroyed = true;
      src.destroy(new Error('stopped by the test'));
    }
  });
  await assert.rejects(pipeline(src, stop, new Writable({ objectMode: true, write: (_e, _n, cb) => cb() })), /stopped by the test/);
  assert.deepEqual(await fs.readdir(spool), [], 'nothing left in the spool parent');
});
