/**
 * RateLimiter: a token bucket that every stream of one backup shares — the
 * base backup stream and the WAL stream today, N parallel workers later — so
 * `-r RATE` bounds what the whole backup moves, not each stream alone.
 *
 * In:  `take(bytes)` debits the bucket at once and says how long the caller
 *      must wait before it may pass those bytes on (0: at once). The balance
 *      may go negative: a chunk larger than the bucket is fine, the debt is
 *      simply paid in time. Several callers sharing one bucket queue behind
 *      each other's debt, so their combined rate is the limit.
 *      `acquire(bytes, signal)` is the same as a promise; an abort clears the
 *      timer and rejects with the signal's reason.
 * Out: over any window of T seconds, at most `burstBytes + rate × T` bytes
 *      pass. The bucket is small (default 1/10 s of rate) so the rate holds
 *      over short windows too, as the server's MAX_RATE does (it checks every
 *      1/8 s).
 * Errors: a rate that is not a positive finite number is a UsageError.
 *
 * Timing uses performance.now() (monotonic, sub-millisecond), never Date: a
 * wall-clock step would otherwise stall or release a burst.
 */
import { performance } from 'node:perf_hooks';
import { UsageError } from './errors';

export interface RateLimiterOptions {
  /** Bucket size in bytes; default rate / 10 (at least 1). */
  burstBytes?: number;
  /** Clock in milliseconds, monotonic; default performance.now(). Injected by tests. */
  now?: () => number;
}

export class RateLimiter {
  readonly bytesPerSecond: number;
  readonly burstBytes: number;
  private readonly now: () => number;
  /**
   * Allowance lost because the bucket was full: nobody asked for it in time
   * (the source or a sink was slower than the limit, or the backup was idle).
   * Divided by the rate, it is the time the limiter did not set the pace.
   */
  unusedBytes = 0;
  /** Current balance; negative while callers owe time. */
  private tokens: number;
  private last: number;

  constructor(bytesPerSecond: number, opts: RateLimiterOptions = {}) {
    if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) {
      throw new UsageError(`transfer rate must be a positive number of bytes per second, got ${bytesPerSecond}`);
    }
    const burst = opts.burstBytes ?? Math.max(1, bytesPerSecond / 10);
    if (!Number.isFinite(burst) || burst <= 0) throw new UsageError(`burst size must be positive, got ${burst}`);
    this.bytesPerSecond = bytesPerSecond;
    this.burstBytes = burst;
    this.now = opts.now ?? (() => performance.now());
    this.tokens = burst;
    this.last = this.now();
  }

  /** Debits `bytes` and returns the milliseconds to wait before passing them on (0 if none). */
  take(bytes: number): number {
    if (!(bytes > 0)) return 0;
    this.refill();
    this.tokens -= bytes;
    if (this.tokens >= 0) return 0;
    return (-this.tokens * 1000) / this.bytesPerSecond;
  }

  /** take() as a promise: resolves once `bytes` may pass. */
  acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const ms = this.take(bytes);
    if (ms === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(abortReason(signal!));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, timerDelay(ms));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private refill(): void {
    const t = this.now();
    const elapsed = t - this.last;
    this.last = t;
    if (elapsed <= 0) return;
    const earned = this.tokens + (elapsed * this.bytesPerSecond) / 1000;
    if (earned > this.burstBytes) this.unusedBytes += earned - this.burstBytes;
    this.tokens = Math.min(this.burstBytes, earned);
  }
}

/**
 * setTimeout counts whole milliseconds and fires late rather than early;
 * rounding up costs nothing, because tokens keep accruing while we oversleep
 * (the bucket only caps once the caller is idle long enough to fill it).
 */
export function timerDelay(ms: number): number {
  return Math.max(1, Math.ceil(ms));
}

function abortReason(signal: AbortSignal): unknown {
  if (signal.reason !== undefined) return signal.reason;
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}
