/**
 * The slot array of an open-addressing table that grows in place (pure):
 * its memory is one resizable ArrayBuffer, reserved once and committed as
 * it grows, so a doubling leaves no old array for the collector (old
 * arrays are freed only by a full collection, which comes after a
 * backup's peak: at 100,000 files each table's doublings had left ~1 MB
 * behind). The tables that use it (file-table.ts, chunkmap/packed-files.ts)
 * keep every record's hash, so growing clears the slots and re-inserts;
 * it never needs the old slots.
 *
 * Where the reservation is refused (an address-space limit), or a table
 * outgrows it, a plain array is allocated as before.
 */
const RESERVE = 1 << 30;

export class SlotArray {
  private mem: ArrayBuffer;
  /** The slots, all zero after construction and each grow(); replaced by grow(). */
  slots: Uint32Array;

  constructor(n: number) {
    this.mem = reserve(n * 4);
    this.slots = new Uint32Array(this.mem, 0, n);
  }

  /** n slots (a power of two), all zero: the caller re-inserts its records. */
  grow(n: number): Uint32Array {
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
