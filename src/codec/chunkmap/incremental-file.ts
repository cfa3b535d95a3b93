/**
 * INCREMENTAL.<name> files of a PostgreSQL 17+ incremental backup (pure
 * codec, no streams; PROTOCOL.md §4, pg_combinebackup's reconstruct.c):
 *
 *   u32 magic 0xD3AE1F0D, u32 block count N, u32 truncation_block_length,
 *   N × u32 block numbers (relative to the segment, ascending),
 *   zero padding to a multiple of BLCKSZ (only when N > 0),
 *   N block images of BLCKSZ bytes                      (host order: LE)
 *
 * The rebuilt file is max(truncation_block_length, last block + 1) blocks
 * long; block b is the image sent for b if there is one, else the prior
 * backup's block b when b < truncation_block_length and the prior file has
 * it, else zeros.
 *
 * IncrementalFileParser takes the member's bytes in pieces of any size and
 * reports the header once, then each block as it completes (a subarray when
 * it lies in one piece, else a copy).
 *
 * Errors: PgbbError 'incremental' naming the file (bad magic, counts beyond
 * the segment size, block numbers out of order, a size that disagrees with
 * the header, trailing or missing bytes).
 */
import { PgbbError } from '../../errors';

export const INCREMENTAL_MAGIC = 0xd3ae1f0d;
const PREFIX = 'INCREMENTAL.';

export interface IncrementalHeader {
  truncationBlockLength: number;
  /** Relative block numbers, ascending. */
  blocks: Uint32Array;
  /** Bytes before the first block image. */
  headerLength: number;
}

/** `base/5/INCREMENTAL.16384` → `base/5/16384`; null for any other name. */
export function incrementalTarget(path: string): string | null {
  const slash = path.lastIndexOf('/');
  const name = path.slice(slash + 1);
  if (!name.startsWith(PREFIX) || name.length === PREFIX.length) return null;
  return path.slice(0, slash + 1) + name.slice(PREFIX.length);
}

export function incrementalHeaderLength(blockCount: number, blockSize: number): number {
  const raw = 12 + 4 * blockCount;
  return blockCount > 0 ? Math.ceil(raw / blockSize) * blockSize : raw;
}

/** Blocks of the rebuilt file. */
export function rebuiltBlockCount(h: Pick<IncrementalHeader, 'truncationBlockLength' | 'blocks'>): number {
  const n = h.blocks.length;
  return n ? Math.max(h.truncationBlockLength, h.blocks[n - 1] + 1) : h.truncationBlockLength;
}

/** An INCREMENTAL file's bytes (tests and fixtures). */
export function encodeIncrementalFile(truncationBlockLength: number, blocks: Array<[number, Buffer]>, blockSize: number): Buffer {
  const head = Buffer.alloc(incrementalHeaderLength(blocks.length, blockSize));
  head.writeUInt32LE(INCREMENTAL_MAGIC, 0);
  head.writeUInt32LE(blocks.length, 4);
  head.writeUInt32LE(truncationBlockLength, 8);
  blocks.forEach(([b], i) => head.writeUInt32LE(b, 12 + 4 * i));
  return Buffer.concat([head, ...blocks.map(([, data]) => data)]);
}

export interface IncrementalParserOptions {
  file: string;
  blockSize: number;
  /** RELSEG_SIZE: block numbers and counts must stay below it. */
  segmentBlocks: number;
  /** The member's size, checked against the header. */
  size: number;
}

export interface IncrementalHandler {
  header(h: IncrementalHeader): void;
  block(blockNumber: number, image: Buffer): void;
}

export class IncrementalFileParser {
  private readonly fixed = Buffer.alloc(12);
  private head: Buffer = Buffer.alloc(0);
  private headFill = 0;
  private header: IncrementalHeader | null = null;
  private seen = 0;
  private index = 0;
  private partial: Buffer | null = null;
  private partialFill = 0;

  constructor(private readonly o: IncrementalParserOptions) {}

  private fail(why: string): never {
    throw new PgbbError('incremental', `incremental file "${this.o.file}": ${why}`);
  }

  push(buf: Buffer, on: IncrementalHandler): void {
    this.seen += buf.length;
    if (this.seen > this.o.size) this.fail(`more than its ${this.o.size} bytes`);
    let at = 0;
    if (!this.header) {
      at = this.readHeader(buf);
      if (!this.header) return;
      on.header(this.header);
    }
    const B = this.o.blockSize;
    const h = this.header!;
    while (at < buf.length) {
      if (this.index >= h.blocks.length) this.fail('bytes after the last block');
      const b = h.blocks[this.index];
      if (!this.partial && buf.length - at >= B) {
        on.block(b, buf.subarray(at, at + B));
        at += B;
        this.index++;
        continue;
      }
      this.partial ??= Buffer.alloc(B);
      const n = Math.min(B - this.partialFill, buf.length - at);
      buf.copy(this.partial, this.partialFill, at, at + n);
      this.partialFill += n;
      at += n;
      if (this.partialFill === B) {
        on.block(b, this.partial);
        this.partial = null;
        this.partialFill = 0;
        this.index++;
      }
    }
  }

  /** Gathers header bytes; returns how much of `buf` it used. */
  private readHeader(buf: Buffer): number {
    const B = this.o.blockSize;
    let used = 0;
    if (this.headFill < 12) {
      used = Math.min(12 - this.headFill, buf.length);
      buf.copy(this.fixed, this.headFill, 0, used);
      this.headFill += used;
      if (this.headFill < 12) return used;
      const magic = this.fixed.readUInt32LE(0);
      if (magic !== INCREMENTAL_MAGIC) this.fail(`bad magic number 0x${magic.toString(16)}`);
      const count = this.fixed.readUInt32LE(4);
      if (count > this.o.segmentBlocks) this.fail(`block count ${count} exceeds the segment size ${this.o.segmentBlocks}`);
      const trunc = this.fixed.readUInt32LE(8);
      if (trunc > this.o.segmentBlocks) this.fail(`truncation block length ${trunc} exceeds the segment size ${this.o.segmentBlocks}`);
      const headerLength = incrementalHeaderLength(count, B);
      if (headerLength + count * B !== this.o.size) this.fail(`size ${this.o.size} does not match its ${count} blocks (expected ${headerLength + count * B})`);
      this.head = Buffer.alloc(headerLength);
      this.fixed.copy(this.head);
    }
    const n = Math.min(this.head.length - this.headFill, buf.length - used);
    buf.copy(this.head, this.headFill, used, used + n);
    this.headFill += n;
    used += n;
    if (this.headFill < this.head.length) return used;
    const count = this.head.readUInt32LE(4);
    const blocks = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      blocks[i] = this.head.readUInt32LE(12 + 4 * i);
      if (blocks[i] >= this.o.segmentBlocks) this.fail(`block number ${blocks[i]} is beyond the segment size ${this.o.segmentBlocks}`);
      if (i && blocks[i] <= blocks[i - 1]) this.fail(`block numbers out of order (${blocks[i - 1]}, then ${blocks[i]})`);
    }
    this.header = { truncationBlockLength: this.head.readUInt32LE(8), blocks, headerLength: this.head.length };
    return used;
  }

  /** The member ended: every block must have come. */
  end(): void {
    const h = this.header;
    if (!h) this.fail(`ends after ${this.seen} bytes, inside its header`);
    if (this.index !== h.blocks.length) this.fail(`ends after ${this.index} of ${h.blocks.length} blocks`);
  }
}
