/**
 * Pushing many events for one input (chunk-map-build's and chunk-diff's map
 * member, chunk-diff's rebuilt manifest) without piling them all into the
 * stage's readable buffer: `push` waits whenever that buffer is full until
 * the reader asks for more, so such an output costs a few pieces of memory,
 * not its whole size.
 *
 *   Pacer           for a stage with its own base class (an Observer): the
 *                   stage calls resume() from its _read and _destroy
 *   PacedTransform  a Transform with a Pacer wired in (pushPaced), taking each
 *                   event through handle(), which may return a promise
 */
import { Transform } from 'node:stream';
import type { BackupEvent } from '../src/events';

export class Pacer {
  private wake: (() => void) | null = null;

  constructor(private readonly stage: Transform) {}

  /** The reader wants more, or the stage is going away: a waiting push goes on. */
  resume(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Pushes `events` in order, waiting while the readable buffer is full; stops early once the stage is destroyed. */
  async push(events: Iterable<BackupEvent>): Promise<void> {
    for (const ev of events) {
      if (this.stage.destroyed) return;
      if (!this.stage.push(ev)) await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

export class PacedTransform extends Transform {
  private readonly pacer = new Pacer(this);

  override _transform(ev: BackupEvent, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      const later = this.handle(ev);
      if (later) return void later.then(() => cb(), cb);
    } catch (err) {
      return cb(err as Error);
    }
    cb();
  }

  /** One event in; a promise when it pushes paced (default: passed on). */
  protected handle(ev: BackupEvent): Promise<void> | void {
    this.push(ev);
  }

  override _read(size: number): void {
    this.pacer.resume();
    super._read(size);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.pacer.resume();
    super._destroy(err, callback);
  }

  protected pushPaced(events: Iterable<BackupEvent>): Promise<void> {
    return this.pacer.push(events);
  }
}
