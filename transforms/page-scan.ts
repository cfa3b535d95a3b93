/**
 * Pages out of a file's data chunks, for page-checksum-verify: keeps a page
 * split across chunks, checks each whole page that is due (not new, last
 * changed before the start LSN) and hands back those whose checksum does not
 * match. Split from page-checksum-verify.ts: cutting bytes into pages is one
 * job, judging and reporting them another.
 * Memory: one partial page between chunks, a 64 KiB scratch for pages at odd
 *      addresses (in place they are read byte by byte, at half the speed).
 */
import { isNewPage, pageChecksum, pageChecksumField, pageLsnHigh, pageLsnLow } from '../src/codec/page-checksum';

/** A page whose checksum did not match; `index` is its place in the file. */
export type Suspect = { index: number; calculated: number; expected: number };

/** Pages looked at, as the verifier's result counts them. */
export interface PageCounts {
  pagesChecked: number;
  pagesSkipped: number;
}

const ALIGNED_SCRATCH = 64 * 1024;

export class PageScanner {
  /** Start LSN as two uint32 halves; 2^32 in the high half when unknown (no page is at or after it). */
  private startHi = 2 ** 32;
  private startLo = 0;
  private partial: Buffer;
  private partialLen = 0;
  private partialIndex = 0;
  /** Scratch for pages at unaligned addresses: 64 KiB, a whole number of pages of any block size. */
  private readonly aligned = Buffer.allocUnsafeSlow(ALIGNED_SCRATCH);
  private nextOffset = 0;

  constructor(
    private bs: number,
    /** RELSEG_SIZE in blocks: a page's checksum is over its absolute block number. */
    public segmentBlocks: number,
  ) {
    this.partial = Buffer.allocUnsafe(bs);
  }

  get blockSize(): number {
    return this.bs;
  }

  set blockSize(bs: number) {
    this.bs = bs;
    this.partial = Buffer.allocUnsafe(bs);
  }

  setStartLsn(lsn: bigint): void {
    [this.startHi, this.startLo] = [Number(lsn >> 32n), Number(lsn & 0xffffffffn)];
  }

  /** A new file: nothing carried over. */
  reset(): void {
    this.partialLen = 0;
    this.nextOffset = 0;
  }

  /** Bytes of a trailing page not completed (the file ended inside it) and its index. */
  get pending(): { bytes: number; index: number } {
    return { bytes: this.partialLen, index: this.partialIndex };
  }

  /** Checks every page completed by this chunk of segment `segno`; returns those whose checksum does not match. */
  scan(chunk: Buffer, offset: number, segno: number, counts: PageCounts): Suspect[] {
    const bs = this.bs;
    const suspects: Suspect[] = [];
    // Offsets jump when an upstream stage passes only some chunks: a partial page before the gap is lost.
    if (offset !== this.nextOffset) this.partialLen = 0;
    this.nextOffset = offset + chunk.length;
    let pos = 0;
    if (this.partialLen > 0) {
      pos = Math.min(bs - this.partialLen, chunk.length);
      chunk.copy(this.partial, this.partialLen, 0, pos);
      this.partialLen += pos;
      if (this.partialLen < bs) return suspects;
      this.partialLen = 0;
      this.checkPage(this.partial, 0, segno, this.partialIndex, suspects, counts);
    } else if (offset % bs !== 0) {
      pos = Math.min(bs - (offset % bs), chunk.length); // no page starts before the next boundary
    }
    let index = (offset + pos) / bs;
    if (((chunk.byteOffset + pos) & 3) === 0) {
      for (; pos + bs <= chunk.length; pos += bs, index++) this.checkPage(chunk, pos, segno, index, suspects, counts);
    } else {
      // Words at an odd address are read byte by byte at half the speed: copying to an aligned scratch costs less.
      while (pos + bs <= chunk.length) {
        const n = Math.min(chunk.length - pos - ((chunk.length - pos) % bs), this.aligned.length);
        chunk.copy(this.aligned, 0, pos, pos + n);
        for (let at = 0; at < n; at += bs, index++) this.checkPage(this.aligned, at, segno, index, suspects, counts);
        pos += n;
      }
    }
    if (pos < chunk.length) {
      chunk.copy(this.partial, 0, pos);
      this.partialLen = chunk.length - pos;
      this.partialIndex = index;
    }
    return suspects;
  }

  /** Not new, and last changed before the backup started. */
  shouldCheck(buf: Uint8Array, at: number): boolean {
    if (isNewPage(buf, at)) return false;
    const hi = pageLsnHigh(buf, at);
    return hi < this.startHi || (hi === this.startHi && pageLsnLow(buf, at) < this.startLo);
  }

  /** The checksum page `index` of segment `segno` should carry, and the one it does. */
  checksums(buf: Buffer, at: number, segno: number, index: number): { calculated: number; expected: number } {
    return { calculated: pageChecksum(buf, segno * this.segmentBlocks + index, at, this.bs), expected: pageChecksumField(buf, at) };
  }

  private checkPage(buf: Buffer, at: number, segno: number, index: number, suspects: Suspect[], counts: PageCounts): void {
    if (!this.shouldCheck(buf, at)) return void counts.pagesSkipped++;
    const calculated = pageChecksum(buf, segno * this.segmentBlocks + index, at, this.bs);
    const expected = pageChecksumField(buf, at);
    if (calculated === expected) counts.pagesChecked++;
    else suspects.push({ index, calculated, expected });
  }
}
