/**
 * tee: one source, several sinks — e.g. a local directory and stdout, or a
 * directory and S3 — written at once.
 *
 *                   ┌──► sink A
 *   … ──► tee ──────┼──► sink B
 *                   └──► …
 *
 * In:  any objects (member events, or Buffers for byte sinks); each is
 *      written to every sink, in order, as the same object (sinks must not
 *      mutate what they are given — none of pgbb's do).
 * Pace: the write callback fires only once every sink has accepted the event
 *      (its write() returned true, or it emitted 'drain'), so the slowest
 *      sink sets the pace and nothing piles up: each sink buffers at most its
 *      own highWaterMark.
 * End: `_final` ends every sink and waits until all of them have finished
 *      (committed). Sinks commit one by one, not atomically: if one fails in
 *      its final step, another may already hold a complete backup — a valid
 *      one, never a half-written one.
 * Errors: an error in any sink (or a sink closing before the end) destroys
 *      the tee and every other sink with that error, so each removes what it
 *      half-wrote; destroying the tee (a pipeline failure or abort) destroys
 *      all sinks. The tee closes only after every sink has closed, so when
 *      the pipeline rejects, all cleanup is done.
 * settle: with `{ settle: true }` a failing sink is set aside instead (its
 *      error kept in `failures`) and the others go on to the end — how
 *      `pgbb verify` runs independent checks over one read of a backup.
 * ready(): awaits every sink's ready() (see sinks/directory.ts) so a bad
 *      target is refused before the server is contacted; if one fails, the
 *      others are destroyed (removing what they created) before it rejects.
 */
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { PgbbError, UsageError } from '../src/errors';

type MaybeReady = Writable & { ready?: () => Promise<void> };

export class Tee extends Writable {
  readonly sinks: readonly Writable[];
  /** 'drain' listeners of the write in progress, removed on destroy. */
  private waits: { sink: Writable; fn: () => void }[] = [];
  /** With settle: the sinks that failed, and why. */
  readonly failures = new Map<Writable, Error>();
  private readonly settle: boolean;

  constructor(sinks: Writable[], opts: { settle?: boolean } = {}) {
    super({ objectMode: true, highWaterMark: 16 });
    if (sinks.length === 0) throw new UsageError('tee needs at least one sink');
    if (new Set(sinks).size !== sinks.length) throw new UsageError('tee was given the same sink twice');
    this.sinks = sinks;
    this.settle = opts.settle ?? false;
    sinks.forEach((sink, i) => {
      sink.on('error', (err: Error) => {
        if (!this.settle) return void this.destroy(err);
        if (!this.failures.has(sink)) this.failures.set(sink, err);
        // A write waiting on this sink's 'drain' must not wait forever.
        for (const w of this.waits) if (w.sink === sink) w.fn();
      });
      sink.on('close', () => {
        if (!this.destroyed && !sink.writableFinished && !this.failures.has(sink)) {
          this.destroy(new PgbbError('incomplete', `tee: sink ${i + 1} (${sink.constructor.name}) closed before the backup ended`));
        }
      });
    });
  }

  async ready(): Promise<void> {
    const settled = await Promise.allSettled(this.sinks.map((s) => (s as MaybeReady).ready?.()));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed) return;
    if (!this.destroyed) this.destroy(failed.reason as Error);
    await closed(this);
    throw failed.reason;
  }

  override _write(chunk: unknown, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    let pending = 1;
    const accepted = () => {
      if (--pending > 0) return;
      this.waits = [];
      callback();
    };
    const live = this.sinks.filter((s) => !this.failures.has(s));
    for (const sink of live) {
      if (sink.destroyed || sink.writableEnded) {
        return callback(new PgbbError('incomplete', `tee: sink ${sink.constructor.name} is no longer writable`));
      }
    }
    for (const sink of live) {
      if (!sink.write(chunk)) {
        pending++;
        let done = false;
        const fn = () => {
          if (done) return;
          done = true;
          sink.removeListener('drain', fn);
          accepted();
        };
        sink.once('drain', fn);
        this.waits.push({ sink, fn });
      }
    }
    accepted();
  }

  override _final(callback: (err?: Error | null) => void): void {
    const live = this.sinks.filter((s) => !this.failures.has(s));
    for (const sink of live) sink.end();
    if (this.settle) {
      Promise.allSettled(live.map((s) => finished(s))).then((results) => {
        results.forEach((r, i) => {
          if (r.status === 'rejected' && !this.failures.has(live[i])) this.failures.set(live[i], r.reason as Error);
        });
        callback();
      });
      return;
    }
    Promise.all(live.map((s) => finished(s))).then(
      () => callback(),
      (err) => callback(err),
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    for (const { sink, fn } of this.waits) sink.removeListener('drain', fn);
    this.waits = [];
    for (const sink of this.sinks) if (!sink.destroyed) sink.destroy(err ?? undefined);
    // Report only once every sink has cleaned up what it half-wrote.
    Promise.all(this.sinks.map(closed)).then(() => callback(err));
  }
}

/** Resolves on 'close' (events.once would reject on the 'error' just before it). */
function closed(s: Writable): Promise<void> {
  return s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()));
}

/** Writes every event to all `sinks`; see the file comment. */
export function tee(...sinks: Writable[]): Tee {
  return new Tee(sinks);
}

/** A tee whose failing sinks are set aside (see `settle` above). */
export function teeSettled(...sinks: Writable[]): Tee {
  return new Tee(sinks, { settle: true });
}
