/**
 * FileTable: one record per file (path → size, digest, flags), kept
 * compactly so that a backup of a million files costs its paths' bytes and
 * a few dozen bytes each, not a million JS objects: paths in one growing
 * byte arena, fixed-width fields in typed arrays, an open-addressing hash
 * index of record numbers. Records are numbered in insertion order.
 *
 * Paths are pgbb path strings (src/codec/path-bytes.ts). They are stored as
 * UTF-8 when they hold no surrogate, else as 0xFF + UTF-16LE (a first byte
 * UTF-8 never has), so any two distinct strings stay distinct.
 */
import { randomBytes } from 'node:crypto';

const SURROGATE = /[\ud800-\udfff]/;

/** The stored form of `path`; in a scratch buffer reused by every call, so copy what you keep. */
let scratch = Buffer.allocUnsafe(4096);
function keyOf(path: string): Buffer {
  if (path.length * 3 + 1 > scratch.length) scratch = Buffer.allocUnsafe(path.length * 3 + 1);
  if (!SURROGATE.test(path)) return scratch.subarray(0, scratch.write(path, 0, 'utf8'));
  scratch[0] = 0xff;
  return scratch.subarray(0, 1 + scratch.write(path, 1, 'utf16le'));
}

/**
 * FNV-1a from a random start per table, then mixed (murmur3's fmix32): paths come from
 * manifests pgbb did not write, and with a known start colliding paths are cheap to make
 * (every lookup would then probe all of them); the mix makes every index bit depend on all 32.
 */
function hashOf(b: Uint8Array, seed: number): number {
  let h = seed;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function grown<T extends Float64Array | Uint32Array | Uint8Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

export class FileTable {
  private arena = Buffer.allocUnsafe(64 * 1024);
  private used = 0;
  private start = new Uint32Array(1024);
  private length = new Uint32Array(1024);
  private sizes = new Float64Array(1024);
  private flagBits = new Uint8Array(1024);
  private digests: Uint8Array;
  /** Record number + 1 per slot; 0 = empty. Kept at most half full. */
  private slots = new Uint32Array(2048);
  private n = 0;
  private readonly seed = randomBytes(4).readUInt32LE(0);

  /** `digestBytes`: the width of each record's digest (4 for CRC32C, 32 for SHA256, 0 for none). */
  constructor(private width: number) {
    this.digests = new Uint8Array(1024 * width);
  }

  get digestBytes(): number {
    return this.width;
  }

  /**
   * Gives a table made without digests room for `bytes` of digest a record
   * (all zero), so that one filled ahead with paths and sizes can take the
   * digests later instead of a second table repeating its paths.
   */
  withDigests(bytes: number): this {
    if (bytes === this.width) return this;
    if (this.width !== 0) throw new Error(`FileTable: digests are ${this.width} bytes wide already`);
    this.digests = new Uint8Array(this.start.length * bytes);
    this.width = bytes;
    return this;
  }

  get count(): number {
    return this.n;
  }

  /** Bytes held, for measurements. */
  get footprint(): number {
    return this.arena.length + this.slots.byteLength + this.start.length * (4 + 4 + 8 + 1 + this.digestBytes);
  }

  /** The record of `path`, or -1. */
  find(path: string): number {
    const key = keyOf(path);
    const at = this.slotOf(key, hashOf(key, this.seed));
    return this.slots[at] - 1;
  }

  /** The record of `path`, added (size 0, flags 0) when new; `added` says which. */
  add(path: string): { index: number; added: boolean } {
    const key = keyOf(path);
    const h = hashOf(key, this.seed);
    let at = this.slotOf(key, h);
    if (this.slots[at]) return { index: this.slots[at] - 1, added: false };
    if ((this.n + 1) * 2 > this.slots.length) {
      this.rehash(this.slots.length * 2);
      at = this.slotOf(key, h);
    }
    const i = this.n++;
    if (i === this.start.length) this.growRecords(i * 2);
    if (this.used + key.length > this.arena.length) {
      const a = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.used + key.length));
      this.arena.copy(a, 0, 0, this.used);
      this.arena = a;
    }
    key.copy(this.arena, this.used);
    this.start[i] = this.used;
    this.length[i] = key.length;
    this.used += key.length;
    this.sizes[i] = 0;
    this.flagBits[i] = 0;
    this.slots[at] = i + 1;
    return { index: i, added: true };
  }

  path(i: number): string {
    const b = this.arena.subarray(this.start[i], this.start[i] + this.length[i]);
    return b[0] === 0xff ? b.toString('utf16le', 1) : b.toString('utf8');
  }

  size(i: number): number {
    return this.sizes[i];
  }

  setSize(i: number, size: number): void {
    this.sizes[i] = size;
  }

  /** The digest as lowercase hex. */
  digestHex(i: number): string {
    const w = this.digestBytes;
    return Buffer.from(this.digests.buffer, this.digests.byteOffset + i * w, w).toString('hex');
  }

  /** Sets the digest from lowercase hex of exactly digestBytes bytes; false when it is not that. */
  setDigestHex(i: number, hex: string): boolean {
    const w = this.digestBytes;
    if (hex.length !== w * 2) return false;
    const n = Buffer.from(this.digests.buffer, this.digests.byteOffset + i * w, w).write(hex, 'hex');
    return n === w;
  }

  hasFlag(i: number, bit: number): boolean {
    return (this.flagBits[i] & bit) !== 0;
  }

  setFlag(i: number, bit: number): void {
    this.flagBits[i] |= bit;
  }

  private slotOf(key: Buffer, h: number): number {
    const mask = this.slots.length - 1;
    for (let at = h & mask; ; at = (at + 1) & mask) {
      const r = this.slots[at];
      if (r === 0 || this.equals(r - 1, key)) return at;
    }
  }

  private equals(i: number, key: Buffer): boolean {
    const len = this.length[i];
    if (len !== key.length) return false;
    const s = this.start[i];
    for (let j = 0; j < len; j++) if (this.arena[s + j] !== key[j]) return false;
    return true;
  }

  private rehash(n: number): void {
    const slots = new Uint32Array(n);
    const mask = n - 1;
    for (let i = 0; i < this.n; i++) {
      let at = hashOf(this.arena.subarray(this.start[i], this.start[i] + this.length[i]), this.seed) & mask;
      while (slots[at]) at = (at + 1) & mask;
      slots[at] = i + 1;
    }
    this.slots = slots;
  }

  private growRecords(n: number): void {
    this.start = grown(this.start, n);
    this.length = grown(this.length, n);
    this.sizes = grown(this.sizes, n);
    this.flagBits = grown(this.flagBits, n);
    this.digests = grown(this.digests, n * this.digestBytes);
  }
}
