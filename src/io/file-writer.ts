/**
 * Byte sinks that turn many small chunks into few large writes: a backup
 * arrives in ≤ 32 KiB pieces, and one write (one thread-pool round trip) per
 * piece costs more CPU than the copy itself.
 *
 * - `FileWriter`: a Writable file that gathers chunks (by reference, no copy)
 *   and writes them with one positioned writev per `batchBytes`.
 *
 * The writev itself is synchronous, as pg_basebackup's writes are: a 1 MiB
 * write into the page cache takes about a millisecond, and handing it to the
 * libuv thread pool instead cost 1.7× the wall time of pg_basebackup -Ft in
 * bench/ (thread hand-offs on a 2-core machine shared with the server).
 * - `coalesce()`: a Transform that concatenates chunks into `batchBytes`
 *   buffers, for outputs such as stdout that write each chunk synchronously.
 */
import { Transform, Writable } from 'node:stream';
import { promises as fs, writevSync } from 'node:fs';
import { ioError } from '../errors';
import { release } from './slab-pool';

/**
 * 256 KiB: measured against 32 KiB (no batching), 64 KiB, 128 KiB, 1 MiB and
 * 4 MiB in bench/ — larger batches write data that has left the CPU cache.
 */
export const DEFAULT_BATCH = 256 * 1024;

/**
 * 32 KiB, about one CopyData message: for the files of a data directory
 * (plain backup, restore, refresh), written as pg_basebackup -Fp writes
 * them. With 256 KiB batches a plain backup's kernel time doubled on the
 * 2-core VM (pgbench scale 100: 1.7-2.6 s of system time against 1.36-1.40 s
 * at 32 KiB, pg_basebackup 1.5-1.9 s), nearly all of it in the page-cache
 * copy (copy_folio_from_iter_atomic: 13-35% of `perf` samples against 1.7%).
 * The likely cause: 256 KiB writes at 256 KiB-aligned offsets let the page
 * cache take large folios, fresh high-order memory that a VM's host backs
 * only when first touched. base.tar's 256 KiB writes, shifted off that
 * alignment by the tar headers, did not pay it; tar files and stdout keep
 * DEFAULT_BATCH (bench/README.md, "Write size of a data directory's files").
 */
export const DATA_FILE_BATCH = 32 * 1024;

/**
 * Gathers buffers for one file and writes them in batches at increasing
 * offsets; with position null, at the descriptor's own position (stdout,
 * src/io/stdout-output.ts).
 */
export class WriteBatcher {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private position: number | null;

  constructor(
    private readonly fh: { readonly fd: number },
    private readonly file: string,
    position: number | null = 0,
    private readonly batchBytes = DEFAULT_BATCH,
  ) {
    this.position = position;
  }

  /** Bytes accepted so far end at this offset. */
  get end(): number {
    return (this.position ?? 0) + this.pendingBytes;
  }

  /** Adds a chunk; resolves at once unless a batch is due. */
  add(chunk: Buffer): Promise<void> | null {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    return this.pendingBytes >= this.batchBytes ? this.flush() : null;
  }

  /** Writes what is gathered (synchronously; see the top of this file). */
  async flush(): Promise<void> {
    if (!this.pendingBytes) return;
    const batch = this.pending;
    let bufs = batch;
    let at = this.position;
    if (this.position !== null) this.position += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    try {
      // writev may write less than asked (e.g. disk nearly full): finish the rest.
      const fd = this.fh.fd;
      while (bufs.length) {
        const bytesWritten = at === null ? writevSync(fd, bufs) : writevSync(fd, bufs, at);
        if (at !== null) at += bytesWritten;
        let skip = bytesWritten;
        while (bufs.length && skip >= bufs[0].length) {
          skip -= bufs[0].length;
          bufs = bufs.slice(1);
        }
        if (skip && bufs.length) bufs = [bufs[0].subarray(skip), ...bufs.slice(1)];
      }
    } catch (err) {
      throw ioError('could not write to file', this.file, err);
    }
    // The kernel has the bytes: recycled read memory may be read into again.
    for (const b of batch) release(b);
  }
}

export interface FileWriterOptions {
  mode?: number;
  /** Open flags; default 'wx' (never overwrite). */
  flags?: string;
  batchBytes?: number;
}

export class FileWriter extends Writable {
  private fh: fs.FileHandle | null = null;
  private batcher: WriteBatcher | null = null;

  constructor(
    readonly path: string,
    private readonly opts: FileWriterOptions = {},
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _construct(callback: (err?: Error | null) => void): void {
    fs.open(this.path, this.opts.flags ?? 'wx', this.opts.mode ?? 0o600).then(
      (fh) => {
        this.fh = fh;
        this.batcher = new WriteBatcher(fh, this.path, 0, this.opts.batchBytes);
        callback();
      },
      (err) => callback(ioError('could not create file', this.path, err)),
    );
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    const due = this.batcher!.add(chunk);
    if (due) due.then(() => callback(), callback);
    else callback();
  }

  override _final(callback: (err?: Error | null) => void): void {
    const finish = async () => {
      await this.batcher!.flush();
      const fh = this.fh!;
      this.fh = null;
      await fh.close();
    };
    finish().then(() => callback(), callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const fh = this.fh;
    this.fh = null;
    if (!fh) return callback(err);
    fh.close().then(() => callback(err), () => callback(err));
  }
}

export function coalesce(batchBytes = 256 * 1024): Transform {
  let pending: Buffer[] = [];
  let bytes = 0;
  return new Transform({
    highWaterMark: batchBytes,
    transform(chunk: Buffer, _enc, cb) {
      pending.push(chunk);
      bytes += chunk.length;
      if (bytes < batchBytes) return cb();
      const out = Buffer.concat(pending, bytes);
      pending = [];
      bytes = 0;
      cb(null, out);
    },
    flush(cb) {
      cb(null, bytes ? Buffer.concat(pending, bytes) : undefined);
    },
  });
}
