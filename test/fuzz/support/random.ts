/**
 * Deterministic randomness and input mutators for the fuzz tests.
 *
 *   caseRng(seed, i)      the generator for case i of a run: any one case can
 *                         be replayed alone (PGBB_FUZZ_CASE=i)
 *   mutate(rng, input)    1–4 random edits: bit flips, interesting bytes,
 *                         truncation, extension, splices, deletions,
 *                         duplications, and length-like fields overwritten with
 *                         huge or negative values (32/64-bit, both byte orders,
 *                         or as decimal/octal text)
 *   chunked(rng, input)   the input cut at random points (parsers must not
 *                         care where their input is split); `sizes` caps the
 *                         pieces (streams pay per piece)
 */

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed | 0;
  }
  /** mulberry32: uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = Math.imul(this.s ^ (this.s >>> 15), 1 | this.s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** A 32-bit mix of the run seed and the case index. */
export function caseRng(seed: number, i: number): Rng {
  let h = (seed ^ Math.imul(i + 1, 0x9e3779b1)) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return new Rng(h ^ (h >>> 16));
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x20, 0x2f, 0x30, 0x37, 0x38, 0x0a, 0x22, 0x5c, 0x2e];
// Around the sanity limits parsers use too (64 MiB messages, 1 MiB pax, 1 GiB WAL records).
const HUGE_32 = [0xffffffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0x40000000, 0x3ffffff8, 0x03fffff0, 0x00fffff0, 0x00100001, 0x00010000, 0];
const HUGE_TEXT = ['99999999999999999999', '-1', '4294967295', '18446744073709551616', '77777777777', '9007199254740993', '1e400', '0', '-9999999999', 'NaN'];

/** Overwrites bytes at `at` with a huge or negative number in some encoding. */
function hugeField(rng: Rng, b: Buffer): Buffer {
  const at = rng.int(b.length);
  const form = rng.int(5);
  if (form === 4) {
    // As text: replace a run of digits (or insert) — octal and decimal length fields.
    let start = at;
    while (start > 0 && b[start - 1]! >= 0x30 && b[start - 1]! <= 0x39) start--;
    let end = at;
    while (end < b.length && b[end]! >= 0x30 && b[end]! <= 0x39) end++;
    const text = Buffer.from(rng.pick(HUGE_TEXT));
    return rng.chance(0.5)
      ? Buffer.concat([b.subarray(0, start), text, b.subarray(end)])
      : Buffer.concat([b.subarray(0, start), text.subarray(0, Math.max(1, end - start)), b.subarray(start + Math.max(1, end - start))]);
  }
  const out = Buffer.from(b);
  const v = rng.pick(HUGE_32);
  if (form === 0 && at + 4 <= out.length) out.writeUInt32BE(v, at);
  else if (form === 1 && at + 4 <= out.length) out.writeUInt32LE(v, at);
  else if (form === 2 && at + 8 <= out.length) out.writeBigUInt64BE(rng.chance(0.5) ? 0xffffffffffffffffn : 0x7fffffffffffffffn, at);
  else if (form === 3 && at + 8 <= out.length) out.writeBigUInt64LE(rng.chance(0.5) ? 0xffffffffffffffffn : 1n << 40n, at);
  else out[at] = 0xff;
  return out;
}

/** One random edit of `b` (never in place). */
export function mutateOnce(rng: Rng, b: Buffer): Buffer {
  if (b.length === 0) return rng.bytes(1 + rng.int(16));
  const at = rng.int(b.length);
  switch (rng.int(10)) {
    case 0: {
      const out = Buffer.from(b);
      out[at] ^= 1 << rng.int(8);
      return out;
    }
    case 1: {
      const out = Buffer.from(b);
      out[at] = rng.pick(INTERESTING_BYTES);
      return out;
    }
    case 2:
      return b.subarray(0, at);
    case 3:
      return Buffer.concat([b, rng.bytes(1 + rng.int(64))]);
    case 4: {
      // Splice: a piece of the input copied over another place.
      const len = 1 + rng.int(Math.min(512, b.length));
      const from = rng.int(b.length);
      const out = Buffer.from(b);
      b.copy(out, at, from, from + len);
      return out;
    }
    case 5: {
      const len = 1 + rng.int(Math.min(1024, b.length - at));
      return Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
    }
    case 6: {
      const len = 1 + rng.int(Math.min(1024, b.length - at));
      return Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
    }
    case 7:
      return Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(32)), b.subarray(at)]);
    default:
      return hugeField(rng, b);
  }
}

export function mutate(rng: Rng, b: Buffer, maxEdits = 4): Buffer {
  let out = b;
  const n = 1 + rng.int(maxEdits);
  for (let i = 0; i < n; i++) out = mutateOnce(rng, out);
  return out;
}

/** Cuts `b` into pieces at random points (sometimes byte by byte near the start). */
export function chunked(rng: Rng, b: Buffer, sizes: readonly number[] = [1, 7, 64, 511, 513, 4096, 65536]): Buffer[] {
  const out: Buffer[] = [];
  const max = rng.pick(sizes);
  for (let at = 0; at < b.length; ) {
    const n = 1 + rng.int(max);
    out.push(b.subarray(at, at + n));
    at += n;
  }
  return out;
}
