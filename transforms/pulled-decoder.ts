/**
 * pulled-decoder: the Duplex wiring shared by the decompressors whose few
 * input bytes can stand for many output bytes (zstd-decompress.ts,
 * lz4-decompress.ts): a write is held (its callback kept) until its bytes
 * are decoded, and decoding runs only while the reader wants more.
 *
 * Subclasses say what to do with a written chunk (accept) and decode in
 * pump(), which every write, final and read calls; fail() hands an error to
 * the callback that is waiting, or destroys the stream when none is.
 */
import { Duplex, type DuplexOptions } from 'node:stream';
import { CompressionError } from '../src/errors';

export type Callback = (err?: Error | null) => void;

export abstract class PulledDecoder extends Duplex {
  /** The held write's callback, and end()'s. */
  protected inputCallback: Callback | null = null;
  protected finalCallback: Callback | null = null;
  /** The reader asked for more since push() last said it had enough. */
  protected wanted = false;

  constructor(opts: DuplexOptions) {
    super(opts);
  }

  /** Keeps a written chunk for pump() to decode. */
  protected abstract accept(chunk: Buffer): void;
  protected abstract pump(): void;
  /** Drops the decoder's state (contexts, held input). */
  protected abstract release(): void;

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: Callback): void {
    this.accept(chunk);
    this.inputCallback = callback;
    this.pump();
  }

  override _final(callback: Callback): void {
    this.finalCallback = callback;
    this.pump();
  }

  override _read(): void {
    this.wanted = true;
    this.pump();
  }

  override _destroy(err: Error | null, callback: Callback): void {
    this.release();
    callback(err);
  }

  protected fail(err: unknown): void {
    const e = err instanceof Error ? err : new CompressionError(String(err));
    const cb = this.inputCallback ?? this.finalCallback;
    this.inputCallback = null;
    this.finalCallback = null;
    this.release();
    if (cb) cb(e);
    else this.destroy(e);
  }
}
