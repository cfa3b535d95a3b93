/**
 * Writes members as tar bytes into a byte pipeline (e.g. [zstdCompress(),
 * file]): ./tar-encoder.ts's output with a Node pipeline behind it. The
 * member stream's own encoder is transforms/tar-pack.ts (same TarEncoder).
 *
 *   add(header, cb?)      a member's header (./encode-header.ts: ustar, pax
 *                         for names or link targets over 100 bytes, raw bytes
 *                         of non-UTF-8 names kept); directories and symlinks
 *                         are complete at once
 *   write(chunk, cb)      the current file member's bytes, by reference
 *   endEntry(cb?)         its padding; the byte count must match the header
 *   finalize()            the end-of-archive marker (two zero blocks), then
 *                         waits until the last stage has everything
 *   destroy(err?)         tears the pipeline down
 *
 * Backpressure: bytes go into a Readable at the head of the pipeline; a
 * callback is called only once the Readable is under its highWaterMark
 * (immediately when it is), or with the pipeline's error if it fails first,
 * so nothing hangs on a dead stream. Callback style: the hot path (`write`)
 * costs no promise per chunk.
 * Errors: TarFormatError for a member whose data is longer or shorter than
 * its header says, data outside a member, a member added while another is
 * open; the pipeline's error (a file that cannot be written, …) as is.
 */
import { pipeline, Readable } from 'node:stream';
import type { Duplex, Writable } from 'node:stream';
import { TarEncoder, type TarMemberHeader } from './tar-encoder';

export type { TarMemberHeader } from './tar-encoder';

type Callback = (err?: Error | null) => void;

/** As tar-stream's pack: enough to keep the next stage busy, small enough not to matter. */
const HIGH_WATER_MARK = 64 * 1024;

export class TarWriter {
  private readonly out: Readable;
  private readonly encoder = new TarEncoder();
  private error: Error | null = null;
  /** A callback waiting for the Readable to drain. */
  private waiting: Callback | null = null;
  private finalized = false;
  private readonly finished: Promise<void>;

  constructor(...outs: [...Duplex[], Writable]) {
    this.out = new Readable({ highWaterMark: HIGH_WATER_MARK, read: () => this.drained() });
    this.finished = new Promise((resolve, reject) => {
      pipeline([this.out, ...outs], (err: Error | null) => {
        if (err) {
          this.error ??= err;
          reject(err);
        } else resolve();
        this.drained();
      });
    });
    // Rejection is observed through finalize(); keep Node from reporting it early.
    this.finished.catch(() => {});
  }

  /** Attaches `comment` (a pax record extractors ignore) to the next member added. */
  commentNext(comment: string): void {
    this.encoder.commentNext(comment);
  }

  /** Starts a member; directories and symlinks are complete at once. */
  add(h: TarMemberHeader, callback: Callback = this.keep): void {
    if (this.error) return callback(this.error);
    let header: Buffer;
    try {
      header = this.encoder.add(h);
    } catch (err) {
      return void this.fail(err as Error, callback);
    }
    this.push(header, callback);
  }

  /** Writes member bytes (kept by reference); calls back once the pipeline can take more. */
  write(chunk: Buffer, callback: Callback): void {
    if (this.error) return callback(this.error);
    try {
      this.encoder.data(chunk);
    } catch (err) {
      return void this.fail(err as Error, callback);
    }
    this.push(chunk, callback);
  }

  /** Ends the open file member (no-op for directories and symlinks). */
  endEntry(callback: Callback = this.keep): void {
    if (this.error) return callback(this.error);
    let pad: Buffer | null;
    try {
      pad = this.encoder.endEntry();
    } catch (err) {
      return void this.fail(err as Error, callback);
    }
    if (pad) this.push(pad, callback);
    else callback();
  }

  /** Writes the end-of-archive marker and waits until the last stage has everything. */
  async finalize(): Promise<void> {
    if (this.error) throw this.error;
    if (!this.finalized) {
      let marker: Buffer;
      try {
        marker = this.encoder.end();
      } catch (err) {
        this.fail(err as Error, this.keep);
        throw err;
      }
      this.finalized = true;
      this.out.push(marker);
      this.out.push(null);
    }
    await this.finished;
    if (this.error) throw this.error;
  }

  destroy(err?: Error): void {
    this.out.destroy(err);
  }

  /** Without a callback, an error waits for the next call (or finalize). */
  private readonly keep: Callback = () => {};

  private fail(err: Error, callback: Callback): void {
    this.error ??= err;
    this.out.destroy(err);
    callback(err);
  }

  private push(buf: Buffer, callback: Callback): void {
    if (this.out.push(buf)) return callback();
    // Only one caller waits at a time (the sink calls back before its next event).
    const prev = this.waiting;
    this.waiting = prev ? (e) => (prev(e), callback(e)) : callback;
  }

  private drained(): void {
    const cb = this.waiting;
    if (!cb) return;
    this.waiting = null;
    cb(this.error);
  }
}
