/**
 * FileTable: one record per file (path → size, digest, flags), kept
 * compactly so that a backup of a million files costs its paths' bytes and
 * a few dozen bytes each, not a million JS objects: paths in a byte arena,
 * fixed-width fields in typed arrays, an open-addressing hash index of
 * record numbers. Records are numbered in insertion order. Arena and fields
 * grow by fixed pages, never by copying: a table that doubled would leave
 * its old copies (as much again as it holds) as garbage that the collector
 * takes only at a full collection, which a backup of small files rarely
 * triggers (bench/README.md, "many files").
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

/** Records per page: the fixed-width fields grow a page at a time, never copied. */
const PAGE_BITS = 12;
const PAGE = 1 << PAGE_BITS;
/** Path bytes per arena page; a longer path gets a page of its own. A location is page << 16 | offset. */
const ARENA_BITS = 16;
const ARENA_PAGE = 1 << ARENA_BITS;
const MAX_ARENA_PAGES = 2 ** (32 - ARENA_BITS);

interface RecordPage {
  loc: Uint32Array;
  length: Uint32Array;
  sizes: Float64Array;
  flags: Uint8Array;
  digests: Uint8Array;
}

export class FileTable {
  private readonly arena: Buffer[] = [];
  /** Bytes used in the last arena page. */
  private used = ARENA_PAGE;
  private readonly pages: RecordPage[] = [];
  /** Record number + 1 per slot; 0 = empty. Kept at most half full. */
  private slots = new Uint32Array(2048);
  private n = 0;
  private readonly seed = randomBytes(4).readUInt32LE(0);

  /** `digestBytes`: the width of each record's digest (4 for CRC32C, 32 for SHA256, 0 for none). */
  constructor(private width: number) {}

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
    for (const p of this.pages) p.digests = new Uint8Array(PAGE * bytes);
    this.width = bytes;
    return this;
  }

  get count(): number {
    return this.n;
  }

  /** Bytes held, for measurements. */
  get footprint(): number {
    return this.arena.reduce((sum, a) => sum + a.length, 0) + this.slots.byteLength + this.pages.length * PAGE * (4 + 4 + 8 + 1 + this.width);
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
    const loc = this.store(key);
    const i = this.n++;
    if (i >>> PAGE_BITS === this.pages.length) this.pages.push(this.newPage());
    const p = this.pages[i >>> PAGE_BITS];
    const r = i & (PAGE - 1);
    p.loc[r] = loc;
    p.length[r] = key.length;
    p.sizes[r] = 0;
    p.flags[r] = 0;
    this.slots[at] = i + 1;
    return { index: i, added: true };
  }

  path(i: number): string {
    const b = this.keyAt(i);
    return b[0] === 0xff ? b.toString('utf16le', 1) : b.toString('utf8');
  }

  size(i: number): number {
    return this.pages[i >>> PAGE_BITS].sizes[i & (PAGE - 1)];
  }

  setSize(i: number, size: number): void {
    this.pages[i >>> PAGE_BITS].sizes[i & (PAGE - 1)] = size;
  }

  /** The digest as lowercase hex. */
  digestHex(i: number): string {
    return this.digestOf(i).toString('hex');
  }

  /** Sets the digest from lowercase hex of exactly digestBytes bytes; false when it is not that. */
  setDigestHex(i: number, hex: string): boolean {
    const w = this.width;
    if (hex.length !== w * 2) return false;
    return this.digestOf(i).write(hex, 'hex') === w;
  }

  hasFlag(i: number, bit: number): boolean {
    return (this.pages[i >>> PAGE_BITS].flags[i & (PAGE - 1)] & bit) !== 0;
  }

  setFlag(i: number, bit: number): void {
    this.pages[i >>> PAGE_BITS].flags[i & (PAGE - 1)] |= bit;
  }

  private newPage(): RecordPage {
    return {
      loc: new Uint32Array(PAGE), length: new Uint32Array(PAGE), sizes: new Float64Array(PAGE),
      flags: new Uint8Array(PAGE), digests: new Uint8Array(PAGE * this.width),
    };
  }

  /** Copies `key` into the arena; its location. */
  private store(key: Buffer): number {
    let page = this.arena.length - 1;
    if (page < 0 || key.length > ARENA_PAGE - this.used) {
      if (this.arena.length === MAX_ARENA_PAGES) throw new RangeError('FileTable: more paths than its arena holds (4 GiB)');
      // The first page starts small: most tables (a small backup's) hold a few KiB of paths.
      const first = this.arena.length === 0 && key.length <= 4096;
      this.arena.push(Buffer.allocUnsafe(first ? 4096 : Math.max(ARENA_PAGE, key.length)));
      page++;
      this.used = 0;
    } else if (page === 0 && this.used + key.length > this.arena[0].length) {
      // The small first page grows to a whole one (copied once, while small).
      const a = Buffer.allocUnsafe(ARENA_PAGE);
      this.arena[0].copy(a, 0, 0, this.used);
      this.arena[0] = a;
    }
    key.copy(this.arena[page], this.used);
    const loc = (page << ARENA_BITS) | this.used;
    // A page of its own (a path longer than a page) is full.
    this.used = this.arena[page].length > ARENA_PAGE ? ARENA_PAGE : this.used + key.length;
    return loc >>> 0;
  }

  private keyAt(i: number): Buffer {
    const p = this.pages[i >>> PAGE_BITS];
    const r = i & (PAGE - 1);
    const loc = p.loc[r];
    const off = loc & (ARENA_PAGE - 1);
    return this.arena[loc >>> ARENA_BITS].subarray(off, off + p.length[r]);
  }

  private digestOf(i: number): Buffer {
    const w = this.width;
    const d = this.pages[i >>> PAGE_BITS].digests;
    return Buffer.from(d.buffer, d.byteOffset + (i & (PAGE - 1)) * w, w);
  }

  private slotOf(key: Buffer, h: number): number {
    const mask = this.slots.length - 1;
    for (let at = h & mask; ; at = (at + 1) & mask) {
      const r = this.slots[at];
      if (r === 0 || this.equals(r - 1, key)) return at;
    }
  }

  private equals(i: number, key: Buffer): boolean {
    const p = this.pages[i >>> PAGE_BITS];
    const r = i & (PAGE - 1);
    const len = p.length[r];
    if (len !== key.length) return false;
    const loc = p.loc[r];
    const a = this.arena[loc >>> ARENA_BITS];
    const s = loc & (ARENA_PAGE - 1);
    for (let j = 0; j < len; j++) if (a[s + j] !== key[j]) return false;
    return true;
  }

  private rehash(n: number): void {
    const slots = new Uint32Array(n);
    const mask = n - 1;
    for (let i = 0; i < this.n; i++) {
      let at = hashOf(this.keyAt(i), this.seed) & mask;
      while (slots[at]) at = (at + 1) & mask;
      slots[at] = i + 1;
    }
    this.slots = slots;
  }
}
