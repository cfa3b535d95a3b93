/**
 * One LZ4 block (src/codec/lz4-block.ts), hand-assembled: literals and
 * matches decode, an overlapping match repeats its pattern, a match may
 * reach into the window before `start`, and each lie in a block (offset 0,
 * before the window, runs past the block or the output) is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockError, decodeBlock } from '../../../src/codec/lz4-block';

const out = (n: number) => Buffer.alloc(n, 0xee);

test('literals then an overlapping match, then trailing literals', () => {
  // token 0x3? : 3 literals "abc", match length 4 + 0x?; offset 3.
  const src = Buffer.from([0x35, 0x61, 0x62, 0x63, 0x03, 0x00, 0x20, 0x79, 0x7a]);
  const dst = out(64);
  const end = decodeBlock(src, dst, 0);
  assert.equal(dst.subarray(0, end).toString(), 'abc' + 'abcabcabc' + 'yz');
});

test('a long overlapping match (past 32 bytes) repeats a 9-byte pattern', () => {
  const pattern = Buffer.from('123456789');
  // 9 literals, match length 15 + 30 + 4 = 49 at offset 9, then no literals... a block ends on literals: one more.
  const src = Buffer.concat([Buffer.from([0x9f]), pattern, Buffer.from([9, 0, 30, 0x10, 0x21])]);
  const dst = out(128);
  const end = decodeBlock(src, dst, 0);
  const want = Buffer.concat([pattern, Buffer.from('123456789'.repeat(6).slice(0, 49)), Buffer.from('!')]);
  assert.equal(dst.subarray(0, end).toString(), want.toString());
});

test('a match reaches back into the window before start', () => {
  const dst = out(32);
  dst.write('WXYZ', 0);
  // no literals, match of 4 at offset 4 (the window), then one literal.
  const end = decodeBlock(Buffer.from([0x00, 0x04, 0x00, 0x10, 0x2e]), dst, 4);
  assert.equal(dst.subarray(4, end).toString(), 'WXYZ.');
});

test('each lie is refused with a BlockError', () => {
  const cases: Array<[string, number[], RegExp]> = [
    ['offset 0', [0x10, 0x61, 0x00, 0x00, 0x00], /match offset 0/],
    ['before the window', [0x10, 0x61, 0x05, 0x00, 0x00], /reaches before the window/],
    ['literals past the block', [0x50, 0x61], /literals run past the block/],
    ['offset cut short', [0x10, 0x61, 0x01], /match offset cut short/],
    ['literal length past the block', [0xf0], /literal length runs past the block/],
  ];
  for (const [what, bytes, msg] of cases) {
    assert.throws(() => decodeBlock(Buffer.from(bytes), out(64), 0), (e: unknown) => e instanceof BlockError && msg.test((e as Error).message), what);
  }
  // Output bounded by dst: 3 literals into 2 bytes.
  assert.throws(() => decodeBlock(Buffer.from([0x30, 1, 2, 3]), out(2), 0), /maximum block size/);
  // A match longer than what is left of dst.
  assert.throws(() => decodeBlock(Buffer.from([0x1f, 0x61, 0x01, 0x00, 0x40, 0x00]), out(16), 0), /match runs past the maximum block size/);
});
