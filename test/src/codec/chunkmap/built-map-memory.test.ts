/**
 * What building and sending a chunk map allocates per file (issue: memory
 * flat in file count). A block that went to the spill takes the next records
 * (packed-files.ts), a file taken out of a spilling map is its own copy, the
 * hasher's digest buffer is reused, and the map member's pieces are carved
 * from the recycled read slabs (src/io/slab-pool.ts) and go back to them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HASH_BYTES } from '../../../../src/codec/chunkmap/chunk-map';
import { PackedChunkFiles } from '../../../../src/codec/chunkmap/packed-files';
import { ChunkHasher } from '../../../../src/codec/chunkmap/chunk-hasher';
import { ScratchFile } from '../../../../src/io/scratch-file';
import { release, SLAB_SIZE } from '../../../../src/io/slab-pool';
import { chunkMapMember, emptyChunkMap } from '../../../../transforms/chunk-map-build';
import { chunkFile } from '../../../support/chunk-fixtures';
import { allocationsOf } from '../../../support/allocations';

const C = 64 * 1024;


test('a spilling map reuses its spilled blocks, and a file taken out of it stays as it was while more records come', () => {
  const spill = new ScratchFile('a test map');
  try {
    const map = new PackedChunkFiles(C, HASH_BYTES, { spill, blockBytes: 4096, keepBlocks: 2 });
    const all = Array.from({ length: 3000 }, (_, i) => chunkFile(`base/5/${30000 + i}`, (i % 3) * C + 1, i, C));
    let early: ReturnType<PackedChunkFiles['get']>;
    const blocks = allocationsOf(4096, () => {
      all.forEach((f, i) => {
        map.set(f.path, f);
        if (i === 3) early = map.get(f.path); // in the last block kept in memory… which is spilled and reused later
      });
    });
    assert.ok(spill.size > 30 * 4096, `${spill.size} bytes spilled`);
    // Two kept, the one that fills, one more: not one per 4 KiB of records (~45 here).
    assert.ok(blocks <= 4, `${blocks} blocks allocated`);
    assert.ok(early!.hashes.equals(all[3]!.hashes), 'a file taken out keeps its own hashes');
    for (const i of [0, 3, 1500, 2999]) {
      const got = map.get(all[i]!.path)!;
      assert.ok(got.hashes.equals(all[i]!.hashes) && got.size === all[i]!.size, `record ${i}`);
    }
  } finally {
    spill.close();
  }
});

test('the hasher gives each digest in one buffer of its own, not a new one per chunk', () => {
  const h = new ChunkHasher(Buffer.alloc(32, 1));
  const made = allocationsOf(HASH_BYTES, () => {
    for (let i = 0; i < 1000; i++) {
      h.update(Buffer.from([i & 0xff]));
      h.digest();
    }
  });
  assert.equal(made, 0);
  h.update(Buffer.from('a'));
  const a = Buffer.from(h.digest().hash);
  h.update(Buffer.from('b'));
  assert.ok(!a.equals(h.digest().hash), 'each digest is its chunk\'s');
});

test('the map member\'s pieces are slab views; written (released), their slabs come back for the next reader', () => {
  const spill = new ScratchFile('a test map');
  try {
    const map = emptyChunkMap(C, undefined, spill);
    for (let i = 0; i < 20_000; i++) map.files.set(`base/5/${i}`, chunkFile(`base/5/${i}`, 1, i, C));
    const slabs = new Set<ArrayBufferLike>();
    let pieces = 0;
    for (const ev of chunkMapMember(map)) {
      if (ev.type !== 'data') continue;
      pieces++;
      assert.equal(ev.chunk.buffer.byteLength, SLAB_SIZE, 'a piece of a slab');
      slabs.add(ev.chunk.buffer);
      release(ev.chunk); // as the write that took it does
    }
    assert.ok(pieces > 8, `${pieces} pieces`);
    // Released as they go, the slabs are taken again: a few, not one per four pieces.
    assert.ok(slabs.size <= 2, `${slabs.size} slabs for ${pieces} pieces`);
  } finally {
    spill.close();
  }
});
