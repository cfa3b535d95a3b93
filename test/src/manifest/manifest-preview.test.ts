/**
 * previewManifest: what restore and verify read of a directory's manifest
 * before its files — the algorithm, the listed total, the sizes — from
 * pieces split anywhere; null for a manifest that does not parse or none.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildManifest } from '../../../src/codec/manifest';
import { previewManifest } from '../../../src/manifest/manifest-preview';

const walRanges = [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }];
const file = (path: string, size: number, alg?: 'SHA256') => ({
  path, size, lastModified: '2025-03-01 10:00:00 GMT', ...(alg ? { checksumAlgorithm: alg, checksum: 'ab'.repeat(32) } : {}),
});
const files = [file('PG_VERSION', 3), file('base/5/1', 8192, 'SHA256'), file('global/pg_control', 8192, 'SHA256')];
const MANIFEST = buildManifest({ version: 2, systemIdentifier: '7710713033429169987', files, walRanges });

async function* pieces(b: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

test('the first algorithm named, the listed total and each size, whatever the piece size; nothing per file without sizes', async () => {
  for (const size of [1, 7, 100, MANIFEST.length]) {
    const p = (await previewManifest(pieces(MANIFEST, size), { sizes: true }))!;
    assert.equal(p.algorithm, 'SHA256', `pieces of ${size}`);
    assert.equal(p.listedBytes, 3 + 8192 + 8192);
    assert.equal(p.sizes!.size(p.sizes!.find('base/5/1')), 8192);
    assert.equal(p.sizes!.size(p.sizes!.find('PG_VERSION')), 3);
    assert.equal(p.sizes!.find('base/5/2'), -1);
  }
  const bare = (await previewManifest(pieces(MANIFEST, 64)))!;
  assert.equal(bare.sizes, null);
  assert.equal(bare.listedBytes, 3 + 8192 + 8192);
});

test('no checksums at all: NONE; no pieces, a broken manifest or (with sizes) a duplicate path: null', async () => {
  const none = buildManifest({ version: 2, systemIdentifier: '1', files: [file('a', 1)], walRanges });
  assert.equal((await previewManifest(pieces(none, 10)))!.algorithm, 'NONE');
  assert.equal(await previewManifest(pieces(Buffer.alloc(0), 1)), null);
  const cut = MANIFEST.subarray(0, MANIFEST.length - 20);
  assert.equal(await previewManifest(pieces(cut, 50)), null);
  const flipped = Buffer.from(MANIFEST);
  flipped[flipped.indexOf('8192')] = 0x39; // a size changed: the manifest checksum no longer matches
  assert.equal(await previewManifest(pieces(flipped, 50), { sizes: true }), null);
  const dup = buildManifest({ version: 2, systemIdentifier: '1', files: [file('a', 1), file('a', 2)], walRanges });
  assert.equal(await previewManifest(pieces(dup, 10), { sizes: true }), null);
});

test('an error reading the pieces is not taken for a broken manifest', async () => {
  async function* failing(): AsyncGenerator<Buffer> {
    yield MANIFEST.subarray(0, 10);
    throw new Error('disk gone');
  }
  await assert.rejects(previewManifest(failing()), /disk gone/);
});
