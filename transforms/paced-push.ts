/**
 * A Transform that pushes many events for one input (chunk-map-build's and
 * chunk-diff's map member, chunk-diff's rebuilt manifest) without piling
 * them all into its readable buffer: pushPaced waits whenever that buffer is
 * full until the reader asks for more, so such an output costs a few pieces
 * of memory, not its whole size.
 */
import { Transform } from 'node:stream';
import type { BackupEvent } from '../src/events';

export class PacedTransform extends Transform {
  private wake: (() => void) | null = null;

  override _read(size: number): void {
    this.resume_();
    super._read(size);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.resume_();
    super._destroy(err, callback);
  }

  /** Pushes `events` in order, waiting while the readable buffer is full; stops early once destroyed. */
  protected async pushPaced(events: Iterable<BackupEvent>): Promise<void> {
    for (const ev of events) {
      if (this.destroyed) return;
      if (!this.push(ev)) await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private resume_(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
