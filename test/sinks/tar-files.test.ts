/**
 * Tests for TarFilesSink over tarPack({ layout: 'archive' }) (sinks/tar-files.ts):
 * the manifest's pieces go into backup_manifest.tmp as they come and it is
 * renamed last; destroyed mid-archive it removes what it made.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { BackupEvent } from '../../src/events';
import { TarFilesSink } from '../../sinks/tar-files';
import { sampleEvents } from '../support/synthetic-backup';
import { mountSmallFs } from '../support/small-fs';

function write(w: Writable, ev: BackupEvent): Promise<void> {
  return new Promise((resolve, reject) => w.write(ev, (err) => (err ? reject(err) : resolve())));
}

/** A tar-files sink at `target` that has had every sample event but the last (`end`, returned). */
async function sinkBeforeEnd(target: string): Promise<{ sink: TarFilesSink; end: BackupEvent }> {
  const sink = new TarFilesSink({ target, sync: false });
  await sink.ready();
  const events = sampleEvents();
  const end = events.pop()!;
  for (const ev of events) await write(sink, ev);
  return { sink, end };
}

test('TarFilesSink: the manifest goes to backup_manifest.tmp piece by piece, renamed only at the commit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-tarfiles-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const target = join(dir, 'b');
  const { sink, end } = await sinkBeforeEnd(target);
  const piece = Buffer.alloc(1 << 20, 0x7b);
  for (let i = 1; i <= 3; i++) {
    await write(sink, { type: 'manifest', data: piece });
    // FileWriter batches 256 KiB: each 1 MiB piece is on disk once its write has called back.
    assert.equal(statSync(join(target, 'backup_manifest.tmp')).size, i << 20);
    assert.ok(!existsSync(join(target, 'backup_manifest')));
  }
  await write(sink, end);
  await new Promise<void>((r, j) => sink.end((err?: Error | null) => (err ? j(err) : r())));
  assert.deepEqual(readdirSync(target).sort(), ['16385.tar', 'backup_manifest', 'base.tar']);
  assert.equal(readFileSync(join(target, 'backup_manifest')).length, 3 << 20);
});

test('TarFilesSink destroyed mid-archive (zstd) removes what it made, and closes only after its writers', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-tarfiles-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const target = join(dir, 'b');
  const sink = new TarFilesSink({ target, sync: false, compress: { method: 'zstd', level: 1, workers: 2 } });
  await sink.ready();
  const events = sampleEvents();
  for (const ev of events.slice(0, 12)) await write(sink, ev);
  // The compressed archive's file is opened beside libzstd's workers: its write callbacks can come first.
  const partial = join(target, 'base.tar.zst.partial');
  for (const until = Date.now() + 10_000; !existsSync(partial) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 10));
  assert.ok(existsSync(partial), 'the sink made its partial archive');
  sink.destroy();
  await new Promise((r) => sink.once('close', r));
  assert.ok(!existsSync(target), 'the target the sink made is gone');
});


test('TarFilesSink: a disk that fills at the manifest’s last write fails the commit, naming the file; no backup_manifest, nothing left', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-tarfiles-'));
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  const small = await mountSmallFs(mnt, 2);
  t.after(async () => {
    await small.unmount();
    rmSync(dir, { recursive: true, force: true });
  });
  const target = join(mnt, 'b');
  const { sink, end } = await sinkBeforeEnd(target);
  // What is left of the disk: 64 KiB. The manifest, smaller than one 256 KiB batch, goes to disk only at the end.
  const { bavail, bsize } = await statfs(mnt);
  writeFileSync(join(mnt, 'filler'), Buffer.alloc(Math.max(0, Number(bavail) * Number(bsize) - 64 * 1024)));
  await write(sink, { type: 'manifest', data: Buffer.alloc(200 * 1024, 0x7b) });
  await write(sink, end);
  // As in a pipeline, which listens: the commit's failure is also the stream's error.
  sink.on('error', () => {});
  const err = await new Promise<Error | null | undefined>((r) => sink.end((e?: Error | null) => r(e)));
  assert.ok(err, 'the commit failed');
  assert.equal(err.message, `could not write to file "${target}/backup_manifest.tmp": no space left on device`);
  await new Promise((r) => (sink.closed ? r(null) : sink.once('close', r)));
  assert.deepEqual(readdirSync(mnt), ['filler'], 'the target the sink made is gone');
});
