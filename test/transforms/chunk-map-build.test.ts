/**
 * chunkMapBuild on synthetic member streams: the recorded map equals chunk
 * digests computed here, whatever the data event sizes; the map member goes
 * out just before the manifest (or end) as pg_wal/pgbb.chunkmap and decodes
 * to the result; every other event passes unchanged; data out of order and a
 * stream already carrying a map fail. A map past 1 MiB of records spills
 * them to a temporary file, closed when the stream is destroyed. Behind a
 * manifest check or build, each byte is CRC32C'd once (the stages share the
 * events' CRCs), and both still get the right CRCs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calculate as crc32c } from 'fast-crc32c';
import { readdirSync, readlinkSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { chunkMapBuild } from '../../transforms/chunk-map-build';
import { manifestBuild } from '../../transforms/manifest-build';
import { manifestVerify } from '../../transforms/manifest-verify';
import { crc32cHex, parseManifest } from '../../src/codec/manifest';
import { decodeChunkMap } from '../../src/codec/chunkmap/chunk-map';
import { digestChunk } from '../../src/codec/chunkmap/chunk-hasher';
import type { BackupEvent } from '../../src/events';
import { crcBytesDuring } from '../support/crc-count';
import { backupEvents, bytes, collect, fakeControlFile, type Member } from '../support/chunk-fixtures';

const C = 64 * 1024;
const rel = bytes(3 * C + 1234, 1);
const base: Member[] = [
  { path: 'PG_VERSION', data: Buffer.from('15\n') },
  { path: 'base', kind: 'directory' },
  { path: 'base/5/16384', data: rel },
  { path: 'base/5/16385', data: Buffer.alloc(0) },
  { path: 'global/pg_control', data: fakeControlFile() },
];
const ts = { oid: '16400', location: '/ts', members: [{ path: 'PG_15_1', kind: 'directory' as const }, { path: 'PG_15_1/5/1', data: bytes(C, 2) }] };

test('the map holds size, CRC32C and hash of every chunk of every file, keyed as the manifest keys them', async () => {
  for (const split of [1000, 32768, C, 100_000, 200_000]) {
    const t = chunkMapBuild({ chunkSize: C });
    await collect(backupEvents({ base, tablespace: ts, split, manifest: Buffer.from('{}') }), [t]);
    const m = t.result!.map;
    assert.deepEqual([...m.files.keys()], ['pg_tblspc/16400/PG_15_1/5/1', 'PG_VERSION', 'base/5/16384', 'base/5/16385', 'global/pg_control']);
    const f = m.files.get('base/5/16384')!;
    assert.equal(f.size, rel.length);
    assert.equal(f.crcs.length, 4);
    for (let k = 0; k < 4; k++) {
      const d = digestChunk(rel.subarray(k * C, (k + 1) * C), Buffer.from(m.header.hashKey!, 'hex'));
      assert.equal(f.crcs[k], d.crc, `split ${split} chunk ${k}`);
      assert.ok(f.hashes.subarray(k * 16, k * 16 + 16).equals(d.hash));
    }
    assert.equal(m.files.get('base/5/16385')!.crcs.length, 0);
    assert.equal(m.header.startLsn, '0/2000028');
    assert.equal(t.result!.bytes, rel.length + 3 + 8192 + C);
  }
});

test('the map member comes right before the manifest, as pg_wal/pgbb.chunkmap in a wal archive, and decodes to the result', async () => {
  const input = backupEvents({ base, manifest: Buffer.from('{"m":1}') });
  const t = chunkMapBuild({ chunkSize: C });
  const out = await collect(input, [t]);
  const at = out.findIndex((e) => e.type === 'manifest');
  const member = out.slice(at - 5, at);
  assert.deepEqual(member.map((e) => e.type), ['archive', 'entry', 'data', 'entry-end', 'archive-end']);
  assert.deepEqual({ ...member[0] }, { type: 'archive', kind: 'wal', name: 'pg_wal', location: '' });
  const entry = member[1] as Extract<BackupEvent, { type: 'entry' }>;
  assert.equal(entry.path, 'pgbb.chunkmap');
  const data = (member[2] as Extract<BackupEvent, { type: 'data' }>).chunk;
  assert.equal(entry.size, data.length);
  assert.ok(data.equals(t.result!.encoded));
  assert.equal(decodeChunkMap(data).files.get('PG_VERSION')!.crcs[0], crc32c(Buffer.from('15\n')) >>> 0);
  // Everything else passed unchanged, in order.
  assert.deepEqual([...out.slice(0, at - 5), ...out.slice(at)], input);
});

test('without a manifest the member comes before end; emit: false adds nothing', async () => {
  const out = await collect(backupEvents({ base }), [chunkMapBuild()]);
  assert.equal(out[out.length - 1].type, 'end');
  assert.equal((out[out.length - 5] as { path?: string }).path, 'pgbb.chunkmap');
  const quiet = chunkMapBuild({ emit: false });
  const input = backupEvents({ base });
  assert.deepEqual(await collect(input, [quiet]), input);
  assert.equal(quiet.result!.files, 4);
});

test('data out of order, short files and a second map fail', async () => {
  const bad = backupEvents({ base });
  const i = bad.findIndex((e) => e.type === 'data' && e.offset === 3000);
  bad.splice(i, 1);
  await assert.rejects(collect(bad, [chunkMapBuild({ chunkSize: C })]), /data for "base\/5\/16384" at offset 6000, expected 3000/);
  const short = backupEvents({ base });
  const entry = short.find((e) => e.type === 'entry' && e.path === 'PG_VERSION') as { size: number };
  entry.size = 4;
  await assert.rejects(collect(short, [chunkMapBuild()]), /"PG_VERSION" has 3 bytes of data but its size is 4/);
  const twice = backupEvents({ base: [...base, { path: 'pg_wal/pgbb.chunkmap', data: Buffer.from('x') }] });
  await assert.rejects(collect(twice, [chunkMapBuild()]), /already carries "pg_wal\/pgbb.chunkmap"/);
});

test('an invalid chunk size is refused at construction', () => {
  assert.throws(() => chunkMapBuild({ chunkSize: 4096 }), /invalid chunk size 4096/);
});

/** A backup of `n` small files (one chunk each): a map of about 60 bytes per file. */
function manyFiles(n: number): Member[] {
  const out: Member[] = [{ path: 'base', kind: 'directory' }];
  for (let i = 0; i < n; i++) out.push({ path: `base/5/${100000 + i}`, data: Buffer.from(String(i)) });
  return out;
}

test('a large map goes out in ≤ 64 KiB pieces at contiguous offsets, adding up to the size its entry announced', async () => {
  const t = chunkMapBuild({ chunkSize: C });
  const out = await collect(backupEvents({ base: manyFiles(20_000), manifest: Buffer.from('{}') }), [t]);
  const at = out.findIndex((e) => e.type === 'entry' && e.path === 'pgbb.chunkmap');
  const entry = out[at] as Extract<BackupEvent, { type: 'entry' }>;
  const data: Buffer[] = [];
  for (let i = at + 1; out[i].type === 'data'; i++) {
    const d = out[i] as Extract<BackupEvent, { type: 'data' }>;
    assert.equal(d.offset, data.reduce((n, b) => n + b.length, 0));
    assert.ok(d.chunk.length <= 64 * 1024, `piece of ${d.chunk.length} bytes`);
    data.push(d.chunk);
  }
  assert.ok(data.length > 10, `${data.length} pieces`);
  const whole = Buffer.concat(data);
  assert.equal(whole.length, entry.size);
  assert.equal(t.result!.size, entry.size);
  assert.ok(whole.equals(t.result!.encoded));
  assert.equal(decodeChunkMap(whole).files.size, 20_000);
});

/** The unlinked scratch files this process holds open. */
function scratchFds(): string[] {
  const fds: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (/pgbb-scratch-.*\(deleted\)$/.test(readlinkSync(`/proc/self/fd/${fd}`))) fds.push(fd);
    } catch {
      // closed while listed
    }
  }
  return fds;
}

test('a map past 1 MiB of records spills them and still goes out whole; the temporary file is closed with the stream', async () => {
  assert.deepEqual(scratchFds(), []);
  const t = chunkMapBuild({ chunkSize: C });
  const out = await collect(backupEvents({ base: manyFiles(40_000), manifest: Buffer.from('{}') }), [t]);
  const at = out.findIndex((e) => e.type === 'entry' && e.path === 'pgbb.chunkmap');
  const data: Buffer[] = [];
  for (let i = at + 1; out[i].type === 'data'; i++) data.push((out[i] as Extract<BackupEvent, { type: 'data' }>).chunk);
  const m = decodeChunkMap(Buffer.concat(data));
  assert.equal(m.files.size, 40_000);
  assert.equal(m.files.get('base/5/100007')!.crcs[0], digestChunk(Buffer.from('7'), Buffer.from(m.header.hashKey!, 'hex')).crc);
  assert.equal(m.files.get('base/5/139999')!.size, 5);
  // Destroyed after its end: the file is gone, and the spilled records with it.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(scratchFds(), []);
  // Only spilled records can fail so: the map did leave memory.
  assert.throws(() => t.result!.encoded, /temporary file for the chunk map was already released/);
});

test('emit: false: a map past 1 MiB stays readable after the stage is destroyed at its end, until release()', async () => {
  assert.deepEqual(scratchFds(), []);
  const t = chunkMapBuild({ chunkSize: C, emit: false });
  // As an S3 sink does: the map is encoded at its commit, after the stage's end (and autoDestroy).
  let encoded: Buffer | null = null;
  const sink = new Writable({
    objectMode: true,
    write: (_ev, _enc, cb) => cb(),
    final: (cb) => {
      setImmediate(() => {
        try {
          assert.ok(t.destroyed, 'the stage is destroyed by now');
          encoded = t.result!.encoded;
          cb();
        } catch (err) {
          cb(err as Error);
        }
      });
    },
  });
  await pipeline(Readable.from(backupEvents({ base: manyFiles(40_000), manifest: Buffer.from('{}') })), t, sink);
  assert.equal(decodeChunkMap(encoded!).files.size, 40_000);
  assert.equal(scratchFds().length, 1, 'held for the reader');
  t.release();
  t.release();
  assert.deepEqual(scratchFds(), []);
  assert.throws(() => t.result!.encoded, /temporary file for the chunk map was already released/);

  // A stream that fails releases it itself.
  const f = chunkMapBuild({ chunkSize: C, emit: false });
  const events = backupEvents({ base: manyFiles(40_000) });
  await assert.rejects(
    pipeline(Readable.from(events.slice(0, -2)), f, new Writable({ objectMode: true, write: (_e, _x, cb) => cb(), final: (cb) => cb(new Error('sink failed')) })),
    /sink failed/,
  );
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(scratchFds(), []);
});

test('the map is paced by its reader: an unread stage holds a few pieces, not the whole map', async () => {
  const t = chunkMapBuild({ chunkSize: C });
  const input = backupEvents({ base: manyFiles(40_000) });
  // Written without reading: the stage may hold at most its buffer of events.
  let wrote = 0;
  for (const ev of input) {
    if (!t.write(ev)) await new Promise((r) => setImmediate(r));
    wrote++;
    while (t.readableLength > 0 && wrote < input.length - 1) t.read();
  }
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.ok(t.readableLength <= t.readableHighWaterMark + 1, `${t.readableLength} events buffered`);
  assert.ok(t.result!.size > 20 * 64 * 1024, 'the map is larger than what is buffered');
  // Reading on brings the rest, then end.
  const rest: BackupEvent[] = [];
  t.on('data', (ev: BackupEvent) => rest.push(ev));
  t.end();
  await new Promise((r) => t.on('end', r));
  assert.equal(rest[rest.length - 1].type, 'end');
  const data = rest.filter((e): e is Extract<BackupEvent, { type: 'data' }> => e.type === 'data');
  assert.equal(data.reduce((n, d) => n + d.chunk.length, 0), t.result!.size);
});

test('behind the manifest check or build (shareCrc), each byte is CRC32C\'d once, and both get every CRC right', async () => {
  const big = bytes(5 * C + 777, 9);
  const files: Member[] = [{ path: 'PG_VERSION', data: Buffer.from('15\n') }, { path: 'base/5/16384', data: rel }, { path: 'base/5/16390', data: big }, { path: 'global/pg_control', data: fakeControlFile() }];
  const total = files.reduce((n, f) => n + f.data!.length, 0);
  const boundaries = files.reduce((n, f) => n + Math.max(0, Math.ceil(f.data!.length / C) - 1), 0);
  for (const split of [1000, 32768, 100_000, 200_000]) {
    for (const ahead of ['verify', 'build'] as const) {
      const manifest = ahead === 'verify' ? manifestVerify({ shareCrc: true }) : manifestBuild({ shareCrc: true });
      const map = chunkMapBuild({ chunkSize: C, emit: false });
      const { bytes: crcBytes } = await crcBytesDuring(() => collect(backupEvents({ base: files, split }), [manifest, map]));
      // Once per byte, plus what an event cut at a chunk boundary costs: its piece before the cut.
      assert.ok(crcBytes >= total && crcBytes <= total + boundaries * Math.min(split, C), `${ahead}, split ${split}: ${crcBytes} bytes CRC32C'd for ${total}`);
      const m = map.result!.map;
      const key = Buffer.from(m.header.hashKey!, 'hex');
      for (const f of files) {
        const rec = m.files.get(f.path)!;
        for (let k = 0; k < rec.crcs.length; k++) assert.equal(rec.crcs[k], digestChunk(f.data!.subarray(k * C, (k + 1) * C), key).crc, `${ahead} split ${split} ${f.path} chunk ${k}`);
      }
      if (ahead === 'build') {
        const listed = parseManifest((manifest as ReturnType<typeof manifestBuild>).result!.manifest!).files;
        for (const f of files) assert.equal(listed.get(f.path)!.checksum, crc32cHex(crc32c(f.data!) >>> 0), `${f.path} split ${split}`);
      }
    }
  }
  // Without shareCrc the check keeps its CRCs to itself (nothing left on the events): the map checksums every byte again.
  const { bytes: twice } = await crcBytesDuring(() => collect(backupEvents({ base: files, split: 32768 }), [manifestVerify(), chunkMapBuild({ chunkSize: C, emit: false })]));
  assert.equal(twice, 2 * total);
});
