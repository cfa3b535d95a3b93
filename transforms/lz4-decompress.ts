/**
 * lz4-decompress: LZ4 frame bytes in (`pg_basebackup -Ft --compress
 * client-lz4` or `server-lz4`, lz4(1)), the original bytes out (a byte stream).
 *
 *   lz4Decompress({ name?: 'base.tar.lz4' })
 *
 * The decoding is src/codec/lz4-frame.ts (pgbb's own: see there why).
 * Backpressure: a small compressed chunk can stand for many blocks, so
 * blocks are decoded one at a time and only while the reader wants more
 * (push() true); the write callback waits until the chunk is used up.
 * Memory: one block (≤ 4 MiB) in and out, the 64 KiB window, the readable
 * highWaterMark.
 * Errors: UsageError for member events written to it; CompressionError
 * naming `name`: corrupt data (why, and at which compressed byte), a
 * checksum that does not match, input that ends inside a frame or is empty.
 */
import { Lz4FrameDecoder } from '../src/codec/lz4-frame';
import { guardBytes, type Stage } from './stream-kinds';
import { PulledDecoder } from './pulled-decoder';

export interface Lz4DecompressOptions {
  /** What the bytes are (a file or object name), for error messages. */
  name?: string;
}

export class Lz4Decompress extends PulledDecoder implements Stage<'bytes', 'bytes'> {
  readonly type = 'lz4-decompress';
  readonly takes = 'bytes' as const;
  readonly gives = 'bytes' as const;
  readonly stageName = 'lz4Decompress()';
  private decoder: Lz4FrameDecoder | null;
  private pumping = false;

  constructor(opts: Lz4DecompressOptions = {}) {
    super({ writableHighWaterMark: 64 * 1024, readableHighWaterMark: 256 * 1024 });
    this.decoder = new Lz4FrameDecoder(opts.name ? `"${opts.name}"` : 'the input');
    guardBytes(this, 'it reads lz4 bytes (a file, a download)');
  }

  protected accept(chunk: Buffer): void {
    this.decoder?.push(chunk);
  }

  protected release(): void {
    this.decoder = null;
  }

  /** Decodes while wanted; a write is acknowledged once its bytes are all decoded (the decoder asks for more). */
  protected pump(): void {
    if (this.pumping || !this.decoder) return;
    this.pumping = true;
    try {
      for (;;) {
        if (!this.decoder) return;
        if (this.inputCallback) {
          if (!this.wanted) return;
          const block = this.decoder.next();
          if (block) {
            if (!this.push(block)) this.wanted = false;
            continue;
          }
          const written = this.inputCallback;
          this.inputCallback = null;
          written();
          continue;
        }
        if (this.finalCallback) {
          // Everything written was decoded already (each write waits for that).
          this.decoder.finish();
          const cb = this.finalCallback;
          this.finalCallback = null;
          this.decoder = null;
          this.push(null);
          cb();
        }
        return;
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.pumping = false;
    }
  }
}

export function lz4Decompress(opts: Lz4DecompressOptions = {}): Lz4Decompress {
  return new Lz4Decompress(opts);
}
