/**
 * Where a chunk map's records live (pure but for the spill it is given):
 * appended into blocks of 256 KiB (a larger record gets a block of its
 * own), in order, so that a record's block is found from its number. With
 * a spill (a map being built), full blocks past the first `keepBlocks`
 * move out of memory (src/io/scratch-file.ts) and are read back a block at
 * a time; the spilled block's memory takes the next records. A decoded
 * map is one block: the map's own bytes. packed-files.ts keeps the index.
 */
import type { RecordSpill } from '../spill';

/** Records are appended into blocks of this size. */
const BLOCK = 256 * 1024;
/** Full blocks kept in memory before a spill takes the rest (1 MiB: small backups never spill). */
const KEEP_BLOCKS = 4;

export interface RecordBlockOptions {
  spill?: RecordSpill;
  blockBytes?: number;
  keepBlocks?: number;
}

export class RecordBlocks {
  /** null: spilled, at spilledAt[i] with blockLength[i] bytes. */
  private readonly blocks: Array<Buffer | null> = [];
  private readonly spilledAt: number[] = [];
  private readonly blockLength: number[] = [];
  /** The spilled block read last (sequential reads take each block once). */
  private loaded: { index: number; buf: Buffer } | null = null;
  /** Per block: its first record (records fill blocks in order, so this finds any record's block). */
  private readonly firstOf: number[] = [];
  /** Bytes used in the last block, when it is one of ours to append to (-1: it is not). */
  used = -1;
  readonly spill: RecordSpill | undefined;
  private readonly blockBytes: number;
  private readonly keepBlocks: number;

  constructor(opts: RecordBlockOptions = {}) {
    this.spill = opts.spill;
    this.blockBytes = opts.blockBytes ?? BLOCK;
    this.keepBlocks = opts.keepBlocks ?? KEEP_BLOCKS;
  }

  /** One block that is not ours to append to: a decoded map's bytes, kept, not copied. */
  static whole(buf: Buffer): RecordBlocks {
    const b = new RecordBlocks();
    b.blocks.push(buf);
    b.firstOf.push(0);
    return b;
  }

  /** The block to append `len` bytes to as record `record` (`used` is where; the caller adds len after). */
  tail(len: number, record: number): Buffer {
    const i = this.blocks.length - 1;
    const last = this.blocks[i];
    if (last && this.used >= 0 && this.used + len <= last.length) return last;
    if (last && this.used >= 0) {
      this.blockLength[i] = this.used;
      if (this.spill && i >= this.keepBlocks) {
        this.spilledAt[i] = this.spill.append(last.subarray(0, this.used));
        this.blocks[i] = null;
        // Its bytes are in the spill (appended synchronously) and no view of a
        // block is handed out past the call (packed-files' fileAt copies with a
        // spill): the block takes the next records instead of becoming garbage.
        if (last.length === this.blockBytes && len <= this.blockBytes) return this.start(last, record);
      }
    }
    return this.start(Buffer.allocUnsafe(Math.max(this.blockBytes, len)), record);
  }

  /** The block holding record `r` (in memory or read back; a new buffer per spilled read, so earlier views stay valid). */
  blockAt(r: number): Buffer {
    const i = this.indexOf(r);
    const b = this.blocks[i];
    if (b) return b;
    if (this.loaded?.index !== i) this.loaded = { index: i, buf: this.spill!.read(this.spilledAt[i]!, this.blockLength[i]!) };
    return this.loaded.buf;
  }

  /**
   * A reader of blocks for records read in order (records()): a spilled block
   * is read into one buffer reused for each, valid until the next block is
   * asked for, instead of a new buffer each (4 MB of garbage at the end of a
   * 100,000-file backup).
   */
  sequential(): (r: number) => Buffer {
    let reuse: Buffer | null = null;
    let loaded = -1;
    return (r) => {
      const i = this.indexOf(r);
      const block = this.blocks[i];
      if (block) return block;
      const length = this.blockLength[i]!;
      if (loaded !== i) {
        // As large as the largest spilled block (a record larger than a block has one of its own).
        reuse ??= Buffer.allocUnsafe(this.blocks.reduce((most, b, j) => (b ? most : Math.max(most, this.blockLength[j]!)), 0));
        this.spill!.read(this.spilledAt[i]!, length, reuse);
        loaded = i;
      }
      return reuse!.subarray(0, length);
    };
  }

  private start(block: Buffer, record: number): Buffer {
    this.blocks.push(block);
    this.firstOf.push(record);
    this.used = 0;
    return block;
  }

  /** The block of record `r`: the last one whose first record is at most r. */
  private indexOf(r: number): number {
    const f = this.firstOf;
    let lo = 0;
    let hi = f.length - 1;
    if (f[hi]! <= r) return hi; // the newest block: appends and lookups of recent records
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (f[mid]! <= r) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
