/**
 * A decoded chunk map keeps its files in the map's bytes
 * (src/codec/chunkmap/packed-files.ts): lookups by key (raw-byte paths, colliding
 * slots, absent keys), iteration in file order, `set` over a packed entry,
 * refusal of a file count the bytes cannot hold before anything is sized by
 * it, and memory: decoding 300,000 files adds less than the map's own size
 * (as JS objects per file it added 6-10×).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chunkCount, decodeChunkMap, encodeChunkMap, HASH_BYTES, type ChunkMap, type ChunkMapFile } from '../../../../src/codec/chunkmap/chunk-map';
import { PackedChunkFiles } from '../../../../src/codec/chunkmap/packed-files';
import { pathFromBytes } from '../../../../src/codec/path-bytes';
import { HASH_KEY } from '../../../support/chunk-fixtures';
import { fnvCollidingPaths } from '../../../support/colliding-paths';

const C = 64 * 1024;
const header = { systemIdentifier: '7300000000000000001', timeline: 1, startLsn: '0/2000028', serverVersion: 150018, hashKey: HASH_KEY };

function file(path: string, size: number, seed: number): ChunkMapFile {
  const n = chunkCount(size, C);
  const crcs = new Uint32Array(n).map((_, k) => (seed * 7919 + k * 104729) >>> 0);
  const hashes = Buffer.alloc(n * HASH_BYTES, seed & 0xff);
  return { path, size, crcs, hashes };
}

function mapOf(files: ChunkMapFile[]): ChunkMap {
  return { chunkSize: C, header, files: new Map(files.map((f) => [f.path, f])) };
}

test('every key is found with its size, CRCs and hashes; absent keys are not; iteration keeps the file order', () => {
  const raw = pathFromBytes(Buffer.from([0x62, 0xff, 0x2e]));
  const files = [file('PG_VERSION', 3, 1), file(raw, 10, 2)];
  // Enough files that slots collide and probe.
  for (let i = 0; i < 5000; i++) files.push(file(`base/5/${16384 + i}`, (i % 7) * C + (i % 3), i));
  const d = decodeChunkMap(encodeChunkMap(mapOf(files)));
  assert.ok(d.files instanceof PackedChunkFiles);
  assert.equal(d.files.size, files.length);
  for (const f of files) {
    const g: ChunkMapFile = d.files.get(f.path)!;
    assert.equal(g.size, f.size, f.path);
    assert.deepEqual([...g.crcs], [...f.crcs], f.path);
    assert.ok(g.hashes.equals(f.hashes), f.path);
    assert.ok(d.files.has(f.path));
  }
  for (const k of ['base/5/1', 'base/5/16384x', 'PG_VERSIO', pathFromBytes(Buffer.from([0x62, 0xfe, 0x2e]))]) {
    assert.equal(d.files.get(k), undefined, k);
    assert.ok(!d.files.has(k), k);
  }
  assert.deepEqual([...d.files.keys()], files.map((f) => f.path));
  assert.deepEqual([...d.files].map(([k, f]) => [k, f.size]), files.map((f) => [f.path, f.size]));
});

test('set replaces or adds an entry; the replaced packed one is gone from lookups, size and iteration', () => {
  const d = decodeChunkMap(encodeChunkMap(mapOf([file('a', 5, 1), file('b', C + 1, 2)])));
  d.files.set('a', file('a', 2 * C, 9));
  d.files.set('c', file('c', 1, 3));
  d.files.set('c', file('c', 2, 4));
  assert.equal(d.files.size, 3);
  assert.equal(d.files.get('a')!.size, 2 * C);
  assert.equal(d.files.get('c')!.size, 2);
  assert.deepEqual([...d.files.keys()].sort(), ['a', 'b', 'c']);
  // The edited map encodes and decodes like any other.
  const again = decodeChunkMap(encodeChunkMap(d));
  assert.deepEqual([...again.files.values()].map((f) => [f.path, f.size]).sort(), [['a', 2 * C], ['b', C + 1], ['c', 2]]);
});

test('a file count the bytes cannot hold is refused before anything is sized by it', () => {
  const body = Buffer.from(encodeChunkMap(mapOf([file('a', 5, 1)])).subarray(0, -32));
  const countAt = 24 + body.readUInt32LE(20);
  body.writeUInt32LE(0xffffffff, countAt);
  const sealed = Buffer.concat([body, createHash('sha256').update(body).digest()]);
  assert.throws(() => decodeChunkMap(sealed, 'm'), /^PgbbError: chunk map "m": claims 4294967295 files, more than its \d+ bytes can hold$/);
});

test('decoding 300,000 files adds less memory than the map itself', (t) => {
  const files: ChunkMapFile[] = [];
  for (let i = 0; i < 300_000; i++) files.push(file(`base/16384/${100000 + i}`, 8192, i));
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-packed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const mapFile = join(dir, 'map');
  writeFileSync(mapFile, encodeChunkMap(mapOf(files)));
  // In a fresh process: this one's heap already grew building the map, and would hide the decode's growth.
  const script = `
    const { decodeChunkMap } = require(${JSON.stringify(require.resolve('../../../../src/codec/chunkmap/chunk-map'))});
    const buf = require('node:fs').readFileSync(${JSON.stringify(mapFile)});
    const before = process.memoryUsage().rss;
    const m = decodeChunkMap(buf);
    console.log(JSON.stringify({ files: m.files.size, bytes: buf.length, added: process.memoryUsage().rss - before }));`;
  const r = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
  assert.equal(r.files, 300_000);
  assert.ok(r.added < r.bytes, `decoding a ${r.bytes}-byte map added ${r.added} bytes of RSS`);
});

test('paths built to collide under FNV-1a (a crafted map) are decoded in linear time, not quadratic', () => {
  // Paths that share one 32-bit FNV-1a hash (test/support/colliding-paths.ts).
  const paths = fnvCollidingPaths(15);
  const encoded = encodeChunkMap(mapOf(paths.map((p, i) => file(p, 0, i))));
  const t0 = process.hrtime.bigint();
  const d = decodeChunkMap(encoded);
  for (let i = 0; i < paths.length; i += 97) assert.equal(d.files.get(paths[i])?.path, paths[i]);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(ms < 3000, `32,768 colliding paths took ${Math.round(ms)} ms`);
});
