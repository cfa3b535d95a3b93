/**
 * The server's manifest, held while the streamed WAL's `pg_wal` archive goes
 * first (the manifest lists that WAL and marks the backup whole, so it must
 * come last). Pieces are kept as they came; never joined.
 *
 * Memory: up to `memoryLimit` bytes (default 1 MiB) in memory; beyond that
 * the pieces go to a file `pgbb.manifest.partial` in `dir` (the WAL spool
 * directory, or a plain target's pg_wal/ — beside the WAL, on the disk the
 * backup is written to), created O_EXCL|O_NOFOLLOW, 0600, and read back in
 * pieces of at most `readSize` (default 256 KiB). The file's name goes as
 * soon as it is read back (`detach()`, before the spool directory is
 * removed), and on discard(). Read back with `recycle` (recycleBuffers),
 * the pieces are recycled slab views, each retained for the stage that
 * writes it to give back: a 100,000-file manifest no longer leaves ~15 MB
 * of read buffers to the collector. The pieces that came (retained by the
 * source) are given back once written to the file and out of the tail, so
 * that the slabs the socket read them into come back while the manifest
 * is still arriving (before, a 15 MB manifest pinned 59 slabs).
 *
 * The manifest's WAL-Ranges (wanted before the WAL archive goes out) sit at
 * its end: the last `tailSize` bytes (default 256 KiB) are kept in memory too.
 *
 * A manifest over `maxBytes` (default LIMITS.manifest, the most pgbb reads
 * back) is refused as it grows past it: a server that never ends its
 * manifest fills neither memory nor the disk.
 */
import { closeSync, constants, openSync, read, unlinkSync } from 'node:fs';
import { writeAllSync } from '../io/write-all';
import path from 'node:path';
import { promisify } from 'node:util';
import { IoError, ioError } from '../errors';
import { LIMITS } from '../io/read-limited';
import { release, retain, SlabReader } from '../io/slab-pool';

export const MANIFEST_SPOOL_NAME = 'pgbb.manifest.partial';

export interface ManifestHoldOptions {
  /** Where the file goes once the manifest outgrows memory (null: always memory). */
  dir: () => string | null;
  memoryLimit?: number;
  readSize?: number;
  tailSize?: number;
  maxBytes?: number;
}

export class ManifestHold {
  private pieces: Buffer[] = [];
  private held = 0;
  private fd: number | null = null;
  private file: string | null = null;
  private named = false;
  private written = 0;
  /** A read is in flight on fd: discard() leaves the close to it (no fd reuse under a pending read). */
  private reading = false;
  private tailPieces: Buffer[] = [];
  private tailHeld = 0;
  private readonly memoryLimit: number;
  private readonly readSize: number;
  private readonly tailSize: number;
  private readonly maxBytes: number;

  constructor(private readonly o: ManifestHoldOptions) {
    this.memoryLimit = o.memoryLimit ?? 1024 * 1024;
    this.readSize = o.readSize ?? 256 * 1024;
    this.tailSize = o.tailSize ?? 256 * 1024;
    this.maxBytes = o.maxBytes ?? LIMITS.manifest.maxBytes;
  }

  /** Bytes held so far. */
  get size(): number {
    return this.held + this.written;
  }

  /** True once the pieces went to a file. */
  get spooled(): boolean {
    return this.fd !== null;
  }

  add(piece: Buffer): void {
    if (this.size + piece.length > this.maxBytes) {
      throw new IoError(`backup_manifest from the server grows past ${this.maxBytes} bytes, the most a manifest can hold: refusing it`);
    }
    this.keepTail(piece);
    if (this.fd === null && this.held + piece.length > this.memoryLimit && this.o.dir() !== null) this.spool();
    if (this.fd === null) {
      this.pieces.push(piece);
      this.held += piece.length;
      return;
    }
    this.write(piece);
  }

  /** The manifest's last bytes (all of it when small): where WAL-Ranges are. */
  tail(): Buffer {
    if (this.fd === null) return Buffer.concat(this.pieces);
    return Buffer.concat(this.tailPieces);
  }

  /** Removes the file's name; its bytes stay readable until the end of read(). */
  detach(): void {
    if (this.file && this.named) {
      this.named = false;
      try {
        unlinkSync(this.file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('could not remove', this.file, err);
      }
    }
  }

  /** The pieces, in order: as they came, or read back from the file (with `recycle`, into recycled slabs). */
  async *read(recycle = false): AsyncGenerator<Buffer> {
    if (this.fd === null) {
      const pieces = this.pieces;
      this.pieces = [];
      yield* pieces;
      return;
    }
    this.detach();
    // The tail was read (WAL-Ranges) before the manifest goes out: its pieces go back.
    for (const p of this.tailPieces.splice(0)) release(p);
    this.tailHeld = 0;
    const fd = this.fd;
    // Only a file is read back: a manifest held in memory takes no slab.
    const slabs = recycle ? new SlabReader() : null;
    try {
      for (let at = 0; at < this.written && this.fd !== null; ) {
        const want = Math.min(this.readSize, this.written - at);
        const into = slabs?.next();
        let buf = into ? into.subarray(0, Math.min(into.length, want)) : Buffer.allocUnsafe(want);
        this.reading = true;
        try {
          // A slab read is taken as it comes (short or not): the next one goes to the slab's free tail.
          if (slabs) buf = slabs.got(await readAt(fd, buf, 0, at, this.file!));
          else for (let got = 0; got < buf.length; ) got += await readAt(fd, buf, got, at + got, this.file!);
        } finally {
          this.reading = false;
          // discarded meanwhile: the close was left to us
          if (this.fd === null) closeSync(fd!);
        }
        if (this.fd === null) return;
        at += buf.length;
        // Held before it is handed on: the next read may move to another slab.
        if (slabs) retain(buf);
        yield buf;
      }
    } finally {
      slabs?.finish();
      if (this.fd === fd) this.discard();
    }
  }

  /** Synchronous: drops what is held, the file and its name (from a source's destroy()). */
  discard(): void {
    this.pieces = [];
    this.tailPieces = [];
    try {
      this.detach();
    } catch {
      // Best effort while tearing down.
    }
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      if (this.reading) return; // read() closes it
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }

  private keepTail(piece: Buffer): void {
    this.tailPieces.push(piece);
    this.tailHeld += piece.length;
    while (this.tailPieces.length > 1 && this.tailHeld - this.tailPieces[0].length >= this.tailSize) {
      const old = this.tailPieces.shift()!;
      this.tailHeld -= old.length;
      // Already in the file (a piece is written after it joins the tail): nothing holds it now.
      if (this.fd !== null) release(old);
    }
  }

  private spool(): void {
    const file = path.join(this.o.dir()!, MANIFEST_SPOOL_NAME);
    const flags = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    try {
      this.fd = openSync(file, flags, 0o600);
    } catch (err) {
      throw ioError('could not create manifest spool file', file, err);
    }
    this.file = file;
    this.named = true;
    const pieces = this.pieces;
    this.pieces = [];
    this.held = 0;
    for (const p of pieces) this.write(p);
  }

  /** In the file: the piece is not needed any more, unless the tail keeps it. */
  private write(piece: Buffer): void {
    try {
      writeAllSync(this.fd!, piece, 0, piece.length, this.written);
    } catch (err) {
      throw ioError('could not write manifest spool file', this.file!, err);
    }
    this.written += piece.length;
    if (!this.tailPieces.includes(piece)) release(piece);
  }
}

const readAsync = promisify(read);

async function readAt(fd: number, buf: Buffer, off: number, pos: number, file: string): Promise<number> {
  let n: number;
  try {
    ({ bytesRead: n } = await readAsync(fd, buf, off, buf.length - off, pos));
  } catch (err) {
    throw ioError('could not read manifest spool file', file, err);
  }
  if (n === 0) throw new IoError(`manifest spool file "${file}" ended early`);
  return n;
}
