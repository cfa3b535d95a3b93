/**
 * zstd-decompress: zstd bytes in, the original bytes out (a byte stream).
 *
 *   zstdDecompress({ name?: 'base.tar.zst' })
 *
 * In:  one or more concatenated zstd frames (skippable frames are skipped),
 *      as pgbb, pg_basebackup or the zstd CLI write them.
 * Out: the decompressed bytes, in chunks of about 128 KiB.
 * Result: `result` = { bytesIn, bytesOut, frames } once the stream has ended.
 * Errors: UsageError for member events written to it (./stream-kinds.ts);
 * CompressionError (code 'compression', naming `name` when given):
 *   - input that is not zstd or is corrupt (libzstd's reason, and how far
 *     into the compressed bytes it was found);
 *   - input that ends inside a frame (a truncated file or stream);
 *   - empty input: a compressor always writes at least one frame, so zero
 *     bytes means the file was cut before its first frame.
 *
 * Backpressure: a few compressed bytes can stand for gigabytes, so this is a
 * Duplex that decodes one output buffer at a time and only while the reader
 * wants more (push() true); the write callback waits until the chunk is
 * entirely decoded. Memory is one output buffer beyond the readable
 * highWaterMark, plus libzstd's window (≤ 128 MiB, its default windowLogMax).
 *
 * Cleanup: the context is dropped at the end and in _destroy; zstd-napi frees
 * it (ZSTD_freeDCtx) when V8 collects the wrapper, see zstd-compress.ts.
 */
import * as binding from 'zstd-napi/binding';
import { CompressionError } from '../src/errors';
import { guardBytes, type Stage } from './stream-kinds';
import { PulledDecoder } from './pulled-decoder';

export interface ZstdDecompressOptions {
  /** What the bytes are (a file or object name), for error messages. */
  name?: string;
}

export interface ZstdDecompressResult {
  bytesIn: number;
  bytesOut: number;
  frames: number;
}

const OUT_BYTES = binding.dStreamOutSize();
const EMPTY = Buffer.alloc(0);

export class ZstdDecompress extends PulledDecoder implements Stage<'bytes', 'bytes'> {
  readonly type = 'zstd-decompress';
  readonly takes = 'bytes' as const;
  readonly gives = 'bytes' as const;
  readonly stageName = 'zstdDecompress()';
  private dctx: binding.DCtx | null = new binding.DCtx();
  private readonly what: string;
  /** The chunk being decoded (its write callback held meanwhile). */
  private input: Buffer = EMPTY;
  /** libzstd filled the last output buffer: it may hold more. */
  private moreOutput = false;
  private inFrame = false;
  private pumping = false;
  private bytesIn = 0;
  private bytesOut = 0;
  private frames = 0;
  private done: ZstdDecompressResult | null = null;

  constructor(opts: ZstdDecompressOptions = {}) {
    super({ writableHighWaterMark: 64 * 1024, readableHighWaterMark: 2 * OUT_BYTES });
    this.what = opts.name ? `zstd data in "${opts.name}"` : 'zstd data';
    guardBytes(this, 'it reads zstd bytes (a file, a download)');
  }

  get result(): ZstdDecompressResult | null {
    return this.done;
  }

  protected accept(chunk: Buffer): void {
    this.input = chunk;
  }

  /**
   * Decodes while the reader wants output; hands back the write callback once
   * a chunk is used up (the next chunk may arrive synchronously, hence the
   * loop and the re-entry guard); ends the stream after the last chunk.
   */
  protected pump(): void {
    if (this.pumping || !this.dctx) return;
    this.pumping = true;
    try {
      for (;;) {
        while (this.wanted && (this.input.length > 0 || this.moreOutput) && this.dctx) this.step();
        if (!this.dctx || this.input.length > 0 || this.moreOutput) return;
        const written = this.inputCallback;
        if (written) {
          this.inputCallback = null;
          written();
          continue;
        }
        if (this.finalCallback) this.finish();
        return;
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.pumping = false;
    }
  }

  /** One libzstd call: at most one output buffer. */
  private step(): void {
    const out = Buffer.allocUnsafe(OUT_BYTES);
    let ret: number;
    let produced: number;
    let consumed: number;
    try {
      [ret, produced, consumed] = this.dctx!.decompressStream(out, this.input);
    } catch (err) {
      throw new CompressionError(
        `${this.what} is corrupt or not zstd (after ${this.bytesIn} compressed bytes): ${(err as Error).message ?? err}`,
        { cause: err },
      );
    }
    this.input = this.input.subarray(consumed);
    this.bytesIn += consumed;
    this.moreOutput = produced === out.length;
    if (consumed > 0 || produced > 0) {
      // ret is 0 exactly when a frame has been decoded and flushed.
      if (ret === 0) this.frames++;
      this.inFrame = ret !== 0;
    }
    if (produced > 0) {
      this.bytesOut += produced;
      if (!this.push(out.subarray(0, produced))) this.wanted = false;
    }
  }

  /** Errors thrown here reach the final callback through fail(). */
  private finish(): void {
    if (this.bytesIn === 0) throw new CompressionError(`${this.what} is empty: no zstd frame (truncated before the first frame?)`);
    if (this.inFrame) {
      throw new CompressionError(`${this.what} is truncated: it ends inside a zstd frame after ${this.bytesIn} compressed bytes`);
    }
    const cb = this.finalCallback!;
    this.finalCallback = null;
    this.done = { bytesIn: this.bytesIn, bytesOut: this.bytesOut, frames: this.frames };
    this.release();
    this.push(null);
    cb();
  }

  protected release(): void {
    this.dctx = null;
    this.input = EMPTY;
    this.moreOutput = false;
  }
}

export function zstdDecompress(opts: ZstdDecompressOptions = {}): ZstdDecompress {
  return new ZstdDecompress(opts);
}
