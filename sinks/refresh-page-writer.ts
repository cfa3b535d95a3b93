/**
 * The refresh sink's writes into a file it updates in place
 * (sinks/refresh-files.ts): chunk-diff passes on whole changed chunks, but a
 * chunk that differs often differs in one 8 KiB page of 128 (an update
 * every 200th row rewrote 2.4× the bytes that changed). So the bytes of a
 * changed chunk are compared, page by page, with the bytes already in the
 * file — read locally, which costs a read, not a write — and only the pages
 * that differ are written.
 *
 * Contiguous data is gathered (by reference, as the write batcher does) up
 * to `window` bytes, then the same range is read from the file, compared at
 * page boundaries (offsets from the start of the file: chunks start at
 * multiples of 64 KiB, so PostgreSQL's pages line up), and runs of differing
 * pages are written with one positioned write each. Bytes past the file's
 * end differ by definition.
 *
 * Crash safety: `beforeFirstWrite` runs (and completes) before the first
 * byte of the file changes: the refresh journals the file there, so that
 * after a crash the next refresh reads it again instead of trusting its
 * map entry. A file whose changed chunks all match what is on disk is
 * never written nor journaled.
 *
 * Reads go through the page cache (what the backup just wrote is often
 * still there); runs of whole 4 KiB blocks are written with O_DIRECT where
 * the filesystem allows (src/io/direct-writes.ts: a buffered 8 KiB write
 * into a large cached folio dirties all of it), the rest (a file's
 * unaligned tail) through the page cache. Reads and writes are synchronous,
 * as the write batcher's are (see src/io/file-writer.ts): one thread-pool
 * hand-off per MiB cost more than the page-cache copy on the 2-core machine.
 */
import { readSync, type promises as fs } from 'node:fs';
import { writeAllSync } from '../src/io/write-all';
import { ioError } from '../src/errors';
import { showPath } from '../src/codec/path-bytes';
import { DirectWrites } from '../src/io/direct-writes';
import { release } from '../src/io/slab-pool';

/** PostgreSQL's BLCKSZ: what a change touches at the least. */
export const PAGE_SIZE = 8192;
const WINDOW = 1024 * 1024;

export class PageDiffWriter {
  private pieces: Buffer[] = [];
  private start = 0;
  private pendingBytes = 0;
  private disk: Buffer = Buffer.alloc(0);
  private incoming: Buffer = Buffer.alloc(0);
  private journaled = false;
  /** Bytes written (pages that differed). */
  bytesWritten = 0;
  /** Bytes compared and found equal (not written). */
  bytesSame = 0;

  constructor(
    private readonly fh: fs.FileHandle,
    private readonly file: string,
    /** The file's size when opened: bytes past it are not read. */
    private diskSize: number,
    private readonly beforeFirstWrite: () => Promise<void>,
    private readonly window = WINDOW,
    /** Direct writes (default: where the file allows them); null: through the page cache only. */
    private readonly direct: DirectWrites | null = DirectWrites.open(fh.fd),
  ) {}

  /** Releases the direct descriptor (the file handle is the caller's). */
  close(): void {
    this.direct?.close();
  }

  /** Offset the gathered bytes end at. */
  get end(): number {
    return this.start + this.pendingBytes;
  }

  /** True once a byte was written. */
  get changed(): boolean {
    return this.journaled;
  }

  /** Adds data at `offset`; a gap flushes what was gathered first. Resolves at once unless a window is due. */
  add(offset: number, chunk: Buffer): Promise<void> | null {
    if (this.pendingBytes && offset !== this.end) return this.flush().then(() => this.add(offset, chunk) ?? undefined);
    if (!this.pendingBytes) this.start = offset;
    this.pieces.push(chunk);
    this.pendingBytes += chunk.length;
    // A window ends on a page boundary where it can, so that runs of pages stay aligned for direct writes (bounded: at twice the window it ends anyway).
    const due = this.pendingBytes >= 2 * this.window || (this.pendingBytes >= this.window && this.end % PAGE_SIZE === 0);
    return due ? this.flush() : null;
  }

  /** Compares what is gathered with the file and writes the pages that differ. */
  async flush(): Promise<void> {
    const n = this.pendingBytes;
    if (!n) return;
    const start = this.start;
    const data = this.gathered(n);
    const pieces = this.pieces;
    this.pieces = [];
    this.pendingBytes = 0;
    const fd = this.fh.fd;
    let onDisk = Math.max(0, Math.min(n, this.diskSize - start));
    const disk = this.scratch('disk', onDisk);
    try {
      for (let at = 0; at < onDisk; ) {
        const got = readSync(fd, disk, at, onDisk - at, start + at);
        if (got === 0) onDisk = at; // shorter than when opened: the rest differs
        at += got;
      }
    } catch (err) {
      throw ioError('could not read', showPath(this.file), err);
    }
    // Segments at page boundaries; a run of differing ones is one write.
    let run = -1;
    for (let at = 0; at < n; ) {
      const segEnd = Math.min(n, PAGE_SIZE - ((start + at) % PAGE_SIZE) + at);
      const same = segEnd <= onDisk && data.compare(disk, at, segEnd, at, segEnd) === 0;
      if (same) {
        this.bytesSame += segEnd - at;
        if (run >= 0) await this.write(data, run, at, start);
        run = -1;
      } else if (run < 0) run = at;
      at = segEnd;
    }
    if (run >= 0) await this.write(data, run, n, start);
    // Compared and written (synchronously): recycled read memory may be read into again.
    for (const p of pieces) release(p);
  }

  private async write(data: Buffer, from: number, to: number, start: number): Promise<void> {
    if (!this.journaled) {
      await this.beforeFirstWrite();
      this.journaled = true;
    }
    try {
      const direct = this.direct?.fits(start + from, to - from) && this.direct.write(data.subarray(from, to), start + from);
      if (!direct) writeAllSync(this.fh.fd, data, from, to - from, start + from);
    } catch (err) {
      throw ioError('could not write', showPath(this.file), err);
    }
    this.bytesWritten += to - from;
    this.diskSize = Math.max(this.diskSize, start + to);
  }

  /** The gathered pieces as one buffer: the piece itself when there is one, else copied into a reused buffer. */
  private gathered(n: number): Buffer {
    if (this.pieces.length === 1) return this.pieces[0]!;
    const out = this.scratch('incoming', n);
    let at = 0;
    for (const p of this.pieces) {
      p.copy(out, at);
      at += p.length;
    }
    return out;
  }

  private scratch(which: 'disk' | 'incoming', n: number): Buffer {
    if (this[which].length < n) this[which] = Buffer.allocUnsafe(Math.max(n, this.window));
    return this[which].subarray(0, n);
  }
}
