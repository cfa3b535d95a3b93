/**
 * FileTable: one record per file (path → size, digest, flags), kept
 * compactly so that a backup of a million files costs its paths' bytes and
 * a few dozen bytes each, not a million JS objects: paths in a byte arena,
 * fixed-width fields in typed arrays, an open-addressing hash index of
 * record numbers. Records are numbered in insertion order. Arena and fields
 * grow by fixed pages, never by copying (file-table-pages.ts), and with a
 * spill their full pages leave memory: what stays is the index and each
 * record's path hash, ~14 bytes a file.
 *
 * Paths are pgbb path strings (src/codec/path-bytes.ts). They are stored as
 * UTF-8 when they hold no surrogate, else as 0xFF + UTF-16LE (a first byte
 * UTF-8 never has), so any two distinct strings stay distinct.
 */
import { halfSipHash, randomHashKey } from './half-siphash';
import { PathArena, RECORD_BITS, RecordPages } from './file-table-pages';
import type { PageSpill } from './spill';
import { SlotArray } from './slot-array';
import { U32Pages } from './u32-pages';

const SURROGATE = /[\ud800-\udfff]/;

/** The stored form of `path`; in a scratch buffer reused by every call, so copy what you keep. */
let scratch = Buffer.allocUnsafe(4096);
function keyOf(path: string): Buffer {
  if (path.length * 3 + 1 > scratch.length) scratch = Buffer.allocUnsafe(path.length * 3 + 1);
  if (!SURROGATE.test(path)) return scratch.subarray(0, scratch.write(path, 0, 'utf8'));
  scratch[0] = 0xff;
  return scratch.subarray(0, 1 + scratch.write(path, 1, 'utf16le'));
}

export type { PageSpill } from './spill';

export interface FileTableOptions {
  /** Full pages of paths and records go here (src/io/scratch-file.ts), past the first few. */
  spill?: PageSpill;
}

const MASK = (1 << RECORD_BITS) - 1;

export class FileTable {
  private readonly arena: PathArena;
  private readonly records: RecordPages;
  /** Each record's path hash: probes and rehashing read no path unless it matches. */
  private readonly hashes = new U32Pages();
  /** Record number + 1 per slot; 0 = empty. Kept at most half full; grows in place. */
  private readonly slotMem = new SlotArray(2048);
  private slots = this.slotMem.slots;
  private n = 0;
  /** Paths come from manifests pgbb did not write: keyed, so colliding paths cannot be built. */
  private readonly hashKey = randomHashKey();

  /** `width`: each record's digest in bytes (4 for CRC32C, 32 for SHA256, 0 for none). */
  constructor(width: number, opts: FileTableOptions = {}) {
    this.arena = new PathArena(opts.spill);
    this.records = new RecordPages(width, opts.spill);
  }

  get digestBytes(): number {
    return this.records.digestBytes;
  }

  /**
   * Gives a table made without digests room for `bytes` of digest a record
   * (all zero), so that one filled ahead with paths and sizes can take the
   * digests later instead of a second table repeating its paths.
   */
  withDigests(bytes: number): this {
    if (bytes !== this.digestBytes) this.records.withDigests(bytes);
    return this;
  }

  get count(): number {
    return this.n;
  }

  /** Bytes held in memory, for measurements. */
  get footprint(): number {
    return this.arena.footprint + this.records.footprint + this.slots.byteLength + this.hashes.footprint;
  }

  /** The record of `path`, or -1. */
  find(path: string): number {
    const key = keyOf(path);
    const at = this.slotOf(key, halfSipHash(this.hashKey, key));
    return this.slots[at] - 1;
  }

  /** The record of `path`, added (size 0, flags 0) when new; `added` says which. */
  add(path: string): { index: number; added: boolean } {
    const key = keyOf(path);
    const h = halfSipHash(this.hashKey, key);
    let at = this.slotOf(key, h);
    if (this.slots[at]) return { index: this.slots[at] - 1, added: false };
    if ((this.n + 1) * 2 > this.slots.length) {
      this.rehash(this.slots.length * 2);
      at = this.slotOf(key, h);
    }
    // Counted once stored: a spill that fails leaves the table as it was.
    const i = this.n;
    const loc = this.arena.store(key);
    const p = this.records.add(i);
    this.n++;
    const r = i & MASK;
    p.loc[r] = loc;
    p.length[r] = key.length;
    p.sizes[r] = 0;
    p.flags[r] = 0;
    this.hashes.set(i, h);
    this.slots[at] = i + 1;
    return { index: i, added: true };
  }

  path(i: number): string {
    const b = this.keyAt(i);
    return b[0] === 0xff ? b.toString('utf16le', 1) : b.toString('utf8');
  }

  size(i: number): number {
    return this.records.page(i).sizes[i & MASK];
  }

  setSize(i: number, size: number): void {
    this.records.page(i, true).sizes[i & MASK] = size;
  }

  /** The digest as lowercase hex. */
  digestHex(i: number): string {
    return this.digestOf(i, false).toString('hex');
  }

  /** Sets the digest from lowercase hex of exactly digestBytes bytes; false when it is not that. */
  setDigestHex(i: number, hex: string): boolean {
    const w = this.digestBytes;
    if (hex.length !== w * 2) return false;
    return this.digestOf(i, true).write(hex, 'hex') === w;
  }

  hasFlag(i: number, bit: number): boolean {
    return (this.records.page(i).flags[i & MASK] & bit) !== 0;
  }

  setFlag(i: number, bit: number): void {
    this.records.page(i, true).flags[i & MASK] |= bit;
  }

  /** Record i's path bytes: a view valid until the next call. */
  private keyAt(i: number): Buffer {
    const p = this.records.page(i);
    const r = i & MASK;
    return this.arena.bytes(p.loc[r], p.length[r]);
  }

  private digestOf(i: number, write: boolean): Buffer {
    const w = this.digestBytes;
    const d = this.records.page(i, write).digests;
    return Buffer.from(d.buffer, d.byteOffset + (i & MASK) * w, w);
  }

  private slotOf(key: Buffer, h: number): number {
    const mask = this.slots.length - 1;
    for (let at = h & mask; ; at = (at + 1) & mask) {
      const r = this.slots[at];
      if (r === 0 || (this.hashes.get(r - 1) === h && this.keyAt(r - 1).equals(key))) return at;
    }
  }

  private rehash(n: number): void {
    this.slots = this.slotMem.rebuild(n, this.n, this.hashes);
  }
}
