/**
 * The chunk map codec: round trips (empty files, short last chunks, raw-byte
 * paths), and refusal of every truncation, every flipped byte, and
 * well-sealed maps that lie (bad version, hash width, duplicate path,
 * impossible size). Chunk size parsing and limits; map keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  checkChunkSize, chunkCount, chunkKey, chunkLength, decodeChunkMap, encodeChunkMap, HASH_BYTES, parseChunkSize, sameChunk,
  type ChunkMap, type ChunkMapFile,
} from '../../../../src/codec/chunkmap/chunk-map';
import { PgbbError, UsageError } from '../../../../src/errors';
import { pathFromBytes } from '../../../../src/codec/path-bytes';
import { HASH_KEY } from '../../../support/chunk-fixtures';

const C = 64 * 1024;

function file(path: string, size: number, seed: number): ChunkMapFile {
  const n = chunkCount(size, C);
  const crcs = new Uint32Array(n).map((_, k) => (seed * 7919 + k * 104729) >>> 0);
  const hashes = Buffer.alloc(n * HASH_BYTES, seed & 0xff);
  for (let k = 0; k < n; k++) hashes[k * HASH_BYTES] = k & 0xff;
  return { path, size, crcs, hashes };
}

function sample(): ChunkMap {
  const files = [
    file('PG_VERSION', 3, 1),
    file('base/5/16384', 3 * C + 100, 2),
    file('base/5/16385', 2 * C, 3),
    file('pg_wal/archive_status/000000010000000000000002.done', 0, 4),
    file(pathFromBytes(Buffer.from([0x62, 0x61, 0x64, 0xff, 0x2e])), 10, 5), // "bad\xff." — not UTF-8
    file('pg_tblspc/16400/PG_15_202209061/5/16401', 5 * C, 6),
  ];
  return { chunkSize: C, header: { systemIdentifier: '7300000000000000001', timeline: 1, startLsn: '0/2000028', serverVersion: 150018, hashKey: HASH_KEY }, files: new Map(files.map((f) => [f.path, f])) };
}

/** Re-seals a body with a valid trailer, so the decoder's other checks are reached. */
function seal(body: Buffer): Buffer {
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

test('a map survives encode → decode: sizes, every CRC and hash, raw-byte paths, empty files', () => {
  const m = sample();
  const d = decodeChunkMap(encodeChunkMap(m));
  assert.equal(d.chunkSize, C);
  assert.deepEqual(d.header, m.header);
  assert.deepEqual([...d.files.keys()], [...m.files.keys()]);
  for (const [k, f] of m.files) {
    const g = d.files.get(k)!;
    assert.equal(g.size, f.size, k);
    assert.deepEqual([...g.crcs], [...f.crcs], k);
    assert.ok(g.hashes.equals(f.hashes), k);
  }
  assert.equal(d.files.get('pg_wal/archive_status/000000010000000000000002.done')!.crcs.length, 0);
  assert.equal(d.files.get('base/5/16384')!.crcs.length, 4);
});

test('an empty map round-trips', () => {
  const m: ChunkMap = { chunkSize: 1 << 20, header: { systemIdentifier: '1', timeline: 1, startLsn: '0/0', serverVersion: 170000, hashKey: HASH_KEY }, files: new Map() };
  assert.equal(decodeChunkMap(encodeChunkMap(m)).files.size, 0);
});

test('every truncation of an encoded map is refused', () => {
  const buf = encodeChunkMap(sample());
  for (let n = 0; n < buf.length; n++) {
    assert.throws(() => decodeChunkMap(buf.subarray(0, n)), (e: unknown) => e instanceof PgbbError && e.code === 'chunk_map', `length ${n}`);
  }
});

test('every single flipped byte is refused (the SHA-256 trailer covers everything)', () => {
  const buf = encodeChunkMap(sample());
  for (let i = 0; i < buf.length; i++) {
    const bad = Buffer.from(buf);
    bad[i] ^= 0x01;
    assert.throws(() => decodeChunkMap(bad, 'x/pgbb.chunkmap'), /chunk map "x\/pgbb.chunkmap"/, `byte ${i}`);
  }
});

test('a sealed map that lies is refused, naming what is wrong', () => {
  const good = encodeChunkMap(sample());
  const body = Buffer.from(good.subarray(0, good.length - 32));
  const edit = (at: number, v: number) => {
    const b = Buffer.from(body);
    b.writeUInt32LE(v, at);
    return seal(b);
  };
  assert.throws(() => decodeChunkMap(edit(8, 3)), /format version 3 \(this pgbb reads 1 and 2\)/);
  assert.throws(() => decodeChunkMap(edit(12, 1000)), /invalid chunk size 1000/);
  assert.throws(() => decodeChunkMap(edit(16, 20)), /20 hash bytes per chunk/);
  assert.throws(() => decodeChunkMap(seal(Buffer.concat([body, Buffer.from([1])]))), /1 unexpected bytes/);
  // Two copies of the same file: the count says 2, the path repeats.
  const one: ChunkMap = { ...sample(), files: new Map([['a', file('a', 5, 1)]]) };
  const oneBody = encodeChunkMap(one);
  const start = 24 + oneBody.readUInt32LE(20) + 4; // after the header and the file count
  const rec = oneBody.subarray(start, oneBody.length - 32);
  const twice = Buffer.concat([oneBody.subarray(0, start), rec, rec]);
  twice.writeUInt32LE(2, start - 4);
  assert.throws(() => decodeChunkMap(seal(twice)), /"a" is listed twice/);
});

test('encode refuses a file whose chunk records do not fit its size', () => {
  const m = sample();
  const f = m.files.get('base/5/16385')!;
  m.files.set(f.path, { ...f, size: f.size + 1 });
  assert.throws(() => encodeChunkMap(m), /"base\/5\/16385" has 2 chunks, its size 131073 needs 3/);
});

test('chunk sizes: powers of two from 64 KiB to 1 MiB; --chunk-size accepts k and M', () => {
  for (const ok of [65536, 131072, 262144, 524288, 1048576]) assert.equal(checkChunkSize(ok), ok);
  for (const bad of [0, 32768, 65537, 98304, 2 << 20, 1.5]) assert.throws(() => checkChunkSize(bad), UsageError);
  assert.equal(parseChunkSize('64k'), 65536);
  assert.equal(parseChunkSize('256KiB'), 262144);
  assert.equal(parseChunkSize('1M'), 1048576);
  assert.equal(parseChunkSize('131072'), 131072);
  assert.throws(() => parseChunkSize('2M'), /must be a power of two from 64 KiB to 1 MiB/);
  assert.throws(() => parseChunkSize('fast'), /invalid chunk size "fast"/);
});

test('chunk lengths, counts and keys', () => {
  assert.equal(chunkCount(0, C), 0);
  assert.equal(chunkCount(1, C), 1);
  assert.equal(chunkCount(C, C), 1);
  assert.equal(chunkCount(C + 1, C), 2);
  assert.equal(chunkLength(C + 5, C, 0), C);
  assert.equal(chunkLength(C + 5, C, 1), 5);
  assert.equal(chunkLength(C + 5, C, 2), 0);
  assert.equal(chunkKey('base', 'base', 'base/5/1'), 'base/5/1');
  assert.equal(chunkKey('tablespace', '16400', 'PG_15_1/5/1'), 'pg_tblspc/16400/PG_15_1/5/1');
  assert.equal(chunkKey('wal', 'pg_wal', '000000010000000000000002'), 'pg_wal/000000010000000000000002');
});

test('sameChunk needs both the CRC and the hash', () => {
  const f = file('x', 2 * C, 9);
  const h = f.hashes.subarray(HASH_BYTES, 2 * HASH_BYTES);
  assert.ok(sameChunk(f, 1, f.crcs[1], h));
  assert.ok(!sameChunk(f, 1, f.crcs[1] ^ 1, h));
  const other = Buffer.from(h);
  other[15] ^= 0x80;
  assert.ok(!sameChunk(f, 1, f.crcs[1], other));
});
