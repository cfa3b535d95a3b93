/**
 * The path tables' keyed hash (src/codec/half-siphash.ts): the reference
 * vectors, and paths that collide under FNV-1a for one start spreading
 * under every key, including the keys where a seeded FNV-1a kept them together.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { halfSipHash, randomHashKey, type HashKey } from '../../../src/codec/half-siphash';
import { fnvCollidingPaths } from '../../support/colliding-paths';

test('HalfSipHash-2-4 gives the reference vectors (key 00…07, messages 00…n-1)', () => {
  // From the SipHash reference implementation's vectors_hsip32, read as little-endian words.
  const vectors = [
    0x5b9f35a9, 0xb85a4727, 0x03a662fa, 0x04e7fe8a, 0x89466e2a, 0x69b6fac5,
    0x23fc6358, 0xc563cf8b, 0x8f84b8d0, 0x79e706f8, 0x3479b094, 0x50300808,
  ];
  const key: HashKey = [0x03020100, 0x07060504];
  const msg = Uint8Array.from({ length: 64 }, (_, i) => i);
  vectors.forEach((v, n) => assert.equal(halfSipHash(key, msg, 0, n), v, `${n} bytes`));
  // A range of a larger buffer hashes as the same bytes on their own.
  const shifted = Buffer.concat([Buffer.from('xyz'), msg.subarray(0, 11), Buffer.from('!')]);
  assert.equal(halfSipHash(key, shifted, 3, 14), vectors[11]);
  assert.equal(halfSipHash(key, msg.subarray(0, 7)), vectors[7]);
});

test('paths built to collide under FNV-1a spread under every key, even those a seeded FNV-1a kept colliding', () => {
  const paths = fnvCollidingPaths(16).map((p) => Buffer.from(p));
  // A start with only the top bit changed keeps every FNV-1a collision (adding 2^31 commutes
  // with the odd multiplier), so seeding FNV-1a left these 65,536 paths on one hash.
  const keys: HashKey[] = [[0x811c9dc5, 0], [0x011c9dc5, 0], [0, 0x811c9dc5], randomHashKey(), randomHashKey()];
  for (const key of keys) {
    const seen = new Set(paths.map((p) => halfSipHash(key, p)));
    // 65,536 random 32-bit values collide about once (2^32 / 2 pairs): far from 1 value.
    assert.ok(seen.size >= 65_500, `key ${key.map((k) => k.toString(16))}: ${seen.size} distinct hashes`);
    const slots = new Set(paths.map((p) => halfSipHash(key, p) & 0x1ffff));
    assert.ok(slots.size >= 50_000, `key ${key.map((k) => k.toString(16))}: ${slots.size} of 131,072 slots`);
  }
});

test('the hash depends on every byte and on the length', () => {
  const key = randomHashKey();
  const base = Buffer.from('base/16384/2619_fsm');
  const h = halfSipHash(key, base);
  for (let i = 0; i < base.length; i++) {
    const b = Buffer.from(base);
    b[i] ^= 1;
    assert.notEqual(halfSipHash(key, b), h, `byte ${i}`);
  }
  assert.notEqual(halfSipHash(key, Buffer.concat([base, Buffer.from([0])])), h, 'a trailing zero byte');
  assert.notEqual(halfSipHash(key, Buffer.alloc(4)), halfSipHash(key, Buffer.alloc(0)), 'zero words');
});
