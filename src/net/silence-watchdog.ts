/**
 * The watchdog on a server's silence: while a command runs and we are
 * reading, `timeoutMs` without a byte from the server is a dead server or
 * network. Time we spend paused (backpressure) does not count, nor does time
 * while silence is allowed (BASE_BACKUP's checkpoint, the wait for WAL
 * archiving: the server answers when done, and only TCP keepalives watch the
 * line meanwhile).
 *
 * A coarse tick: detection within timeoutMs plus a quarter of it, at most
 * 5 s late; the timer is unref'd.
 */
export const DEFAULT_TIMEOUT_MS = 60_000;

export class SilenceWatchdog {
  private lastHeard = Date.now();
  private paused = false;
  private allowed = false;
  private timer: NodeJS.Timeout | null = null;

  /** `watching()`: a command is running (silence between commands is fine). */
  constructor(
    private readonly timeoutMs: number,
    private readonly watching: () => boolean,
    private readonly onSilence: (silentMs: number) => void,
  ) {
    if (timeoutMs > 0) {
      this.timer = setInterval(() => this.check(), Math.min(5000, Math.max(50, timeoutMs / 4)));
      this.timer.unref();
    }
  }

  /** Bytes came, or a command was just sent. */
  heard(): void {
    this.lastHeard = Date.now();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    // Our own pause is not the server's silence.
    if (this.paused) this.lastHeard = Date.now();
    this.paused = false;
  }

  allowSilence(on: boolean): void {
    if (this.allowed && !on) this.lastHeard = Date.now();
    this.allowed = on;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private check(): void {
    if (!this.watching() || this.paused || this.allowed) return;
    const silent = Date.now() - this.lastHeard;
    if (silent >= this.timeoutMs) this.onSilence(silent);
  }
}
