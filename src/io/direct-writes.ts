/**
 * Page writes that dirty no page-cache folio (O_DIRECT), for a refresh's
 * in-place updates (sinks/refresh-page-writer.ts).
 *
 * Why: the page cache keeps a file in folios as large as the writes that
 * filled it (the backup's 256 KiB batches); a buffered 8 KiB write into one
 * dirties — and the kernel counts as written — the whole folio: on the
 * development machine (Linux 6.18, ext4) 48 scattered 8 KiB writes into a
 * freshly written 24 MiB file counted 12.6 MB, the same writes with
 * O_DIRECT 393 KB. A direct write also drops the cached copy of its range,
 * so later reads see it.
 *
 * O_DIRECT wants the offset, the length and the buffer's address aligned
 * (the device's logical block, 512 or 4096 bytes). JavaScript cannot see a
 * buffer's address, so the shift inside a larger buffer that the kernel
 * accepts is found once by reading the file's first block with each
 * candidate (a refused read changes nothing). Where the filesystem refuses
 * O_DIRECT (tmpfs, some FUSE), or no shift works, there is no direct
 * descriptor and the caller writes through the page cache as before.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { writeAllSync } from './write-all';

/** Offsets and lengths of direct writes are multiples of this (the largest logical block in use). */
export const DIRECT_ALIGN = 4096;
const BUFFER = 1024 * 1024;

/** Shared by every DirectWrites (their writes are synchronous); each finds its own shift in it. */
let raw: Buffer | null = null;

export class DirectWrites {
  private constructor(
    private readonly fd: number,
    private readonly buf: Buffer,
  ) {}

  /** A direct descriptor on the file behind `fd` (reopened through /proc, so the very same file), or null where that cannot be had. */
  static open(fd: number): DirectWrites | null {
    let dfd: number;
    try {
      dfd = openSync(`/proc/self/fd/${fd}`, constants.O_RDWR | constants.O_DIRECT);
    } catch {
      return null;
    }
    const buf = probe(dfd);
    if (!buf) {
      closeSync(dfd);
      return null;
    }
    return new DirectWrites(dfd, buf);
  }

  /** True when [pos, pos + length) can be written directly. */
  fits(pos: number, length: number): boolean {
    return pos % DIRECT_ALIGN === 0 && length % DIRECT_ALIGN === 0;
  }

  /**
   * Writes `data` (aligned as fits() says) at `pos`, through the aligned
   * buffer; synchronous (the buffer is shared). False when the kernel
   * refuses the alignment (EINVAL) before anything was written: the caller
   * writes through the page cache instead.
   */
  write(data: Buffer, pos: number): boolean {
    for (let at = 0; at < data.length; ) {
      const n = Math.min(this.buf.length, data.length - at);
      data.copy(this.buf, 0, at, at + n);
      try {
        writeAllSync(this.fd, this.buf, 0, n, pos + at);
      } catch (err) {
        if (at === 0 && (err as NodeJS.ErrnoException).code === 'EINVAL') return false;
        throw err;
      }
      at += n;
    }
    return true;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** A BUFFER-byte view the kernel accepts for direct I/O on `dfd`, or null. */
function probe(dfd: number): Buffer | null {
  const r = (raw ??= Buffer.allocUnsafeSlow(BUFFER + DIRECT_ALIGN));
  for (let shift = 0; shift < DIRECT_ALIGN; shift += 16) {
    try {
      readSync(dfd, r, shift, DIRECT_ALIGN, 0);
      return r.subarray(shift, shift + BUFFER);
    } catch {
      // EINVAL: not aligned for this device; try the next shift
    }
  }
  return null;
}
