/**
 * zstd-compress: archive bytes in, one zstd frame out (a byte stream, not the
 * member stream). `zstd -d`, `tar --zstd` and pgbb's zstd-decompress read it.
 *
 *   zstdCompress({ level?: 1..19 = 3, workers?: 0..256 })
 *
 * In:  Buffers (tar bytes of one archive, or the whole stdout stream).
 * Out: zstd bytes in chunks of about OUT_BYTES (fewer, larger writes for the
 *      file writer and stdout); one frame with a content checksum, so a
 *      flipped bit is caught by every decoder, not only by the tar layer.
 * Result: `result` = { bytesIn, bytesOut } once the stream has ended.
 * Errors: UsageError for a level or workers value out of range (at once, in
 *   the factory), and for member events written to it (put tarPack() before
 *   it; see ./stream-kinds.ts); CompressionError if libzstd reports a failure.
 *
 * Cores: `workers` is libzstd's own nbWorkers — the bundled libzstd of
 * zstd-napi is built with ZSTD_MULTITHREAD (bound 0..256), the same machinery
 * as pg_basebackup's `client-zstd:workers=N`. With N ≥ 1 this thread only
 * copies input into job buffers and N threads compress them; when every
 * worker is busy, compressStream2 waits for the oldest job, which is the
 * backpressure we want (the socket read stops too). Default: the machine's
 * available parallelism capped at 4, or 0 (single-threaded) on one core.
 * Why not worker_threads compressing independent 4 MiB frames: measured on
 * pgbench relation files (2 cores, level 1, 2 workers) both ran at about the
 * same speed (1.4–1.7 GB/s, noisy); libzstd's workers need no JS threads, no
 * block copies of our own, and give one frame, as pg_basebackup writes.
 *
 * Memory: bounded by libzstd's job buffers plus OUT_BYTES here plus the
 * readable side's highWaterMark: push() returning false holds the write
 * callback (Transform semantics), so a slow consumer slows the producer.
 * libzstd sizes a job at 4 windows (2 MiB at level 1, 8 MiB at level 3) and
 * keeps several in flight per worker, each with its input and output: a
 * `-F tar -Z zstd` backup (level 3, 2 workers) peaked at 130 MB RSS (129–139).
 * Up to level 6 jobs are 1 MiB (jobBytes): 92 MB (91–96), as fast, and no
 * larger (pgbench scale 100: 71.9 MB against 72.8; on 128 MB of it levels
 * 1–6 came within 3%). A job re-reads an overlap from the one before, an
 * eighth of a window up to level 7 (256 KiB at most), more from level 8;
 * from level 9 the window is 4 MiB and the overlap as long as a 1 MiB job,
 * and small jobs cost time (level 9 +37%, level 15 4.6×): from level 7
 * (not measured) libzstd's size stays.
 * bench/README.md, "zstd job size", has the figures.
 *
 * Cleanup: the context is dropped in _flush (after the frame ends) and in
 * _destroy (error, abort). zstd-napi 0.0.13 has no explicit free; its
 * finalizer runs ZSTD_freeCCtx (which joins the worker threads) when V8
 * collects the wrapper, and the binding reports the context's size to V8 as
 * external memory, so collection comes promptly. test/transforms/zstd.test.ts
 * checks that a destroyed compressor's threads go away after a GC.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { availableParallelism } from 'node:os';
import * as binding from 'zstd-napi/binding';
import { CompressionError, UsageError } from '../src/errors';
import { ZSTD_DEFAULT_LEVEL, ZSTD_MAX_LEVEL, ZSTD_MAX_WORKERS, ZSTD_MIN_LEVEL } from '../src/codec/compression';
import { guardBytes, type Stage } from './stream-kinds';
import { release } from '../src/io/slab-pool';

export interface ZstdCompressOptions {
  /** 1..19, default 3 (zstd's and pg_basebackup's default). */
  level?: number;
  /** libzstd worker threads; 0 compresses on the calling thread. */
  workers?: number;
}

export interface ZstdCompressResult {
  bytesIn: number;
  bytesOut: number;
}

/** 256 KiB: the file writer's batch size (src/io/file-writer.ts). */
const OUT_BYTES = 256 * 1024;
const EMPTY = Buffer.alloc(0);

/** libzstd's job size for `level` with `workers` threads, or undefined for its own (see Memory above). */
export function jobBytes(level: number, workers: number): number | undefined {
  return workers > 0 && level <= 6 ? 1024 * 1024 : undefined;
}

/** Workers when none are asked for: more cores than one are used, up to 4. */
export function defaultZstdWorkers(): number {
  const cores = availableParallelism();
  return cores > 1 ? Math.min(cores, 4) : 0;
}

/**
 * The options with defaults applied; UsageError when out of range. The one
 * validator: the constructor calls it (so a sink that builds its compressor
 * up front fails before the server is contacted), and a caller that wants
 * the check earlier still (the CLI's option parsing) calls it itself.
 */
export function checkZstdOptions(opts: ZstdCompressOptions): Required<ZstdCompressOptions> {
  const level = opts.level ?? ZSTD_DEFAULT_LEVEL;
  const workers = opts.workers ?? defaultZstdWorkers();
  if (!Number.isInteger(level) || level < ZSTD_MIN_LEVEL || level > ZSTD_MAX_LEVEL) {
    throw new UsageError(`zstd level ${level} is out of range (${ZSTD_MIN_LEVEL}..${ZSTD_MAX_LEVEL})`);
  }
  if (!Number.isInteger(workers) || workers < 0 || workers > ZSTD_MAX_WORKERS) {
    throw new UsageError(`zstd workers ${workers} is out of range (0..${ZSTD_MAX_WORKERS})`);
  }
  return { level, workers };
}

export class ZstdCompress extends Transform implements Stage<'bytes', 'bytes'> {
  readonly type = 'zstd-compress';
  readonly takes = 'bytes' as const;
  readonly gives = 'bytes' as const;
  readonly stageName = 'zstdCompress()';
  readonly level: number;
  readonly workers: number;
  private cctx: binding.CCtx | null;
  private out: Buffer = Buffer.allocUnsafe(OUT_BYTES);
  private used = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private done: ZstdCompressResult | null = null;

  constructor(opts: ZstdCompressOptions = {}) {
    super({ writableHighWaterMark: 64 * 1024, readableHighWaterMark: OUT_BYTES });
    const { level, workers } = checkZstdOptions(opts);
    this.level = level;
    this.workers = workers;
    const cctx = new binding.CCtx();
    try {
      cctx.setParameter(binding.CParameter.compressionLevel, level);
      cctx.setParameter(binding.CParameter.checksumFlag, 1);
      if (workers > 0) cctx.setParameter(binding.CParameter.nbWorkers, workers);
      const job = jobBytes(level, workers);
      if (job !== undefined) cctx.setParameter(binding.CParameter.jobSize, job);
    } catch (err) {
      throw new CompressionError(`zstd: could not set up compression (level ${level}, ${workers} workers): ${message(err)}`, { cause: err });
    }
    this.cctx = cctx;
    guardBytes(this);
  }

  /** { bytesIn, bytesOut } after the stream ended; null before. */
  get result(): ZstdCompressResult | null {
    return this.done;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    try {
      this.bytesIn += chunk.length;
      this.compress(chunk, binding.EndDirective.continue);
    } catch (err) {
      return callback(this.failure(err));
    }
    // compressStream2 has copied it (into its job buffers, or compressed it): a recycled read slab may be reused.
    release(chunk);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.compress(EMPTY, binding.EndDirective.end);
      this.pushOut();
    } catch (err) {
      return callback(this.failure(err));
    }
    this.done = { bytesIn: this.bytesIn, bytesOut: this.bytesOut };
    this.release();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.release();
    callback(err);
  }

  /**
   * Feeds `src` to libzstd until it is consumed (and, for `end`, until the
   * frame is complete). Output gathers in `out`; a full `out` is pushed and
   * libzstd asked again, since it may hold more finished output.
   */
  private compress(src: Buffer, op: binding.EndDirective): void {
    const cctx = this.cctx;
    if (!cctx) throw new Error('compressor already released');
    for (;;) {
      const [remaining, produced, consumed] = cctx.compressStream2(this.out.subarray(this.used), src, op);
      this.used += produced;
      src = src.subarray(consumed);
      if (this.used === this.out.length) this.pushOut();
      else if (src.length === 0 && (op === binding.EndDirective.continue || remaining === 0)) return;
    }
  }

  private pushOut(): void {
    if (this.used === 0) return;
    const chunk = this.out.subarray(0, this.used);
    this.bytesOut += chunk.length;
    // The pushed bytes belong to the reader now: never write into them again.
    this.out = Buffer.allocUnsafe(OUT_BYTES);
    this.used = 0;
    this.push(chunk);
  }

  private release(): void {
    this.cctx = null;
    this.out = EMPTY;
    this.used = 0;
  }

  private failure(err: unknown): Error {
    this.release();
    if (err instanceof CompressionError) return err;
    return new CompressionError(`zstd compression failed (level ${this.level}, ${this.workers} workers): ${message(err)}`, { cause: err });
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function zstdCompress(opts: ZstdCompressOptions = {}): ZstdCompress {
  return new ZstdCompress(opts);
}
