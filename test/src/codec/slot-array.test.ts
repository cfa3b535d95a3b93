/**
 * Open-addressing tables grow in place (src/codec/slot-array.ts): the slot
 * memory of a FileTable and of a chunk map being built stays one buffer
 * through every doubling, so growth leaves no old slot arrays for the
 * collector; lookups stay right across growth, with replaced records.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlotArray } from '../../../src/codec/slot-array';
import { FileTable } from '../../../src/codec/file-table';
import { PackedChunkFiles } from '../../../src/codec/chunkmap/packed-files';
import { HASH_BYTES } from '../../../src/codec/chunkmap/chunk-map';
import { U32Pages } from '../../../src/codec/u32-pages';

/** Typed arrays of more than 4096 elements made by length while fn runs (U32Pages' pages are 4096). */
function bigArraysMade(fn: () => void): number {
  const g = globalThis as unknown as Record<string, unknown>;
  const saved = { Uint32Array: g.Uint32Array, Int32Array: g.Int32Array };
  let n = 0;
  for (const name of ['Uint32Array', 'Int32Array'] as const) {
    g[name] = new Proxy(saved[name] as object, {
      construct(target, args, newTarget) {
        if (typeof args[0] === 'number' && args[0] > 4096) n++;
        return Reflect.construct(target as new (...a: unknown[]) => object, args, newTarget);
      },
    });
  }
  try {
    fn();
  } finally {
    g.Uint32Array = saved.Uint32Array;
    g.Int32Array = saved.Int32Array;
  }
  return n;
}

test('a rebuild keeps the same memory: with no records, all slots are zero', () => {
  const s = new SlotArray(16);
  const mem = s.slots.buffer;
  s.slots.fill(7);
  const grown = s.rebuild(1 << 16, 0, new U32Pages());
  assert.equal(grown.length, 1 << 16);
  assert.equal(grown.buffer, mem, 'the slots moved to a new buffer');
  assert.ok(grown.every((v) => v === 0));
  assert.equal(s.slots, grown);
});

test('a rebuild puts each record in its hash\'s run, leaves out the absent ones, and nothing else', () => {
  const s = new SlotArray(16);
  const hashes = new U32Pages();
  const n = 3000;
  for (let r = 0; r < n; r++) hashes.set(r, r % 7 === 0 ? 5 : Math.imul(r, 0x9e3779b1) >>> 0); // every 7th collides
  const absent = new Uint8Array(n);
  for (let r = 0; r < n; r += 10) absent[r] = 1;
  const slots = s.rebuild(8192, n, hashes, absent);
  const mask = slots.length - 1;
  for (let r = 0; r < n; r++) {
    // Linear probing: the record is in the run from its hash's slot to the first empty one.
    let at = hashes.get(r) & mask;
    while (slots[at] !== 0 && slots[at] !== r + 1) at = (at + 1) & mask;
    assert.equal(slots[at] === r + 1, !absent[r], `record ${r}`);
  }
  assert.equal(slots.filter((v) => v !== 0).length, n - n / 10);
});

test('a FileTable of 50,000 paths allocates no slot array as it grows, and finds every path', () => {
  const t = new FileTable(0);
  const n = 50_000;
  const made = bigArraysMade(() => {
    for (let i = 0; i < n; i++) t.add(`base/${i % 89}/${i}`);
  });
  assert.equal(made, 0);
  for (let i = 0; i < n; i += 3) assert.equal(t.find(`base/${i % 89}/${i}`), i);
  assert.equal(t.find('base/1/absent'), -1);
});

test('a chunk map of 50,000 files (a tenth set twice) allocates no slot array as it grows; lookups see the last set', () => {
  const p = new PackedChunkFiles(1 << 20, HASH_BYTES);
  const one = (seed: number) => ({ size: 100, crcs: new Uint32Array([seed]), hashes: Buffer.alloc(HASH_BYTES, seed & 0xff) });
  const n = 50_000;
  const made = bigArraysMade(() => {
    for (let i = 0; i < n; i++) {
      p.set(`base/5/${i}`, { path: `base/5/${i}`, ...one(i) });
      if (i % 10 === 0) p.set(`base/5/${i / 10}`, { path: `base/5/${i / 10}`, ...one(i + 1) });
    }
  });
  assert.equal(made, 0);
  assert.equal(p.size, n);
  for (let i = 0; i < n; i += 7) {
    const f = p.get(`base/5/${i}`);
    assert.ok(f, `base/5/${i} is missing`);
    const replaced = i < n / 10;
    assert.equal(f.crcs[0], replaced ? i * 10 + 1 : i);
  }
  assert.equal(p.get('base/5/absent'), undefined);
});
