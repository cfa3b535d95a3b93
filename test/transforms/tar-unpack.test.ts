/**
 * Tests for tarUnpack() (transforms/tar-unpack.ts): the inverse of tarPack()
 * member for member, in input split anywhere; the manifest in pieces of at
 * most 256 KiB and the end LSN found across piece boundaries; truncated
 * streams fail; member events handed to it, or to the zstd stages, are a
 * UsageError naming both stages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupEvent } from '../../src/events';
import { PgbbError, UsageError } from '../../src/errors';
import { pathToBytes } from '../../src/codec/path-bytes';
import { manifestBuild } from '../../transforms/manifest-build';
import { tarPack } from '../../transforms/tar-pack';
import { ManifestEndScanner, MANIFEST_PIECE_BYTES, tarUnpack } from '../../transforms/tar-unpack';
import { zstdCompress } from '../../transforms/zstd-compress';
import { zstdDecompress } from '../../transforms/zstd-decompress';
import { sampleEvents } from '../support/synthetic-backup';

const sink = (out: BackupEvent[]) => new Writable({ objectMode: true, write: (e: BackupEvent, _x, cb) => (out.push(e), cb()) });

async function built(events = sampleEvents()): Promise<BackupEvent[]> {
  const out: BackupEvent[] = [];
  await pipeline(Readable.from(events), manifestBuild(), sink(out));
  return out;
}

async function packed(events: BackupEvent[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(Readable.from(events), tarPack(), new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }));
  return Buffer.concat(chunks);
}

/** "archive|path kind size data" per member, the manifest, and the end. */
function summary(events: BackupEvent[]): { members: string[]; manifest: Buffer; end: string } {
  const members: string[] = [];
  let archive = '';
  let cur = '';
  let data: Buffer[] = [];
  const manifest: Buffer[] = [];
  let end = '';
  for (const ev of events) {
    if (ev.type === 'archive') archive = ev.name;
    else if (ev.type === 'entry') {
      cur = `${archive}|${pathToBytes(ev.path).toString('hex')} ${ev.kind} ${ev.size} ${ev.linkTarget ?? ''}`;
      data = [];
    } else if (ev.type === 'data') data.push(ev.chunk);
    else if (ev.type === 'entry-end') members.push(`${cur} ${Buffer.concat(data).toString('hex')}`);
    else if (ev.type === 'manifest') manifest.push(ev.data);
    else if (ev.type === 'end') end = `${ev.endLsn} ${ev.timeline}`;
  }
  return { members: members.sort(), manifest: Buffer.concat(manifest), end };
}

function split(buf: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < buf.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

test('tarPack → tarUnpack gives the members back, with input split anywhere', async () => {
  const events = await built();
  const bytes = await packed(events);
  const want = summary(events);
  for (const sizes of [[bytes.length], [1], [511, 513], [7, 1000, 33]]) {
    const out: BackupEvent[] = [];
    await pipeline(Readable.from(split(bytes, sizes)), tarUnpack(), sink(out));
    assert.equal(out[0]!.type, 'start');
    assert.equal(out[out.length - 1]!.type, 'end');
    assert.deepEqual(summary(out), want, `split ${sizes.join(',')}`);
  }
});

test('the manifest comes out in pieces of at most 256 KiB; the end LSN is found where a piece splits it', async () => {
  const events: BackupEvent[] = (await built()).filter((e) => e.type !== 'manifest');
  const range = '"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n],\n';
  const manifest = Buffer.concat([Buffer.from('{"Files": [\n'), Buffer.alloc(700_000, 0x20), Buffer.from(range), Buffer.from('"Manifest-Checksum": "x"}\n')]);
  events.splice(events.length - 1, 0, { type: 'manifest', data: manifest });
  const out: BackupEvent[] = [];
  await pipeline(Readable.from(split(await packed(events), [1 << 20])), tarUnpack(), sink(out));
  const pieces = out.filter((e) => e.type === 'manifest') as { data: Buffer }[];
  assert.ok(pieces.length >= 3);
  for (const p of pieces) assert.ok(p.data.length <= MANIFEST_PIECE_BYTES);
  assert.ok(Buffer.concat(pieces.map((p) => p.data)).equals(manifest));
  assert.equal(summary(out).end, '0/2000100 1');

  const at = manifest.indexOf('"End-LSN"');
  for (const cut of [at - 30, at, at + 5, at + 20]) {
    const s = new ManifestEndScanner();
    s.feed(manifest.subarray(0, cut));
    s.feed(manifest.subarray(cut));
    assert.deepEqual(s.result(), { endLsn: '0/2000100', timeline: 1 }, `cut at ${cut}`);
  }
});

test('a stream cut short fails, wherever it is cut', async () => {
  const bytes = await packed(await built());
  // tarPack writes the end-of-archive marker (two zero blocks) only after `end`: any cut before it.
  for (const n of [0, 100, 512, 4096, bytes.length - 1025, bytes.length - 1024]) {
    await assert.rejects(pipeline(Readable.from([bytes.subarray(0, n)]), tarUnpack({ name: 'cut.tar' }), sink([])), (e: unknown) => e instanceof PgbbError, `cut at ${n}`);
  }
});

test('bytes without a pgbb descriptor are not a backup', async () => {
  const plain = await packed([{ type: 'archive', kind: 'base', name: 'base', location: '' }, { type: 'entry', path: 'd', kind: 'directory', size: 0, mode: 0o700, mtime: new Date() }, { type: 'entry-end' }, { type: 'archive-end' }, { type: 'end', endLsn: '0/0', timeline: 1 }]);
  await assert.rejects(pipeline(Readable.from([plain]), tarUnpack({ name: 'x.tar' }), sink([])), (e: unknown) => e instanceof PgbbError && e.code === 'not_a_backup' && /^x\.tar carries no pgbb backup descriptor/.test(e.message));
});

test('member events where bytes are expected: a UsageError naming both stages', async () => {
  // A member-stream stage of the user's own, by class name.
  class ReplicationSource extends Transform {
    constructor() {
      super({ objectMode: true });
    }
    override _transform(ev: BackupEvent, _e: BufferEncoding, cb: (err?: Error | null, ev?: BackupEvent) => void): void {
      cb(null, ev);
    }
  }
  const events = await built();
  const drop = () => new Writable({ write: (_c, _e, cb) => cb() });
  await assert.rejects(
    pipeline(Readable.from(events), new ReplicationSource(), zstdCompress({ workers: 0 }), drop()),
    (e: unknown) => e instanceof UsageError && e.message === 'zstdCompress() was given member events from ReplicationSource; it takes bytes: put tarPack() before it',
  );
  await assert.rejects(
    pipeline(Readable.from(events), manifestBuild(), zstdDecompress(), drop()),
    (e: unknown) => e instanceof UsageError && /^zstdDecompress\(\) was given member events from ManifestBuild/.test(e.message),
  );
  await assert.rejects(
    pipeline(Readable.from(events), tarUnpack(), drop()),
    (e: unknown) => e instanceof UsageError && /^tarUnpack\(\) was given member events from Readable; it takes bytes: a member stream needs no tarUnpack\(\)/.test(e.message),
  );
  // tarPack() in between makes it right.
  await pipeline(Readable.from(events), new ReplicationSource(), tarPack(), zstdCompress({ workers: 0 }), drop());
});
