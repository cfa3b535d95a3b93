/**
 * HalfSipHash-2-4 with a 32-bit result (Aumasson and Bernstein's SipHash on 32-bit words,
 * as Linux's hsiphash): a keyed hash for the path tables, whose paths come from manifests
 * and chunk maps pgbb did not necessarily write. A random start for FNV-1a is not a key:
 * collisions built for one start carry over to many others (a difference in the top bit
 * survives every FNV step unchanged), so crafted paths still piled into one slot for about
 * one table in fifty. Without the key, colliding paths cannot be built for this one.
 *
 * Hand-written because it is 30 lines and the tables hash from byte ranges of their own
 * buffers; the npm packages take strings or whole buffers, or come with native builds.
 */
import { randomBytes } from 'node:crypto';

/** A 64-bit key as two little-endian words. */
export type HashKey = readonly [number, number];

export function randomHashKey(): HashKey {
  const b = randomBytes(8);
  return [b.readUInt32LE(0), b.readUInt32LE(4)];
}

/** The hash of buf[start, end) under `key`, as an unsigned 32-bit number. */
export function halfSipHash(key: HashKey, buf: Uint8Array, start = 0, end = buf.length): number {
  let v0 = key[0] | 0;
  let v1 = key[1] | 0;
  let v2 = (0x6c796765 ^ key[0]) | 0;
  let v3 = (0x74656462 ^ key[1]) | 0;
  const words = (end - start) >>> 2;
  // Each word is mixed in by two rounds; the last word is the length's low byte on top of
  // the 0–3 bytes left. The rounds are written out (twice), not a closure, to keep v0–v3 in registers.
  for (let w = 0, i = start; w <= words; w++, i += 4) {
    let m: number;
    if (w < words) m = buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    else {
      m = (end - start) << 24;
      for (let s = 0; i < end; i++, s += 8) m |= buf[i]! << s;
    }
    v3 ^= m;
    for (let r = 0; r < 2; r++) {
      v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
      v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
      v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
      v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
    }
    v0 ^= m;
  }
  v2 ^= 0xff;
  for (let r = 0; r < 4; r++) {
    v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
    v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
    v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  }
  return (v1 ^ v3) >>> 0;
}
