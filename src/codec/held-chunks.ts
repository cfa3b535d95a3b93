/**
 * Cuts a byte stream into chunks of `size` bytes where the last one is
 * special (age's STREAM flags it): a full chunk is held back until more
 * bytes show it is not the last. Whole chunks are handed out of the input
 * without a copy when they can be; a held one is only valid during the call.
 */
export class HeldChunks {
  private readonly held: Buffer;
  private fill = 0;

  constructor(private readonly size: number) {
    this.held = Buffer.allocUnsafe(size);
  }

  /** Calls `each` with every chunk known not to be the last, in order; stops and returns false when `each` does. */
  feed(input: Buffer, each: (chunk: Buffer) => boolean): boolean {
    let off = 0;
    while (off < input.length) {
      if (this.fill === this.size) {
        if (!each(this.held)) return false;
        this.fill = 0;
      }
      if (this.fill === 0 && input.length - off > this.size) {
        if (!each(input.subarray(off, off + this.size))) return false;
        off += this.size;
        continue;
      }
      const n = Math.min(this.size - this.fill, input.length - off);
      input.copy(this.held, this.fill, off, off + n);
      this.fill += n;
      off += n;
    }
    return true;
  }

  /** The last chunk: what is held at the end (0 to `size` bytes). */
  last(): Buffer {
    return this.held.subarray(0, this.fill);
  }
}
