/**
 * ChunkHasher gives the same digest however the bytes are split; digests
 * reset; ChunkListBuilder grows past its estimate, copies records from
 * another entry, and refuses a record count that does not fit the size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { calculate as crc32c } from 'fast-crc32c';
import { ChunkHasher, ChunkListBuilder, digestChunk, toBoundary } from '../../../../src/codec/chunkmap/chunk-hasher';
import { HASH_BYTES } from '../../../../src/codec/chunkmap/chunk-map';
import { bytes } from '../../../support/chunk-fixtures';

test('digest = CRC32C and the first 16 bytes of SHA-256, whatever the split', () => {
  const buf = bytes(1000, 7);
  const want = { crc: crc32c(buf) >>> 0, hash: createHash('sha256').update(buf).digest().subarray(0, HASH_BYTES) };
  assert.deepEqual(digestChunk(buf), want);
  const h = new ChunkHasher();
  for (let i = 0; i <= buf.length; i += 37) {
    h.update(buf.subarray(0, i));
    h.update(buf.subarray(i));
    assert.equal(h.length, buf.length);
    assert.deepEqual(h.digest(), want, `split at ${i}`);
    assert.equal(h.length, 0);
  }
});

test('the empty chunk has the digest of no bytes', () => {
  assert.deepEqual(new ChunkHasher().digest(), { crc: 0, hash: createHash('sha256').digest().subarray(0, HASH_BYTES) });
});

test('toBoundary', () => {
  assert.equal(toBoundary(0, 65536), 65536);
  assert.equal(toBoundary(65535, 65536), 1);
  assert.equal(toBoundary(65536, 65536), 65536);
});

test('ChunkListBuilder grows past its estimate, takes records from another entry, checks the count', () => {
  const b = new ChunkListBuilder('f', 65536, 0);
  for (let i = 0; i < 5; i++) b.push(digestChunk(Buffer.from([i])));
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
