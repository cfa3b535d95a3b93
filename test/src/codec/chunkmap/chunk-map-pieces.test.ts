/**
 * The chunk map encoded in pieces (encodeChunkMapPieces): the pieces are at
 * most the piece size, fresh buffers (none overwritten by a later one), add
 * up to encodedChunkMapSize, and concatenate to the one-buffer encoding —
 * for a map of plain objects, a packed map being built (records larger than
 * its blocks included, a replaced file skipped) and a decoded map that was
 * then edited. A packed map being built answers lookups as a Map would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHUNK_MAP_PIECE, decodeChunkMap, encodeChunkMap, encodeChunkMapPieces, encodedChunkMapSize, HASH_BYTES, type ChunkMap, type ChunkMapFile,
} from '../../../../src/codec/chunkmap/chunk-map';
import { chunkFile } from '../../../support/chunk-fixtures';
import { PackedChunkFiles } from '../../../../src/codec/chunkmap/packed-files';
import { pathFromBytes } from '../../../../src/codec/path-bytes';
import { HASH_KEY } from '../../../support/chunk-fixtures';

const C = 64 * 1024;
const header = { systemIdentifier: '7300000000000000001', timeline: 1, startLsn: '0/2000028', serverVersion: 150018, tablespaces: { 16400: '/ts' }, hashKey: HASH_KEY };

function file(path: string, size: number, seed: number): ChunkMapFile {
  return chunkFile(path, size, seed, C);
}

function sampleFiles(): ChunkMapFile[] {
  const files = [file('PG_VERSION', 3, 1), file(pathFromBytes(Buffer.from([0x62, 0xff])), 10, 2), file('base/5/empty', 0, 3)];
  // 1 GiB at 64 KiB chunks: a 320 KiB record, larger than a piece and than a packed block.
  files.push(file('base/5/16384', 1024 * 1024 * 1024, 4));
  for (let i = 0; i < 3000; i++) files.push(file(`base/5/${20000 + i}`, (i % 5) * C + (i % 2), i));
  return files;
}

function check(map: ChunkMap, pieceSize?: number): Buffer {
  const pieces = [...encodeChunkMapPieces(map, pieceSize)];
  const limit = pieceSize ?? CHUNK_MAP_PIECE;
  assert.ok(pieces.length > 2, `${pieces.length} pieces`);
  for (const p of pieces) assert.ok(p.length > 0 && p.length <= limit, `piece of ${p.length} bytes`);
  const whole = Buffer.concat(pieces);
  assert.equal(whole.length, encodedChunkMapSize(map));
  assert.ok(whole.equals(encodeChunkMap(map)), 'pieces concatenate to the one-buffer encoding');
  return whole;
}

test('a map of plain objects: pieces within the limit, sized ahead, equal to the whole encoding', () => {
  const files = sampleFiles();
  const map: ChunkMap = { chunkSize: C, header, files: new Map(files.map((f) => [f.path, f])) };
  for (const size of [4096, 65536, 1000]) check(map, size);
  const d = decodeChunkMap(check(map));
  assert.deepEqual([...d.files.keys()], files.map((f) => f.path));
  assert.deepEqual(d.header, header);
});

test('a packed map being built encodes to the same bytes as the plain one; a replaced file is written once, as replaced', () => {
  const files = sampleFiles();
  const plain: ChunkMap = { chunkSize: C, header, files: new Map() };
  const packed: ChunkMap = { chunkSize: C, header, files: new PackedChunkFiles(C, HASH_BYTES) };
  for (const f of files) {
    plain.files.set(f.path, f);
    packed.files.set(f.path, f);
  }
  assert.ok(check(packed).equals(check(plain)));
  // Lookups as a Map's, in insertion order.
  assert.equal(packed.files.size, files.length);
  for (const f of files.slice(0, 50)) {
    const g = packed.files.get(f.path)!;
    assert.equal(g.size, f.size);
    assert.deepEqual([...g.crcs], [...f.crcs]);
    assert.ok(g.hashes.equals(f.hashes));
  }
  assert.ok(!packed.files.has('base/5/1'));
  assert.deepEqual([...packed.files.keys()], files.map((f) => f.path));
  // The same key again (last wins, as a Map's set): the map holds it once.
  packed.files.set('PG_VERSION', file('PG_VERSION', 2 * C, 9));
  assert.equal(packed.files.size, files.length);
  const d = decodeChunkMap(check(packed));
  assert.equal(d.files.size, files.length);
  assert.equal(d.files.get('PG_VERSION')!.size, 2 * C);
});

test('a decoded map edited with set encodes from its own bytes and the new records', () => {
  const files = sampleFiles();
  const d = decodeChunkMap(encodeChunkMap({ chunkSize: C, header, files: new Map(files.map((f) => [f.path, f])) }));
  d.files.set('base/5/20001', file('base/5/20001', 7 * C, 77));
  d.files.set('base/6/new', file('base/6/new', C + 1, 78));
  const again = decodeChunkMap(check(d));
  assert.equal(again.files.size, files.length + 1);
  assert.equal(again.files.get('base/5/20001')!.size, 7 * C);
  assert.equal(again.files.get('base/6/new')!.crcs[1], file('x', C + 1, 78).crcs[1]);
});

test('a record that does not fit its size is refused when set into a packed map', () => {
  const p = new PackedChunkFiles(C, HASH_BYTES);
  assert.throws(() => p.set('base/5/1', { ...file('base/5/1', C + 1, 1), crcs: new Uint32Array(1) }), /"base\/5\/1" has 1 chunks, its size 65537 needs 2/);
});
