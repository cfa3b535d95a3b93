/**
 * ReadPacer: holds a connection's reads to a shared rate limiter (-r) by
 * not reading, so that the server, not our memory, takes the wait.
 *
 *   paid(bytes)   debits the bytes just read; when the bucket is in debt by
 *                 more than MIN_PAUSE_MS, pauses the reader and resumes it
 *                 once the debt is paid (shorter debts wait for the next
 *                 message, as transforms/throttle.ts does, so the rate stays
 *                 exact with few timers)
 *   stop()        clears the timer and resumes at once (the end is reached,
 *                 or the connection goes)
 *
 * A paused socket still hands over what it had buffered: those messages are
 * debited too, and the next paid() after the resume pauses again.
 */
import { timerDelay, type RateLimiter } from '../rate-limiter';

const MIN_PAUSE_MS = 4;

export interface Pausable {
  pause(): void;
  resume(): void;
}

export class ReadPacer {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly limiter: RateLimiter,
    private readonly reader: Pausable,
  ) {}

  paid(bytes: number): void {
    const ms = this.limiter.take(bytes);
    if (ms < MIN_PAUSE_MS || this.timer) return;
    this.reader.pause();
    this.timer = setTimeout(() => {
      this.timer = null;
      this.reader.resume();
    }, timerDelay(ms));
  }

  stop(): void {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.reader.resume();
  }
}
