/**
 * tarPack() → [zstdCompress()] → a byte Writable, as one pipeline that a
 * sink writes member events into: what the stdout and tar-files sinks share.
 *
 *   write(ev, cb)   calls back once the pack can take more (or with the
 *                   pipeline's error, so nothing waits on a dead stream)
 *   finish()        ends the pack and waits until the output has everything
 *   abort(err?)     tears the pipeline down (the compressor's context goes
 *                   with it) and waits until it has settled
 */
import { pipeline, type Writable } from 'node:stream';
import type { BackupEvent } from '../src/events';
import type { CompressSpec } from '../src/codec/compression';
import { tarPack, type TarPack, type TarPackOptions } from '../transforms/tar-pack';
import { zstdCompress, type ZstdCompress } from '../transforms/zstd-compress';

type Callback = (err?: Error | null) => void;

export class PackedOutput {
  private readonly pack: TarPack;
  private readonly done: Promise<void>;
  private error: Error | null = null;
  private settled = false;
  private pending: Callback | null = null;

  /**
   * Throws (a UsageError for bad zstd options) before anything is written.
   * `compressor`: one already made for `compress` (see compressorFor()).
   */
  constructor(output: Writable, compress: CompressSpec | undefined, packOpts?: TarPackOptions, compressor?: ZstdCompress | null) {
    const z = compressor ?? compressorFor(compress);
    this.pack = tarPack(packOpts);
    this.done = new Promise((resolve, reject) => {
      const settle = (err: Error | null | undefined) => {
        this.settled = true;
        if (err) this.error ??= err;
        const p = this.pending;
        this.pending = null;
        p?.(this.error);
        if (err) reject(err);
        else resolve();
      };
      if (z) pipeline(this.pack, z, output, settle);
      else pipeline(this.pack, output, settle);
    });
    // Observed through finish() and abort().
    this.done.catch(() => {});
  }

  write(ev: BackupEvent, callback: Callback): void {
    if (this.error) return callback(this.error);
    if (this.pack.write(ev)) return callback();
    this.pending = callback;
    this.pack.once('drain', () => {
      const p = this.pending;
      this.pending = null;
      p?.();
    });
  }

  async finish(): Promise<void> {
    if (this.error) throw this.error;
    this.pack.end();
    await this.done;
  }

  async abort(err?: Error): Promise<void> {
    if (!this.settled) this.pack.destroy(err);
    await this.done.catch(() => {});
  }
}

/** The compressor `compress` asks for (null for none); zstdCompress() checks the options. */
export function compressorFor(compress: CompressSpec | undefined): ZstdCompress | null {
  return compress?.method === 'zstd' ? zstdCompress({ level: compress.level, workers: compress.workers }) : null;
}
