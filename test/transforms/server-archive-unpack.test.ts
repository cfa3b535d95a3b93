/**
 * serverArchiveUnpack (transforms/server-archive-unpack.ts): the decoder's
 * events of a server-compressed BASE_BACKUP in, the ordinary member stream
 * out; corrupt or truncated zstd fails naming the archive; a reader that
 * takes nothing holds a highly compressible archive to bounded memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverArchiveUnpack } from '../../transforms/server-archive-unpack';
import { zstdCompress } from '../../transforms/zstd-compress';
import { CompressionError, ProtocolError } from '../../src/errors';
import type { BackupEvent } from '../../src/events';
import { tarOf } from '../support/backend-messages';
import { encodeHeader } from '../../src/codec/tar/encode-header';

async function zstd(data: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from([data]), zstdCompress({ level: 1 }), new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

/** The decoder's events for one compressed base archive, its bytes in pieces of `piece`. */
function decoderEvents(z: Buffer, piece: number): object[] {
  const bytes: object[] = [];
  for (let i = 0; i < z.length; i += piece) bytes.push({ type: 'archive-bytes', data: z.subarray(i, i + piece) });
  return [
    { type: 'archive', kind: 'base', name: 'base', location: '' },
    ...bytes,
    { type: 'progress', done: 1, total: null },
    { type: 'archive-end' },
    { type: 'manifest', data: Buffer.from('{}') },
  ];
}

async function unpack(events: object[]): Promise<{ out: BackupEvent[]; compressed: number }> {
  const u = serverArchiveUnpack();
  const out: BackupEvent[] = [];
  await pipeline(Readable.from(events), u, new Writable({ objectMode: true, write: (ev: BackupEvent, _e, cb) => (out.push(ev), cb()) }));
  return { out, compressed: u.compressedBytes };
}

test('members come out as the uncompressed archive holds them; other events pass in order', async () => {
  const tar = tarOf({ 'PG_VERSION': '15\n', 'global/': '', 'global/pg_control': 'x'.repeat(9000) });
  const z = await zstd(tar);
  for (const piece of [1, 7, z.length]) {
    const { out, compressed } = await unpack(decoderEvents(z, piece));
    assert.equal(compressed, z.length);
    const shape = out.map((ev) => (ev.type === 'entry' ? `entry ${ev.path} ${ev.size}` : ev.type));
    assert.deepEqual([...new Set(shape)].filter((t) => t !== 'data'), ['archive', 'entry PG_VERSION 3', 'entry-end', 'entry global 0', 'entry global/pg_control 9000', 'progress', 'archive-end', 'manifest']);
    const control = Buffer.concat(out.filter((ev) => ev.type === 'data').map((ev) => (ev as { chunk: Buffer }).chunk)).toString();
    assert.equal(control, `15\n${'x'.repeat(9000)}`);
  }
});

test('bytes that are not zstd, or end inside a frame, fail naming the archive', async () => {
  const z = await zstd(tarOf({ 'PG_VERSION': '15\n' }));
  await assert.rejects(unpack(decoderEvents(Buffer.from('this is not zstd at all'), 100)), (e: unknown) => e instanceof CompressionError && /base\.tar\.zst/.test(e.message));
  await assert.rejects(unpack(decoderEvents(z.subarray(0, z.length - 3), 100)), (e: unknown) => e instanceof CompressionError && /base\.tar\.zst/.test(e.message));
});

test('a stream that ends inside an archive, or bytes outside one, is a protocol error, not a complete archive', async () => {
  const z = await zstd(tarOf({ 'PG_VERSION': '15\n' }));
  await assert.rejects(unpack(decoderEvents(z, 100).slice(0, 2)), (e: unknown) => e instanceof ProtocolError && /ended inside a compressed archive/.test(e.message));
  await assert.rejects(unpack([{ type: 'archive-bytes', data: z }]), (e: unknown) => e instanceof ProtocolError && /outside an archive/.test(e.message));
});

test('a reader that takes nothing: 256 MiB of zeros behind a few KiB stay compressed, the writer waits', async () => {
  const size = 256 * 1024 * 1024;
  const tar = Buffer.concat([encodeHeader({ name: 'big', type: '0', size, mode: 0o600, mtime: new Date(0) }), Buffer.alloc(size + 1024)]);
  const z = await zstd(tar);
  assert.ok(z.length < 64 * 1024, `${z.length} compressed bytes`);
  const u = serverArchiveUnpack();
  const [open, ...rest] = decoderEvents(z, z.length);
  u.write(open);
  let taken = false;
  u.write(rest[0], () => (taken = true));
  await sleep(300);
  assert.equal(taken, false, 'the compressed chunk is not taken while its output waits');
  const held = u.readableLength;
  assert.ok(held <= 64, `${held} events buffered`);
  u.destroy();
});
