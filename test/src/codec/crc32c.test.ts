/**
 * pgbb's CRC32C (src/codec/crc32c.ts), whichever native library the machine
 * made it choose: the standard check value, running CRCs across any split,
 * views into larger buffers — against a bitwise CRC32C written here from
 * the polynomial (0x82F63B78 reflected), independent of both libraries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { crc32c, crc32cImplementation } from '../../../src/codec/crc32c';

function reference(buf: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test('the check value, and the machine chose one of the two libraries', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(reference(Buffer.from('123456789')), 0xe3069283);
  assert.ok(['@node-rs/crc32', 'fast-crc32c'].includes(crc32cImplementation()), crc32cImplementation());
  assert.equal(crc32c(Buffer.alloc(0), 0x1234), 0x1234, 'nothing added: the running CRC unchanged');
});

test('a running CRC over any split equals the whole; views into larger buffers read only their bytes', () => {
  const buf = randomBytes(70_001);
  const whole = reference(buf);
  assert.equal(crc32c(buf), whole);
  for (const cut of [1, 7, 4096, 32_768, 65_536, 70_000]) {
    assert.equal(crc32c(buf.subarray(cut), crc32c(buf.subarray(0, cut))), whole, `split at ${cut}`);
  }
  const view = new Uint8Array(buf.buffer, buf.byteOffset + 13, 1000);
  assert.equal(crc32c(view), reference(buf.subarray(13, 1013)));
  assert.equal(crc32c(buf.subarray(5, 9), 0xdeadbeef), reference(buf.subarray(5, 9), 0xdeadbeef));
});
