/**
 * crc32cCombine against CRC32C computed over the concatenation, at every
 * split of a buffer, with empty parts, and across multi-megabyte lengths;
 * crc32cOfChunks against the CRC of the whole file for several chunk sizes;
 * crc32cTail (the tail's CRC from the whole's and the head's) at every split;
 * the table-driven combine against the bitwise products crc32cOfChunks uses,
 * at lengths far past what a test can checksum.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calculate as crc32c } from 'fast-crc32c';
import { crc32cCombine, crc32cOfChunks, crc32cTail } from '../../../../src/codec/chunkmap/crc32c-combine';
import { bytes } from '../../../support/chunk-fixtures';

test('combine(crc(A), crc(B), |B|) equals crc(A‖B) at every split point', () => {
  const buf = bytes(777, 3);
  const whole = crc32c(buf) >>> 0;
  for (let i = 0; i <= buf.length; i++) {
    const a = crc32c(buf.subarray(0, i)) >>> 0;
    const b = crc32c(buf.subarray(i)) >>> 0;
    assert.equal(crc32cCombine(a, b, buf.length - i), whole, `split at ${i}`);
  }
});

test('known values: CRC32C("123456789") = e3069283 from "1234" and "56789"', () => {
  const a = crc32c(Buffer.from('1234')) >>> 0;
  const b = crc32c(Buffer.from('56789')) >>> 0;
  assert.equal(crc32cCombine(a, b, 5), 0xe3069283);
});

test('long second parts (several MiB) combine correctly', () => {
  const a = bytes(1000, 1);
  const b = bytes(5 * 1024 * 1024 + 3, 2);
  assert.equal(crc32cCombine(crc32c(a) >>> 0, crc32c(b) >>> 0, b.length), crc32c(Buffer.concat([a, b])) >>> 0);
});

test('crc32cOfChunks rebuilds the whole-file CRC32C from chunk CRCs', () => {
  for (const [size, chunk] of [[0, 65536], [1, 65536], [65536, 65536], [300_000, 65536], [3 * 131072, 131072], [1_000_001, 262144]]) {
    const buf = bytes(size, size);
    const crcs: number[] = [];
    for (let off = 0; off < size; off += chunk) crcs.push(crc32c(buf.subarray(off, off + chunk)) >>> 0);
    assert.equal(crc32cOfChunks(crcs, size, chunk), size ? crc32c(buf) >>> 0 : 0, `size ${size} chunk ${chunk}`);
  }
});

test('a negative or fractional length is refused', () => {
  assert.throws(() => crc32cCombine(1, 2, -1), RangeError);
  assert.throws(() => crc32cCombine(1, 2, 1.5), RangeError);
});

test('crc32cTail(crc(A‖B), crc(A), |B|) equals crc(B) at every split point', () => {
  const buf = bytes(777, 5);
  const whole = crc32c(buf) >>> 0;
  for (let i = 0; i <= buf.length; i++) {
    assert.equal(crc32cTail(whole, crc32c(buf.subarray(0, i)) >>> 0, buf.length - i), crc32c(buf.subarray(i)) >>> 0, `split at ${i}`);
  }
});

test('combine agrees with crc32cOfChunks at lengths up to 2^52 (tables against bitwise products)', () => {
  const crcs = [0xdeadbeef, 0x12345678, 0xffffffff, 0x80000001, 0x00000001];
  for (const chunk of [1, 8192, 1 << 20, 2 ** 30 + 7, 2 ** 40 + 12345, 2 ** 50 - 1]) {
    const size = chunk * (crcs.length - 1) + 3;
    let crc = crcs[0];
    for (let k = 1; k < crcs.length; k++) crc = crc32cCombine(crc, crcs[k], Math.min(chunk, size - k * chunk));
    assert.equal(crc, crc32cOfChunks(crcs, size, chunk), `chunk ${chunk}`);
  }
});
