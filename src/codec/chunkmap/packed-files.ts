/**
 * A chunk map's files kept as encoded records (pure, no streams): memory is
 * the records' own bytes (chunk-map.ts layout) plus about 20 bytes per file,
 * instead of JS objects per file (a 66 MB map of small files took 1.7 GB as
 * objects). Used for a decoded map (its records stay in the map's bytes) and
 * for a map being built (records appended to blocks as files end).
 *
 *   new PackedChunkFiles(chunkSize, hashBytes)                 empty, grows by set()
 *   PackedChunkFiles.decoded(buf, records, chunkSize, hashBytes, recordsEnd)
 *       buf      the whole verified map, kept, not copied
 *       records  offset in buf of each file's record (its u32 path length),
 *                back to back up to recordsEnd
 *
 * Lookups hash the path's bytes into an open-addressing table of record
 * numbers; `get` builds a ChunkMapFile on each call (its CRCs copied out, its
 * hashes a view of the record, or a copy in a map with a spill, whose
 * blocks are reused), so callers that keep one pay for that one only.
 * Iteration is in record order. `set` appends a record; one it replaces is
 * hidden (so iteration and `records()` skip it).
 * `records()` yields the live records' bytes, as the map encodes them, and
 * `recordBytes` is their total: the encoder sizes and writes the map from
 * them without building anything per file.
 *
 * `duplicate()` after `decoded`: the first record whose path an earlier
 * record already has, or -1 (the decoder refuses such a map).
 *
 * With a `spill` (a map being built), full blocks past the first
 * `keepBlocks` are moved out of memory and read back a block at a time when
 * needed (record-blocks.ts): a built map's memory is then about 20 bytes
 * per file. Each record's path hash is kept in memory, so lookups
 * and table growth read a spilled block only for a path that matches.
 */
import { halfSipHash, randomHashKey } from '../half-siphash';
import { PgbbError } from '../../errors';
import { pathBytesIn, pathFromBytes } from '../path-bytes';
import type { ChunkFiles, ChunkMapFile } from './types';
import { U32Pages } from '../u32-pages';
import { SlotArray } from '../slot-array';
import { RecordBlocks, type RecordBlockOptions } from './record-blocks';

/** A path's bytes for set() and lookups: copied into a block or compared, never kept. */
const pathScratch = Buffer.allocUnsafe(4096);

export type { RecordSpill } from '../spill';

export type PackedOptions = RecordBlockOptions;

export class PackedChunkFiles implements ChunkFiles {
  private blocks: RecordBlocks;
  /** Per record: its offset in its block (in pages: growing them copies nothing). */
  private offsetOf = new U32Pages();
  /** Per record: its path's hash, so that probes and rehashing need no record bytes. */
  private hashOf = new U32Pages();
  private count = 0;
  /** Live record number + 1 per slot; 0 is empty. */
  private readonly tableMem = new SlotArray(16);
  private table = this.tableMem.slots;
  private mask = 15;
  private hidden: Uint8Array | null = null;
  private hiddenCount = 0;
  private firstDuplicate = -1;
  /** Bytes of the live records, as the map encodes them. */
  recordBytes = 0;
  /** A map's paths come from a file pgbb did not necessarily write: keyed, so colliding paths cannot be built. */
  private readonly hashKey = randomHashKey();

  constructor(
    private readonly chunkSize: number,
    private readonly hashBytes: number,
    opts: PackedOptions = {},
  ) {
    this.blocks = new RecordBlocks(opts);
  }

  /** The files of a verified map `buf` whose records start at `records` (kept, not copied). */
  static decoded(buf: Buffer, records: Uint32Array, chunkSize: number, hashBytes: number, recordsEnd: number): PackedChunkFiles {
    const p = new PackedChunkFiles(chunkSize, hashBytes);
    p.blocks = RecordBlocks.whole(buf);
    p.offsetOf = new U32Pages(records);
    p.resize(records.length); // while count is 0: nothing to re-insert
    p.count = records.length;
    // The records lie back to back up to recordsEnd.
    p.recordBytes = records.length ? recordsEnd - records[0]! : 0;
    p.hashOf = new U32Pages(new Uint32Array(records.length));
    for (let r = 0; r < records.length; r++) {
      const h = halfSipHash(p.hashKey, buf, p.pathStart(r), p.pathEnd(r));
      p.hashOf.set(r, h);
      const slot = p.slotOf(buf, p.pathStart(r), p.pathEnd(r), h);
      if (p.table[slot] !== 0) {
        if (p.firstDuplicate < 0) p.firstDuplicate = r;
        continue;
      }
      p.table[slot] = r + 1;
    }
    return p;
  }

  duplicate(): number {
    return this.firstDuplicate;
  }

  /** The path of record `r`, decoded (for messages and keys). */
  pathOf(r: number): string {
    return pathFromBytes(this.blockAt(r), this.pathStart(r), this.pathEnd(r));
  }

  get size(): number {
    return this.count - this.hiddenCount;
  }

  get(key: string): ChunkMapFile | undefined {
    const r = this.find(key);
    return r < 0 ? undefined : this.fileAt(r, key);
  }

  has(key: string): boolean {
    return this.find(key) >= 0;
  }

  /** Appends `file` as the record of `key`, hiding the one it replaces. */
  set(key: string, file: ChunkMapFile): this {
    const n = Math.ceil(file.size / this.chunkSize);
    if (file.crcs.length !== n || file.hashes.length !== n * this.hashBytes) {
      throw new PgbbError('chunk_map', `cannot encode chunk map: "${file.path}" has ${file.crcs.length} chunks, its size ${file.size} needs ${n}`);
    }
    const path = pathBytesIn(key, pathScratch);
    const len = 4 + path.length + 8 + n * (4 + this.hashBytes);
    const block = this.blocks.tail(len, this.count);
    let at = this.blocks.used;
    block.writeUInt32LE(path.length, at);
    path.copy(block, at + 4);
    block.writeBigUInt64LE(BigInt(file.size), at + 4 + path.length);
    at += 12 + path.length;
    for (let k = 0; k < n; k++) block.writeUInt32LE(file.crcs[k]! >>> 0, at + 4 * k);
    file.hashes.copy(block, at + 4 * n, 0, n * this.hashBytes);
    this.resize(this.count + 1); // before the new record counts: growing re-inserts every counted one
    const r = this.count++;
    this.offsetOf.set(r, this.blocks.used);
    this.blocks.used += len;
    this.recordBytes += len;
    const h = halfSipHash(this.hashKey, path, 0, path.length);
    this.hashOf.set(r, h);
    const slot = this.slotOf(path, 0, path.length, h);
    const old = this.table[slot]! - 1;
    if (old >= 0) this.hide(old);
    this.table[slot] = r + 1;
    return this;
  }

  *keys(): IterableIterator<string> {
    for (let r = 0; r < this.count; r++) if (!this.hidden?.[r]) yield this.pathOf(r);
  }

  *values(): IterableIterator<ChunkMapFile> {
    for (let r = 0; r < this.count; r++) if (!this.hidden?.[r]) yield this.fileAt(r, this.pathOf(r));
  }

  *entries(): IterableIterator<[string, ChunkMapFile]> {
    for (const f of this.values()) yield [f.path, f];
  }

  [Symbol.iterator](): IterableIterator<[string, ChunkMapFile]> {
    return this.entries();
  }

  /**
   * The live records' bytes in order (views, not copies), as the map encodes
   * them. A view into a block read back from the spill is valid only until
   * the next record is asked for: the blocks are read, one after another,
   * into one buffer (encodeChunkMapPieces copies each record at once), not
   * into a new one each (4 MB of garbage at the end of a 100,000-file backup).
   */
  *records(): IterableIterator<Buffer> {
    const blockOf = this.blocks.sequential();
    for (let r = 0; r < this.count; r++) {
      if (this.hidden?.[r]) continue;
      const at = this.offsetOf.get(r);
      const block = blockOf(r);
      // From this block: recordLength() would read it again, into a buffer of its own.
      yield block.subarray(at, at + this.lengthIn(block, at));
    }
  }

  private hide(r: number): void {
    if (!this.hidden || this.hidden.length <= r) {
      const h = new Uint8Array(Math.max(this.count, r + 1) * 2);
      if (this.hidden) h.set(this.hidden);
      this.hidden = h;
    }
    this.hidden[r] = 1;
    this.hiddenCount++;
    this.recordBytes -= this.recordLength(r);
  }

  /** Room for `n` records: the table stays at most 3/4 full (the per-record arrays grow as they are written). */
  private resize(n: number): void {
    if (n * 4 <= this.table.length * 3) return;
    let slots = this.table.length;
    while (slots * 3 < n * 4) slots *= 2;
    // Distinct live paths: hidden (replaced) records are not in the table.
    this.table = this.tableMem.rebuild(slots, this.count, this.hashOf, this.hidden);
    this.mask = slots - 1;
  }

  /** Live record number of `key`, or -1. */
  private find(key: string): number {
    const bytes = pathBytesIn(key, pathScratch);
    return this.table[this.slotOf(bytes, 0, bytes.length, halfSipHash(this.hashKey, bytes, 0, bytes.length))]! - 1;
  }

  /** The slot holding these path bytes (whose hash is h), or the empty slot where they would go. */
  private slotOf(src: Uint8Array, start: number, end: number, h: number): number {
    const len = end - start;
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const r = this.table[slot]! - 1;
      if (r < 0) return slot;
      if (this.hashOf.get(r) !== h) continue;
      const s = this.pathStart(r);
      const e = this.pathEnd(r);
      if (e - s === len && this.blockAt(r).compare(src, start, end, s, e) === 0) return slot;
    }
  }

  private blockAt(r: number): Buffer {
    return this.blocks.blockAt(r);
  }

  private pathStart(r: number): number {
    return this.offsetOf.get(r) + 4;
  }

  private pathEnd(r: number): number {
    const at = this.offsetOf.get(r);
    return at + 4 + this.blockAt(r).readUInt32LE(at);
  }

  private recordLength(r: number): number {
    return this.lengthIn(this.blockAt(r), this.offsetOf.get(r));
  }

  /** The length of the record at `at` in `block`: its path's length, the path, the size, a CRC and hash per chunk. */
  private lengthIn(block: Buffer, at: number): number {
    const pathEnd = at + 4 + block.readUInt32LE(at);
    const n = Math.ceil(Number(block.readBigUInt64LE(pathEnd)) / this.chunkSize);
    return pathEnd + 8 + n * (4 + this.hashBytes) - at;
  }

  private fileAt(r: number, path: string): ChunkMapFile {
    const buf = this.blockAt(r);
    const pathEnd = this.pathEnd(r);
    const size = Number(buf.readBigUInt64LE(pathEnd));
    const n = Math.ceil(size / this.chunkSize);
    const crcAt = pathEnd + 8;
    const crcs = new Uint32Array(n);
    for (let k = 0; k < n; k++) crcs[k] = buf.readUInt32LE(crcAt + 4 * k);
    const hashAt = crcAt + 4 * n;
    const hashes = buf.subarray(hashAt, hashAt + n * this.hashBytes);
    // With a spill, a block in memory is reused once spilled: what a caller keeps must be its own.
    return { path, size, crcs, hashes: this.blocks.spill ? Buffer.from(hashes) : hashes };
  }
}
