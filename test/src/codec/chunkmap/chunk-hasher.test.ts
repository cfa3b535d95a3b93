/**
 * ChunkHasher gives CRC32C and keyed XXH3-128, the same however the bytes
 * are split, holding no caller's buffer; keys matter; digests reset; ChunkListBuilder grows past its estimate, copies records from
 * another entry, and refuses a record count that does not fit the size.
 * PieceCrcs gives each piece's CRC32C from the whole's, at any cuts; a
 * hasher given those CRCs digests as one computing them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { calculate as crc32c } from 'fast-crc32c';
import { xxh3 } from '@node-rs/xxhash';
import { ChunkHasher, ChunkListBuilder, digestChunk, hashSecret, newHashKey, PieceCrcs, toBoundary } from '../../../../src/codec/chunkmap/chunk-hasher';
import { HASH_BYTES } from '../../../../src/codec/chunkmap/chunk-map';
import { bytes, HASH_KEY_BYTES } from '../../../support/chunk-fixtures';

/** The documented secret: SHA-256(key || i), i = 0..5, concatenated (192 bytes). */
function secretOf(key: Buffer): Buffer {
  return Buffer.concat([0, 1, 2, 3, 4, 5].map((i) => createHash('sha256').update(key).update(Buffer.from([i])).digest()));
}

function xxh128Bytes(buf: Buffer, key: Buffer): Buffer {
  const h = xxh3.xxh128WithSecret(buf, secretOf(key));
  const out = Buffer.alloc(16);
  out.writeBigUInt64BE(h >> 64n, 0);
  out.writeBigUInt64BE(h & 0xffffffffffffffffn, 8);
  return out;
}

test('digest = CRC32C and XXH3-128 with the secret the key stands for, whatever the split', () => {
  const buf = bytes(100_000, 7);
  const want = { crc: crc32c(buf) >>> 0, hash: xxh128Bytes(buf, HASH_KEY_BYTES) };
  assert.equal(want.hash.length, HASH_BYTES);
  assert.deepEqual(digestChunk(buf, HASH_KEY_BYTES), want);
  const h = new ChunkHasher(HASH_KEY_BYTES, 1024); // smaller than a chunk: the scratch grows
  for (let i = 0; i <= buf.length; i += 9973) {
    h.update(buf.subarray(0, i));
    h.update(buf.subarray(i));
    assert.equal(h.length, buf.length);
    assert.deepEqual(h.digest(), want, `split at ${i}`);
    assert.equal(h.length, 0);
  }
});

test('the hasher keeps no reference to the caller\'s buffers (a receiver may reuse them)', () => {
  const buf = bytes(8192, 3);
  const want = digestChunk(buf, HASH_KEY_BYTES);
  const h = new ChunkHasher(HASH_KEY_BYTES);
  const reused = Buffer.from(buf);
  h.update(reused.subarray(0, 4096));
  reused.fill(0, 0, 4096); // the receiver's pool hands the buffer out again
  h.update(buf.subarray(4096));
  assert.deepEqual(h.digest(), want);
});

test('another key gives another hash of the same bytes; one flipped bit changes the hash', () => {
  const buf = bytes(65536, 1);
  const a = digestChunk(buf, HASH_KEY_BYTES);
  const other = Buffer.from(HASH_KEY_BYTES);
  other[31] ^= 1;
  assert.notDeepEqual(digestChunk(buf, other).hash, a.hash);
  for (const at of [0, 4095, 65535]) {
    const flipped = Buffer.from(buf);
    flipped[at] ^= 0x80;
    assert.notDeepEqual(digestChunk(flipped, HASH_KEY_BYTES).hash, a.hash, `bit at ${at}`);
  }
});

test('a key must be 32 bytes; a fresh key is 64 hex digits, never the same twice', () => {
  assert.throws(() => hashSecret(Buffer.alloc(16)), /hash key of 16 bytes \(expected 32\)/);
  assert.ok(hashSecret(HASH_KEY_BYTES).equals(secretOf(HASH_KEY_BYTES)));
  const k1 = newHashKey();
  assert.match(k1, /^[0-9a-f]{64}$/);
  assert.notEqual(newHashKey(), k1);
});

test('the empty chunk has the digest of no bytes', () => {
  assert.deepEqual(new ChunkHasher(HASH_KEY_BYTES).digest(), { crc: 0, hash: xxh128Bytes(Buffer.alloc(0), HASH_KEY_BYTES) });
});

test('toBoundary', () => {
  assert.equal(toBoundary(0, 65536), 65536);
  assert.equal(toBoundary(65535, 65536), 1);
  assert.equal(toBoundary(65536, 65536), 65536);
});

test('ChunkListBuilder grows past its estimate, takes records from another entry, checks the count', () => {
  const b = new ChunkListBuilder('f', 65536, 0);
  for (let i = 0; i < 5; i++) b.push(digestChunk(Buffer.from([i]), HASH_KEY_BYTES));
  const f = b.finish(4 * 65536 + 1);
  assert.equal(f.crcs.length, 5);
  assert.equal(f.crcs[3], crc32c(Buffer.from([3])) >>> 0);
  const c = new ChunkListBuilder('g', 65536, 65536);
  c.pushFrom(f, 4);
  const g = c.finish(10);
  assert.equal(g.crcs[0], f.crcs[4]);
  assert.ok(g.hashes.equals(f.hashes.subarray(4 * HASH_BYTES)));
  assert.throws(() => new ChunkListBuilder('h', 65536).finish(1), /"h": 0 chunks digested for a size of 1 bytes \(expected 1\)/);
});

test('PieceCrcs: each piece\'s CRC32C from the whole\'s, at any cuts; a hasher fed them digests as one computing them', () => {
  const buf = bytes(5000, 11);
  const key = HASH_KEY_BYTES;
  const p = new PieceCrcs();
  for (const cuts of [[5000], [1, 4999], [2500, 2500], [100, 200, 4700], [4999, 1], [1000, 1000, 1000, 1000, 1000]]) {
    p.of(buf.length, crc32c(buf) >>> 0);
    const given = new ChunkHasher(key);
    const computed = new ChunkHasher(key);
    let at = 0;
    for (const n of cuts) {
      const piece = buf.subarray(at, at + n);
      const c = p.next(piece);
      assert.equal(c, crc32c(piece) >>> 0, `cuts ${cuts} at ${at}`);
      given.update(piece, c);
      computed.update(piece);
      at += n;
    }
    assert.deepEqual(given.digest(), computed.digest(), `cuts ${cuts}`);
  }
  p.of(10, 0);
  assert.throws(() => p.next(Buffer.alloc(11)), RangeError);
});
