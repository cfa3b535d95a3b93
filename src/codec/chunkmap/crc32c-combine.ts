/**
 * CRC32C of a concatenation from the CRCs of its parts (pure).
 *
 *   crc32cCombine(crc(A), crc(B), len(B)) === crc(A ‖ B)
 *
 * Why: a refresh that writes only changed chunks still owes the manifest a
 * whole-file CRC32C. Reading the unchanged chunks back would cost a read of
 * the backup; the chunk map already holds every chunk's CRC, and CRC is
 * linear over GF(2): appending len(B) bytes multiplies crc(A)'s polynomial
 * by x^(8·len(B)) modulo the generator, then crc(B) is added (the initial and
 * final inversions cancel out of the combination). Multiplication is done
 * bit by bit on the reflected representation; x^(2^k) mod P comes from a
 * table of repeated squarings, so a length costs O(log len) products.
 *
 * Stages that share one CRC per data event (src/codec/data-crc.ts) combine
 * once per event, ~70,000 times per GB: there each power x^(8·2^k) is applied
 * through a 4 × 256 table (it is linear in the CRC), four lookups per set bit
 * of the length instead of a 32-step product.
 */

/** Castagnoli polynomial, reflected. */
const POLY = 0x82f63b78;
/** x^0 in the reflected representation. */
const ONE = 0x80000000;

/** a(x)·b(x) mod P, both reflected. */
function multModP(a: number, b: number): number {
  let m = ONE;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** X2N[k] = x^(2^k) mod P. 64 entries cover any length below 2^61 bytes, no periodicity assumed. */
const X2N: number[] = (() => {
  const t = [ONE >>> 1]; // x^1
  for (let k = 1; k < 64; k++) t.push(multModP(t[k - 1], t[k - 1]));
  return t;
})();

/** x^(8·n) mod P. */
function xPow8n(n: number): number {
  let p = ONE;
  let k = 3; // 8·n = n·2^3
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N[k], p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/** SHIFT[k]: crc ↦ x^(8·2^k)·crc mod P, one 256-entry table per byte of crc; made on first use. */
const SHIFT: Uint32Array[] = [];

function shiftTable(k: number): Uint32Array {
  let t = SHIFT[k];
  if (t) return t;
  t = new Uint32Array(1024);
  const op = X2N[k + 3]; // x^(8·2^k) = x^(2^(k+3))
  for (let b = 0; b < 4; b++) for (let v = 1; v < 256; v++) t[b * 256 + v] = multModP(op, (v << (8 * b)) >>> 0);
  SHIFT[k] = t;
  return t;
}

/** crc · x^(8·n) mod P: `crc` followed by n bytes' worth of shifting (what appending n bytes does to it before their own CRC is added). */
function shift(crc: number, n: number): number {
  let k = 0;
  while (n > 0) {
    if (n % 2 === 1) {
      const t = shiftTable(k);
      crc = t[crc & 255] ^ t[256 + ((crc >>> 8) & 255)] ^ t[512 + ((crc >>> 16) & 255)] ^ t[768 + (crc >>> 24)];
    }
    n = Math.floor(n / 2);
    k++;
  }
  return crc >>> 0;
}

export function crc32cCombine(crc1: number, crc2: number, len2: number): number {
  if (!Number.isSafeInteger(len2) || len2 < 0) throw new RangeError(`invalid length ${len2}`);
  return (shift(crc1 >>> 0, len2) ^ (crc2 >>> 0)) >>> 0;
}

/**
 * The CRC32C of the tail B of A ‖ B from the CRCs of the whole and of its
 * head: crc(A ‖ B) = shift(crc(A), len B) ^ crc(B), so crc(B) is the whole's
 * with the head's part taken out. Lets a stage that cuts an event at a
 * chunk boundary checksum only the piece before the cut.
 */
export function crc32cTail(crcWhole: number, crcHead: number, tailLen: number): number {
  return crc32cCombine(crcHead, crcWhole, tailLen);
}

/** The CRC32C of a file from its chunks' CRCs (all chunks `chunkSize` long but the last). */
export function crc32cOfChunks(crcs: ArrayLike<number>, size: number, chunkSize: number): number {
  if (crcs.length === 0) return 0;
  // Every chunk but the last has the same length: one operator for all of them.
  const full = xPow8n(chunkSize);
  let crc = crcs[0] >>> 0;
  for (let k = 1; k < crcs.length; k++) {
    const len = Math.min(chunkSize, size - k * chunkSize);
    crc = (multModP(len === chunkSize ? full : xPow8n(len), crc) ^ (crcs[k] >>> 0)) >>> 0;
  }
  return crc;
}
