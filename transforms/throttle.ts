/**
 * throttle: holds a backup to a transfer rate (`-r RATE`) by delaying.
 *
 *   throttle(limiter | kB/s)       member stream (object mode): each `data`
 *                                  event waits for its chunk's bytes; every
 *                                  other event passes at once, unchanged,
 *                                  and so does the data of a `paced` archive
 *                                  (streamed WAL the receiver paid for from
 *                                  the same limiter as it arrived).
 *   throttleBytes(limiter | kB/s)  byte stream (Buffers): the same for raw
 *                                  bytes (WAL, tar, S3 parts); chunks over
 *                                  64 KiB are passed on in 64 KiB slices so
 *                                  the output stays smooth.
 *
 * A number is kB/s in pg_basebackup's units (1 kB = 1024 bytes) and gets a
 * limiter of its own; pass one RateLimiter to several throttles to share the
 * rate between the streams of one backup.
 * The wait happens before the event goes on and before the write callback
 * fires, so nothing is buffered here: upstream simply sees backpressure.
 * Waits shorter than MIN_SLEEP_MS are not slept but left as debt in the
 * bucket, which the next longer wait pays: the rate stays exact, with a few
 * hundred timers a second instead of one per 32 KiB chunk.
 * Destroying the stream (an error or abort anywhere in the pipeline) clears
 * the pending timer.
 */
import { Transform } from 'node:stream';
import type { BackupEvent } from '../src/events';
import { RateLimiter, timerDelay } from '../src/rate-limiter';

const MIN_SLEEP_MS = 4;
const SLICE_BYTES = 64 * 1024;

function limiterOf(limiter: RateLimiter | number): RateLimiter {
  return typeof limiter === 'number' ? new RateLimiter(limiter * 1024) : limiter;
}

/** One pending wait at a time, cleared on destroy. */
class Pacer {
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly limiter: RateLimiter) {}

  /** Calls `then` once `bytes` may pass: at once, or after a timer. */
  pace(bytes: number, then: () => void): void {
    const ms = this.limiter.take(bytes);
    if (ms < MIN_SLEEP_MS) return then();
    this.timer = setTimeout(() => {
      this.timer = null;
      then();
    }, timerDelay(ms));
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  get waiting(): boolean {
    return this.timer !== null;
  }
}

export class ThrottleTransform extends Transform {
  private readonly pacer: Pacer;
  /** In a `paced` archive: its bytes drew from the limiter as they arrived (src/wal/wal-receiver.ts). */
  private paid = false;
  readonly limiter: RateLimiter;

  constructor(limiter: RateLimiter | number) {
    super({ objectMode: true, highWaterMark: 16 });
    this.limiter = limiterOf(limiter);
    this.pacer = new Pacer(this.limiter);
  }

  override _transform(ev: BackupEvent, _enc: BufferEncoding, callback: (err?: Error | null, ev?: BackupEvent) => void): void {
    if (ev.type === 'archive') this.paid = ev.paced === true;
    else if (ev.type === 'archive-end') this.paid = false;
    if (ev.type !== 'data' || this.paid) return callback(null, ev);
    this.pacer.pace(ev.chunk.length, () => callback(null, ev));
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.pacer.clear();
    callback(err);
  }

  /** True while a chunk is waiting for its turn (tests check that destroy clears it). */
  get waiting(): boolean {
    return this.pacer.waiting;
  }
}

export class ThrottleBytesTransform extends Transform {
  private readonly pacer: Pacer;
  readonly limiter: RateLimiter;

  constructor(limiter: RateLimiter | number) {
    super({ highWaterMark: SLICE_BYTES });
    this.limiter = limiterOf(limiter);
    this.pacer = new Pacer(this.limiter);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    let off = 0;
    // Slices of one chunk go out one by one, each after its own wait; at most
    // one chunk is ever held, so memory stays bounded by the writer's chunks.
    const next = (): void => {
      if (this.destroyed) return;
      if (off >= chunk.length) return callback();
      const piece = chunk.subarray(off, off + SLICE_BYTES);
      off += piece.length;
      this.pacer.pace(piece.length, () => {
        this.push(piece);
        next();
      });
    };
    next();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.pacer.clear();
    callback(err);
  }

  get waiting(): boolean {
    return this.pacer.waiting;
  }
}

/** Member stream throttle: `data` events wait for their bytes; see the file comment. */
export function throttle(limiter: RateLimiter | number): ThrottleTransform {
  return new ThrottleTransform(limiter);
}

/** Byte stream throttle (Buffers): see the file comment. */
export function throttleBytes(limiter: RateLimiter | number): ThrottleBytesTransform {
  return new ThrottleBytesTransform(limiter);
}
