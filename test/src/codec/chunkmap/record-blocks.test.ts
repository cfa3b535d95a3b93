/**
 * A chunk map's record blocks (src/codec/chunkmap/record-blocks.ts), with an
 * in-memory spill: records land in order across blocks, blocks past
 * keepBlocks leave memory and come back byte for byte, the spilled block's
 * memory takes the next records (no new block), a record larger than a
 * block gets one of its own, and the sequential reader reuses one buffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordBlocks } from '../../../../src/codec/chunkmap/record-blocks';
import type { RecordSpill } from '../../../../src/codec/spill';
import { allocationsOf } from '../../../support/allocations';

function memorySpill(): RecordSpill & { blocks: number } {
  const parts: Buffer[] = [];
  let at = 0;
  return {
    blocks: 0,
    append(block) {
      parts.push(Buffer.from(block));
      this.blocks++;
      const offset = at;
      at += block.length;
      return offset;
    },
    read(offset, length, into) {
      const all = Buffer.concat(parts);
      const out = into ?? Buffer.allocUnsafe(length);
      all.copy(out, 0, offset, offset + length);
      return out;
    },
  };
}

/** Appends `count` records of `len` bytes, record r filled with r & 0xff; returns each one's offset in its block. */
function fill(b: RecordBlocks, count: number, len: (r: number) => number): number[] {
  const at: number[] = [];
  for (let r = 0; r < count; r++) {
    const n = len(r);
    const block = b.tail(n, r);
    block.fill(r & 0xff, b.used, b.used + n);
    at.push(b.used);
    b.used += n;
  }
  return at;
}

test('blocks past keepBlocks spill and read back; the spilled block takes the next records', () => {
  const spill = memorySpill();
  const b = new RecordBlocks({ spill, blockBytes: 1024, keepBlocks: 1 });
  let at: number[] = [];
  // 100-byte records: 10 a block; 60 records fill six blocks, four of them spilled.
  const made = allocationsOf(1024, () => (at = fill(b, 60, () => 100)));
  assert.equal(made, 2, 'blocks allocated: the kept one and one reused through every spill');
  assert.equal(spill.blocks, 4);
  for (let r = 0; r < 60; r++) {
    const block = b.blockAt(r);
    assert.ok(block.subarray(at[r]!, at[r]! + 100).every((v) => v === (r & 0xff)), `record ${r}`);
  }
});

test('a record larger than a block gets a block of its own', () => {
  const spill = memorySpill();
  const b = new RecordBlocks({ spill, blockBytes: 1024, keepBlocks: 0 });
  const at = fill(b, 5, (r) => (r === 2 ? 3000 : 300));
  for (let r = 0; r < 5; r++) {
    const n = r === 2 ? 3000 : 300;
    assert.ok(b.blockAt(r).subarray(at[r]!, at[r]! + n).every((v) => v === r), `record ${r}`);
  }
});

test('the sequential reader reads each spilled block into one reused buffer', () => {
  const spill = memorySpill();
  const b = new RecordBlocks({ spill, blockBytes: 1024, keepBlocks: 1 });
  const at = fill(b, 50, () => 100);
  const read = b.sequential();
  // Records 10–39 lie in three spilled blocks (1,000 bytes used of each): one buffer is allocated for all three.
  const made = allocationsOf(1000, () => {
    for (let r = 10; r < 40; r++) {
      const block = read(r);
      assert.ok(block.subarray(at[r]!, at[r]! + 100).every((v) => v === r));
    }
  });
  assert.equal(made, 1);
});

test('a decoded map is one block that is not appended to', () => {
  const buf = Buffer.from('records');
  const b = RecordBlocks.whole(buf);
  assert.equal(b.blockAt(0), buf);
  assert.equal(b.used, -1);
  const block = b.tail(10, 1);
  assert.notEqual(block, buf);
  assert.equal(b.used, 0);
});
