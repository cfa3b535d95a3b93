/**
 * Chunk map format 2 (keyed XXH3-128) against format 1 (SHA-256 prefixes):
 * a format 1 map decodes, marked 'sha256', so its header still counts, but
 * is never written again; a format 2 map must carry a valid hash key, and a
 * well-sealed one that lies about it is refused. Maps are written as 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkSha256Known, decodeChunkMap, encodeChunkMap, hashKeyOf, HASH_BYTES, type ChunkMap } from '../../../../src/codec/chunkmap/chunk-map';
import { HASH_KEY, rewriteMap as rewrite } from '../../../support/chunk-fixtures';

const C = 64 * 1024;

function sample(): ChunkMap {
  const hashes = Buffer.alloc(2 * HASH_BYTES, 0x11);
  return {
    chunkSize: C,
    header: { systemIdentifier: '7300000000000000001', timeline: 1, startLsn: '0/2000028', serverVersion: 150018, tablespaces: { 16400: '/ts' }, hashKey: HASH_KEY },
    files: new Map([['base/5/1', { path: 'base/5/1', size: C + 1, crcs: new Uint32Array([1, 2]), hashes }]]),
  };
}

test('maps are written as format 2 with their hash key; they decode as XXH3-128, SHA-256 not known', () => {
  const buf = encodeChunkMap(sample());
  assert.equal(buf.readUInt32LE(8), 2);
  const d = decodeChunkMap(buf);
  assert.equal(d.header.hashKey, HASH_KEY);
  assert.equal(d.hashAlgorithm, undefined);
  assert.equal(chunkSha256Known(d), false);
  assert.ok(hashKeyOf(d.header.hashKey).equals(Buffer.from(HASH_KEY, 'hex')));
});

test('a format 1 map (an older pgbb\'s SHA-256 prefixes) decodes for its header, is marked, and is never written again', () => {
  const { hashKey: _, ...v1Header } = sample().header;
  const d = decodeChunkMap(rewrite(encodeChunkMap(sample()), 1, v1Header));
  assert.equal(d.hashAlgorithm, 'sha256');
  assert.equal(chunkSha256Known(d), true);
  assert.deepEqual(d.header.tablespaces, { 16400: '/ts' });
  assert.deepEqual([...d.files.get('base/5/1')!.crcs], [1, 2]);
  assert.throws(() => encodeChunkMap(d), /cannot encode a chunk map of SHA-256 hashes \(format 1\)/);
});

test('a sealed format 2 map without a valid hash key is refused', () => {
  const good = encodeChunkMap(sample());
  const header = sample().header;
  for (const hashKey of [undefined, '', 'a5'.repeat(31), 'A5'.repeat(32), 'zz'.repeat(32), 'a5'.repeat(33), 42, ['a5'.repeat(32)], { x: 1 }, null]) {
    assert.throws(() => decodeChunkMap(rewrite(good, 2, { ...header, hashKey })), /header lacks a valid hash key/, JSON.stringify(hashKey));
  }
});

test('encode refuses a map without a hash key; hashKeyOf checks the key', () => {
  const m = sample();
  delete m.header.hashKey;
  assert.throws(() => encodeChunkMap(m), /chunk map header has no valid hash key/);
  assert.throws(() => hashKeyOf('a5'), /no valid hash key/);
});
