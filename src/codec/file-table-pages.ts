/**
 * The storage under FileTable (file-table.ts), pure: a path arena and the
 * records' fixed-width fields, each growing by fixed pages (never by a
 * doubling copy, whose old copies wait for a full collection as garbage),
 * and each able to move full pages out of memory into a spill
 * (src/io/scratch-file.ts), so that a table of 100,000 files costs memory
 * for its index, not for its records.
 *
 *   PathArena     store(key) → location; bytes(location, length): a view
 *                 valid until the next call (spilled pages are read back
 *                 into one buffer)
 *   RecordPages   size / flags / digest / location / length per record;
 *                 spilled pages are read back into a few cached pages,
 *                 written back when changed and evicted
 *
 * Spilled pages are cheap when used in order (a backup's manifest lists
 * files in the order they came). Used at random, each access could read a
 * page: after a few times as many reads as there are spilled pages, all of
 * them come back into memory for good (memory as without a spill, not
 * minutes of reads).
 */
import type { PageSpill } from './spill';

/** Reads past which a spill is given up: this many times the spilled pages, plus a margin. */
const READS_PER_PAGE = 4;
const READ_MARGIN = 256;

/** Path bytes per arena page; a longer path gets a page of its own. A location is page << 16 | offset. */
const ARENA_BITS = 16;
const ARENA_PAGE = 1 << ARENA_BITS;
const MAX_ARENA_PAGES = 2 ** (32 - ARENA_BITS);

export class PathArena {
  /** null: spilled, at spilledAt[page] with pageLength[page] bytes. */
  private readonly pages: Array<Buffer | null> = [];
  private readonly spilledAt: number[] = [];
  private readonly pageLength: number[] = [];
  private spilled = 0;
  private reads = 0;
  /** The spilled page read last, in one reused buffer (nothing keeps a view of it past a call). */
  private loaded: { page: number; buf: Buffer } | null = null;
  /** Bytes used in the last page. */
  private used = ARENA_PAGE;

  constructor(
    private spill: PageSpill | undefined,
    private readonly keepPages = 4,
  ) {}

  get footprint(): number {
    return this.pages.reduce((sum, a) => sum + (a ? a.length : 0), 0) + (this.loaded ? this.loaded.buf.length : 0);
  }

  /** Copies `key` in; its location. */
  store(key: Buffer): number {
    let page = this.pages.length - 1;
    // A full page takes nothing more, not even an empty path (its offset would be the next page's).
    if (page < 0 || this.used === ARENA_PAGE || key.length > ARENA_PAGE - this.used) {
      if (this.pages.length === MAX_ARENA_PAGES) throw new RangeError('FileTable: more paths than its arena holds (4 GiB)');
      // The first page starts small: most tables (a small backup's) hold a few KiB of paths.
      const first = page < 0 && key.length <= 4096;
      const next = this.spillPage(page, key.length) ?? Buffer.allocUnsafe(first ? 4096 : Math.max(ARENA_PAGE, key.length));
      this.pages.push(next);
      page++;
      this.used = 0;
    } else if (page === 0 && this.used + key.length > this.pages[0]!.length) {
      // The small first page grows to a whole one (copied once, while small).
      const a = Buffer.allocUnsafe(ARENA_PAGE);
      this.pages[0]!.copy(a, 0, 0, this.used);
      this.pages[0] = a;
    }
    const into = this.pages[page]!;
    key.copy(into, this.used);
    const loc = (page << ARENA_BITS) | this.used;
    // A page of its own (a path longer than a page) is full.
    this.used = into.length > ARENA_PAGE ? ARENA_PAGE : this.used + key.length;
    return loc >>> 0;
  }

  /** The `length` bytes at `loc`: a view, valid until the next call. */
  bytes(loc: number, length: number): Buffer {
    const off = loc & (ARENA_PAGE - 1);
    return this.page(loc >>> ARENA_BITS).subarray(off, off + length);
  }

  /**
   * With a spill, the full page `page` (past the kept ones) goes to it; its
   * buffer, when a whole page, is returned to take the next paths (the spill
   * wrote it synchronously), so spilling allocates nothing.
   */
  private spillPage(page: number, next: number): Buffer | null {
    if (!this.spill || page < this.keepPages) return null;
    const full = this.pages[page]!;
    // A page of its own holds one path, all of it (its `used` reads as full).
    const length = full.length > ARENA_PAGE ? full.length : this.used;
    this.spilledAt[page] = this.spill.append(full.subarray(0, length));
    this.pageLength[page] = length;
    this.pages[page] = null;
    this.spilled++;
    return full.length === ARENA_PAGE && next <= ARENA_PAGE ? full : null;
  }

  private page(page: number): Buffer {
    const a = this.pages[page];
    if (a) return a;
    if (this.loaded?.page === page) return this.loaded.buf;
    if (++this.reads > this.spilled * READS_PER_PAGE + READ_MARGIN) return this.unspill(page);
    const length = this.pageLength[page]!;
    const buf = this.loaded && this.loaded.buf.length >= length ? this.loaded.buf : Buffer.allocUnsafe(Math.max(ARENA_PAGE, length));
    this.spill!.read(this.spilledAt[page]!, length, buf);
    this.loaded = { page, buf };
    return buf;
  }

  /** Read at random: every spilled page back in memory, for good. */
  private unspill(want: number): Buffer {
    for (let p = 0; p < this.pages.length; p++) {
      if (!this.pages[p]) this.pages[p] = this.spill!.read(this.spilledAt[p]!, this.pageLength[p]!);
    }
    this.spill = undefined;
    this.loaded = null;
    return this.pages[want]!;
  }
}

/** Records per page. */
export const RECORD_BITS = 12;
const RECORDS = 1 << RECORD_BITS;
/** Spilled record pages kept loaded (each ~100 KB). */
const CACHED = 4;

/** One page of records: one ArrayBuffer, sizes first (8-byte aligned), then locations, lengths, flags, digests. */
interface RecordPage {
  index: number;
  buf: ArrayBuffer;
  sizes: Float64Array;
  loc: Uint32Array;
  length: Uint32Array;
  flags: Uint8Array;
  digests: Uint8Array;
  dirty: boolean;
}

function recordPage(index: number, width: number, buf = new ArrayBuffer(RECORDS * (17 + width))): RecordPage {
  return {
    index, buf, dirty: false,
    sizes: new Float64Array(buf, 0, RECORDS),
    loc: new Uint32Array(buf, 8 * RECORDS, RECORDS),
    length: new Uint32Array(buf, 12 * RECORDS, RECORDS),
    flags: new Uint8Array(buf, 16 * RECORDS, RECORDS),
    digests: new Uint8Array(buf, 17 * RECORDS, RECORDS * width),
  };
}

export class RecordPages {
  /** null: spilled, at spilledAt[page]. */
  private readonly pages: Array<RecordPage | null> = [];
  private readonly spilledAt: number[] = [];
  private spilled = 0;
  private reads = 0;
  /** Loaded spilled pages, least recently used first. */
  private readonly cache: RecordPage[] = [];

  constructor(
    private width: number,
    private spill: PageSpill | undefined,
    private readonly keepPages = 2,
  ) {}

  get digestBytes(): number {
    return this.width;
  }

  get footprint(): number {
    const live = this.pages.filter((p) => p !== null).length + this.cache.length;
    return live * RECORDS * (17 + this.width);
  }

  /** Digests of `bytes` each (all zero) for a table made without; not with a spill. */
  withDigests(bytes: number): void {
    if (this.width !== 0) throw new Error(`FileTable: digests are ${this.width} bytes wide already`);
    if (this.spill) throw new Error('FileTable: digests cannot be added to a table with a spill');
    this.pages.forEach((p, i) => {
      const q = recordPage(i, bytes);
      q.sizes.set(p!.sizes);
      q.loc.set(p!.loc);
      q.length.set(p!.length);
      q.flags.set(p!.flags);
      this.pages[i] = q;
    });
    this.width = bytes;
  }

  /** Record `i`'s page (a new one for the first record of a page, spilling the full one before it). */
  add(i: number): RecordPage {
    const at = i >>> RECORD_BITS;
    if (at < this.pages.length) return this.page(i);
    const prev = at - 1;
    let reuse: ArrayBuffer | undefined;
    if (this.spill && prev >= this.keepPages) {
      const full = this.pages[prev]!;
      this.spilledAt[prev] = this.spill.append(new Uint8Array(full.buf));
      this.pages[prev] = null;
      this.spilled++;
      reuse = full.buf; // written synchronously: its memory takes the next records
      new Uint8Array(reuse).fill(0);
    }
    const p = recordPage(at, this.width, reuse);
    this.pages.push(p);
    return p;
  }

  /** Record `i`'s page, read back when spilled; `write`: it will be changed (written back on eviction). */
  page(i: number, write = false): RecordPage {
    const at = i >>> RECORD_BITS;
    const p = this.pages[at] ?? this.load(at);
    if (write) p.dirty = true;
    return p;
  }

  private load(at: number): RecordPage {
    const hit = this.cache.findIndex((c) => c.index === at);
    if (hit >= 0) {
      const p = this.cache[hit]!;
      this.cache.splice(hit, 1);
      this.cache.push(p);
      return p;
    }
    if (++this.reads > this.spilled * READS_PER_PAGE + READ_MARGIN) return this.unspill(at);
    let p: RecordPage;
    if (this.cache.length < CACHED) p = recordPage(at, this.width);
    else {
      p = this.cache.shift()!;
      this.writeBack(p);
      p.index = at;
    }
    this.readBack(p);
    this.cache.push(p);
    return p;
  }

  /** Page p.index's bytes from the spill, into p. */
  private readBack(p: RecordPage): void {
    this.spill!.read(this.spilledAt[p.index]!, p.buf.byteLength, Buffer.from(p.buf));
    p.dirty = false;
  }

  private writeBack(p: RecordPage): void {
    if (p.dirty) this.spill!.overwrite(this.spilledAt[p.index]!, new Uint8Array(p.buf));
    p.dirty = false;
  }

  /** Used at random: every spilled page back in memory, for good. */
  private unspill(want: number): RecordPage {
    for (const c of this.cache.splice(0)) this.writeBack(c);
    for (let at = 0; at < this.pages.length; at++) {
      if (this.pages[at]) continue;
      const p = recordPage(at, this.width);
      this.readBack(p);
      this.pages[at] = p;
    }
    this.spill = undefined;
    return this.pages[want]!;
  }
}
