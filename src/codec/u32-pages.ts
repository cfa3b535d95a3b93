/**
 * U32Pages: a growable array of u32 (pure) that grows by fixed pages instead
 * of doubling copies, so that per-record tables leave no old copies behind
 * for the collector (which takes them only at a full collection: see
 * file-table.ts). Unwritten elements read as 0. It may start from a given
 * array (`base`), kept, not copied: elements past it go to pages.
 */
const PAGE_BITS = 12;
const PAGE = 1 << PAGE_BITS;
const NONE = new Uint32Array(0);

export class U32Pages {
  private readonly pages: Uint32Array[] = [];

  constructor(private readonly base: Uint32Array = NONE) {}

  get(i: number): number {
    const b = this.base;
    if (i < b.length) return b[i]!;
    const j = i - b.length;
    const p = this.pages[j >>> PAGE_BITS];
    return p === undefined ? 0 : p[j & (PAGE - 1)]!;
  }

  set(i: number, v: number): void {
    const b = this.base;
    if (i < b.length) {
      b[i] = v;
      return;
    }
    const j = i - b.length;
    const at = j >>> PAGE_BITS;
    while (this.pages.length <= at) this.pages.push(new Uint32Array(PAGE));
    this.pages[at]![j & (PAGE - 1)] = v;
  }

  /** Bytes held. */
  get footprint(): number {
    return this.base.byteLength + this.pages.length * PAGE * 4;
  }
}
