/**
 * A packed chunk map being built with a spill (packed-files.ts): full blocks
 * past keepBlocks leave memory, and the map still encodes to the same bytes
 * as one kept whole, answers lookups (a spilled record included, a replaced
 * one hidden), iterates in order, and keeps handed-out views valid while
 * other spilled blocks are read. The real spill is src/io/scratch-file.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeChunkMap, encodeChunkMapPieces, HASH_BYTES, type ChunkMap, type ChunkMapFile } from '../../../../src/codec/chunkmap/chunk-map';
import { chunkFile, HASH_KEY } from '../../../support/chunk-fixtures';
import { PackedChunkFiles, type RecordSpill } from '../../../../src/codec/chunkmap/packed-files';
import { ScratchFile } from '../../../../src/io/scratch-file';

const C = 64 * 1024;
const header = { systemIdentifier: '7300000000000000001', timeline: 1, startLsn: '0/2000028', serverVersion: 150018, hashKey: HASH_KEY };

function file(path: string, size: number, seed: number): ChunkMapFile {
  return chunkFile(path, size, seed, C);
}

/** Counts what goes through a spill. */
function counted(inner: RecordSpill): RecordSpill & { appended: number; reads: number; targets: Set<ArrayBufferLike | null> } {
  const s = {
    appended: 0,
    reads: 0,
    /** The buffers reads went into (null: a new one asked of the spill). */
    targets: new Set<ArrayBufferLike | null>(),
    append: (b: Uint8Array) => ((s.appended += b.length), inner.append(b)),
    read: (at: number, n: number, into?: Buffer) => (s.reads++, s.targets.add(into ? into.buffer : null), inner.read(at, n, into)),
  };
  return s;
}

function files(): ChunkMapFile[] {
  const out: ChunkMapFile[] = [];
  for (let i = 0; i < 5000; i++) out.push(file(`base/5/${20000 + i}`, (i % 3) * C + (i % 2), i));
  // 64 MiB: a record larger than a block, which then gets a block of its own.
  out.splice(2500, 0, file('base/5/big', 64 * 1024 * 1024, 9));
  return out;
}

/** The same files in a map kept whole and in one that spills past two 4 KiB blocks. */
function twoMaps(spill: RecordSpill, all: ChunkMapFile[]): { whole: ChunkMap; packed: PackedChunkFiles; spilled: ChunkMap } {
  const whole: ChunkMap = { chunkSize: C, header, files: new PackedChunkFiles(C, HASH_BYTES) };
  const packed = new PackedChunkFiles(C, HASH_BYTES, { spill, blockBytes: 4096, keepBlocks: 2 });
  const spilled: ChunkMap = { chunkSize: C, header, files: packed };
  for (const f of all) {
    whole.files.set(f.path, f);
    spilled.files.set(f.path, f);
  }
  return { whole, packed, spilled };
}

test('a spilled map encodes as a whole one, looks up and iterates as one', () => {
  const scratch = new ScratchFile('a test map');
  try {
    const spill = counted(scratch);
    const all = files();
    const { whole, packed, spilled } = twoMaps(spill, all);
    // Every block but the first two and the one being filled has left memory.
    assert.equal(spill.appended, scratch.size);
    const kept = packed.recordBytes - spill.appended;
    assert.ok(kept >= 0 && kept <= 3 * 4096 + 40_000, `${kept} of ${packed.recordBytes} record bytes kept in memory`);
    assert.ok(Buffer.concat([...encodeChunkMapPieces(spilled, 4096)]).equals(encodeChunkMap(whole)));
    assert.deepEqual([...spilled.files.keys()], all.map((f) => f.path));

    // A lookup of a spilled record; views it hands out survive reads of other blocks.
    const early = spilled.files.get('base/5/20100')!;
    const big = spilled.files.get('base/5/big')!;
    const late = spilled.files.get('base/5/24999')!;
    assert.ok(early.hashes.equals(file('x', early.size, 100).hashes));
    assert.ok(big.hashes.equals(file('x', big.size, 9).hashes));
    assert.deepEqual([...late.crcs], [...file('x', late.size, 4999).crcs]);
    assert.ok(!spilled.files.has('base/5/1'));

    // Replacing a spilled record hides it: the map holds the key once, as replaced.
    spilled.files.set('base/5/20100', file('base/5/20100', 5 * C, 77));
    whole.files.set('base/5/20100', file('base/5/20100', 5 * C, 77));
    assert.equal(spilled.files.size, all.length);
    assert.equal(spilled.files.get('base/5/20100')!.size, 5 * C);
    assert.ok(Buffer.concat([...encodeChunkMapPieces(spilled)]).equals(encodeChunkMap(whole)));
  } finally {
    scratch.close();
  }
});

test('lookups read a spilled block only for a matching path, and each block once when encoding', () => {
  const scratch = new ScratchFile('a test map');
  try {
    const spill = counted(scratch);
    const p = new PackedChunkFiles(C, HASH_BYTES, { spill, blockBytes: 4096, keepBlocks: 1 });
    for (let i = 0; i < 3000; i++) p.set(`base/1/${i}`, file(`base/1/${i}`, C, i));
    assert.equal(spill.reads, 0, 'adding distinct paths (table growth included) reads nothing back');
    for (let i = 0; i < 100; i++) assert.ok(!p.has(`base/2/${i}`));
    assert.equal(spill.reads, 0, 'absent paths read nothing back');
    const blocks = Math.ceil(spill.appended / 4096);
    [...encodeChunkMapPieces({ chunkSize: C, header, files: p })];
    assert.ok(spill.reads <= blocks + 1, `${spill.reads} reads for ${blocks} spilled blocks`);
  } finally {
    scratch.close();
  }
});

test('a map whose spill was released fails with a clear error, not wrong bytes', () => {
  const scratch = new ScratchFile('the chunk map');
  const p = new PackedChunkFiles(C, HASH_BYTES, { spill: scratch, blockBytes: 4096, keepBlocks: 0 });
  for (let i = 0; i < 500; i++) p.set(`base/1/${i}`, file(`base/1/${i}`, C, i));
  scratch.close();
  assert.throws(() => p.get('base/1/0'), /temporary file for the chunk map was already released/);
});

test('encoding reads the spilled blocks one after another into one buffer, not a new one each', () => {
  const scratch = new ScratchFile('a test map');
  try {
    const spill = counted(scratch);
    const { whole, spilled } = twoMaps(spill, files());
    spill.targets.clear();
    const before = spill.reads;
    const pieces = [...encodeChunkMapPieces(spilled, 4096)];
    assert.ok(spill.reads - before >= 10, `${spill.reads - before} blocks read back`);
    assert.equal(spill.targets.size, 1, 'every block into the same buffer');
    assert.ok(!spill.targets.has(null));
    assert.ok(Buffer.concat(pieces).equals(encodeChunkMap(whole)), 'the same bytes as a map kept whole');
  } finally {
    scratch.close();
  }
});
