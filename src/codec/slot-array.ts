/**
 * The slot array of an open-addressing (linear probing) table that grows
 * in place (pure):
 * its memory is one resizable ArrayBuffer, reserved once and committed as
 * it grows, so a doubling leaves no old array for the collector (old
 * arrays are freed only by a full collection, which comes after a
 * backup's peak: at 100,000 files each table's doublings had left ~1 MB
 * behind). The tables that use it (file-table.ts, chunkmap/packed-files.ts)
 * keep every record's hash, so rebuild() clears the slots and re-inserts
 * the records from their hashes; it never needs the old slots.
 *
 * Where the reservation is refused (an address-space limit), or a table
 * outgrows it, a plain array is allocated as before.
 */
import type { U32Pages } from './u32-pages';

const RESERVE = 1 << 30;

export class SlotArray {
  private mem: ArrayBuffer;
  /** Record number + 1 per slot, 0 = empty; all zero after construction; replaced by rebuild(). */
  slots: Uint32Array;

  constructor(n: number) {
    this.mem = reserve(n * 4);
    this.slots = new Uint32Array(this.mem, 0, n);
  }

  /**
   * n slots (a power of two) holding records 0..count-1, each at the first
   * free slot of its hash's run (hashes.get(r)); a record marked in `absent`
   * (replaced ones) is left out. The records' keys are distinct, so nothing
   * is compared.
   */
  rebuild(n: number, count: number, hashes: U32Pages, absent: Uint8Array | null = null): Uint32Array {
    const slots = this.grow(n);
    const mask = n - 1;
    for (let r = 0; r < count; r++) {
      if (absent?.[r]) continue;
      let at = hashes.get(r) & mask;
      while (slots[at] !== 0) at = (at + 1) & mask;
      slots[at] = r + 1;
    }
    return slots;
  }

  /** n slots, all zero. */
  private grow(n: number): Uint32Array {
    const bytes = n * 4;
    if (this.mem.resizable && bytes <= this.mem.maxByteLength) {
      this.mem.resize(bytes);
      this.slots = new Uint32Array(this.mem, 0, n);
      this.slots.fill(0);
    } else {
      this.mem = new ArrayBuffer(bytes);
      this.slots = new Uint32Array(this.mem);
    }
    return this.slots;
  }
}

function reserve(bytes: number): ArrayBuffer {
  try {
    return new ArrayBuffer(bytes, { maxByteLength: Math.max(bytes, RESERVE) });
  } catch {
    return new ArrayBuffer(bytes);
  }
}
