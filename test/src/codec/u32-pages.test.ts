/**
 * U32Pages (src/codec/u32-pages.ts): elements past a page boundary and past
 * a given base array, unwritten ones zero, the base kept rather than copied.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { U32Pages } from '../../../src/codec/u32-pages';

test('values are read back across pages and past the base; unwritten ones are 0; the base is the caller\'s', () => {
  const base = new Uint32Array([7, 8, 9]);
  const a = new U32Pages(base);
  assert.equal(a.get(1), 8);
  a.set(1, 80);
  assert.equal(base[1], 80, 'written in place');
  for (let i = 3; i < 20_000; i += 7) a.set(i, i * 3 + 1);
  for (let i = 3; i < 20_000; i++) assert.equal(a.get(i), (i - 3) % 7 === 0 ? (i * 3 + 1) >>> 0 : 0, `element ${i}`);
  assert.equal(a.get(1e9), 0);
  assert.equal(a.footprint, 12 + 5 * 4096 * 4);
  a.set(4, 0xffffffff);
  assert.equal(a.get(4), 0xffffffff);
});
