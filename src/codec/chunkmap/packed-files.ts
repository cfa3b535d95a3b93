/**
 * The files of a decoded chunk map, kept in the map's own bytes (pure, no
 * streams): memory is the encoded map plus about 12 bytes per file, instead
 * of JS objects per file (a 66 MB map of small files took 1.7 GB as objects).
 *
 *   new PackedChunkFiles(buf, records, chunkSize, hashBytes)
 *       buf      the whole verified map (chunk-map.ts layout), kept, not copied
 *       records  offset in buf of each file's record (its u32 path length)
 *
 * Lookups hash the path's bytes into an open-addressing table of record
 * numbers; `get` builds a ChunkMapFile on each call (its CRCs copied out, its
 * hashes a view of buf), so callers that keep one pay for that one only.
 * Iteration is in the map's file order. `set` is supported (an overlay; the
 * packed entry it replaces is hidden) so a decoded map is a ChunkFiles like
 * any other, though nothing in pgbb edits one.
 *
 * `duplicate()` after construction: the first record whose path an earlier
 * record already has, or -1 (the decoder refuses such a map).
 */
import type { ChunkFiles, ChunkMapFile } from './chunk-map';
import { pathFromBytes, pathToBytes } from '../path-bytes';

/** FNV-1a over buf[start, end). */
function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h >>> 0;
}

export class PackedChunkFiles implements ChunkFiles {
  /** Record number + 1 per slot; 0 is empty. */
  private readonly table: Int32Array;
  private readonly mask: number;
  private overlay: Map<string, ChunkMapFile> | null = null;
  /** Packed records replaced through `set`. */
  private hidden: Uint8Array | null = null;
  private hiddenCount = 0;
  private firstDuplicate = -1;

  constructor(
    private readonly buf: Buffer,
    private readonly records: Uint32Array,
    private readonly chunkSize: number,
    private readonly hashBytes: number,
  ) {
    // Load factor at most 3/4: ≤ 10.7 bytes per file, and every record holds at least 13.
    let slots = 8;
    while (slots * 3 < records.length * 4) slots *= 2;
    this.table = new Int32Array(slots);
    this.mask = slots - 1;
    for (let r = 0; r < records.length; r++) {
      const slot = this.slotOf(buf, this.pathStart(r), this.pathEnd(r));
      if (this.table[slot] !== 0) {
        if (this.firstDuplicate < 0) this.firstDuplicate = r;
        continue;
      }
      this.table[slot] = r + 1;
    }
  }

  duplicate(): number {
    return this.firstDuplicate;
  }

  /** The path of record `r`, decoded (for messages and keys). */
  pathOf(r: number): string {
    return pathFromBytes(this.buf, this.pathStart(r), this.pathEnd(r));
  }

  get size(): number {
    return this.records.length - this.hiddenCount + (this.overlay?.size ?? 0);
  }

  get(key: string): ChunkMapFile | undefined {
    const o = this.overlay?.get(key);
    if (o) return o;
    const r = this.find(key);
    return r < 0 ? undefined : this.fileAt(r, key);
  }

  has(key: string): boolean {
    return (this.overlay?.has(key) ?? false) || this.find(key) >= 0;
  }

  set(key: string, file: ChunkMapFile): this {
    const r = this.overlay?.has(key) ? -1 : this.find(key);
    if (r >= 0) {
      this.hidden ??= new Uint8Array(this.records.length);
      this.hidden[r] = 1;
      this.hiddenCount++;
    }
    (this.overlay ??= new Map()).set(key, file);
    return this;
  }

  *keys(): IterableIterator<string> {
    for (let r = 0; r < this.records.length; r++) if (!this.hidden?.[r]) yield this.pathOf(r);
    if (this.overlay) yield* this.overlay.keys();
  }

  *values(): IterableIterator<ChunkMapFile> {
    for (let r = 0; r < this.records.length; r++) if (!this.hidden?.[r]) yield this.fileAt(r, this.pathOf(r));
    if (this.overlay) yield* this.overlay.values();
  }

  *entries(): IterableIterator<[string, ChunkMapFile]> {
    for (const f of this.values()) yield [f.path, f];
  }

  [Symbol.iterator](): IterableIterator<[string, ChunkMapFile]> {
    return this.entries();
  }

  /** Record number of `key`, or -1 (a hidden one counts as absent). */
  private find(key: string): number {
    const bytes = pathToBytes(key);
    const r = this.table[this.slotOf(bytes, 0, bytes.length)]! - 1;
    return r < 0 || this.hidden?.[r] ? -1 : r;
  }

  /** The slot holding these path bytes, or the empty slot where they would go. */
  private slotOf(src: Uint8Array, start: number, end: number): number {
    const len = end - start;
    for (let slot = hashBytes(src, start, end) & this.mask; ; slot = (slot + 1) & this.mask) {
      const r = this.table[slot]! - 1;
      if (r < 0) return slot;
      const s = this.pathStart(r);
      const e = this.pathEnd(r);
      if (e - s === len && this.buf.compare(src, start, end, s, e) === 0) return slot;
    }
  }

  private pathStart(r: number): number {
    return this.records[r]! + 4;
  }

  private pathEnd(r: number): number {
    const at = this.records[r]!;
    return at + 4 + this.buf.readUInt32LE(at);
  }

  private fileAt(r: number, path: string): ChunkMapFile {
    const pathEnd = this.pathEnd(r);
    const size = Number(this.buf.readBigUInt64LE(pathEnd));
    const n = Math.ceil(size / this.chunkSize);
    const crcAt = pathEnd + 8;
    const crcs = new Uint32Array(n);
    for (let k = 0; k < n; k++) crcs[k] = this.buf.readUInt32LE(crcAt + 4 * k);
    const hashAt = crcAt + 4 * n;
    return { path, size, crcs, hashes: this.buf.subarray(hashAt, hashAt + n * this.hashBytes) };
  }
}
