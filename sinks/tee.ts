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
 *      the pipeline rejects, all cleanup is done. (Independent checks that
 *      must all see a whole backup run in series in report mode instead:
 *      src/verifier.ts, src/pipeline/verify.ts.)
 *
 * The tee is a sink (src/sink.ts, BackupSink) over sinks that are:
 * ready(): readies every sink that implements the contract (isBackupSink;
 *      a plain Writable has nothing to ready) so a bad target is refused
 *      before the server is contacted; if one fails, the others are
 *      destroyed (removing what they created) before it rejects.
 * walPlace(): streamed WAL can be written in place only once, into one
 *      directory: the first sink that takes it in place (`walDir`, a plain
 *      target's pg_wal/) gets it there. Every other sink then writes the
 *      WAL from the `pg_wal` archive's data, read back (ArchiveEvent
 *      .writtenIn names another directory than theirs: src/events.ts), so
 *      each target holds the whole backup. Without such a sink, the first
 *      sink's spool (`walSpool`, inside a tar target) is used — a spool is
 *      read back and removed, so any sink's will do and the first is as
 *      good as any; with neither, null: the source picks a temporary spool.
 */
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { PgbbError, UsageError } from '../src/errors';
import { isBackupSink, type BackupSink, type WalPlace } from '../src/sink';
import { retain } from '../src/io/slab-pool';
import { whenClosed } from '../src/io/stream-end';

export class Tee extends Writable implements BackupSink {
  readonly sinks: readonly Writable[];
  /** 'drain' listeners of the write in progress, removed on destroy. */
  private waits: { sink: Writable; fn: () => void }[] = [];

  constructor(sinks: Writable[]) {
    super({ objectMode: true, highWaterMark: 16 });
    if (sinks.length === 0) throw new UsageError('tee needs at least one sink');
    if (new Set(sinks).size !== sinks.length) throw new UsageError('tee was given the same sink twice');
    this.sinks = sinks;
    sinks.forEach((sink, i) => {
      sink.on('error', (err: Error) => void this.destroy(err));
      sink.on('close', () => {
        if (!this.destroyed && !sink.writableFinished) {
          this.destroy(new PgbbError('incomplete', `tee: sink ${i + 1} (${sink.constructor.name}) closed before the backup ended`));
        }
      });
    });
  }

  async ready(): Promise<void> {
    const settled = await Promise.allSettled(this.sinks.map((s) => (isBackupSink(s) ? s.ready() : undefined)));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed) return;
    if (!this.destroyed) this.destroy(failed.reason as Error);
    await whenClosed(this);
    throw failed.reason;
  }

  /** See the file comment: the first in-place directory, else the first spool, else null. */
  walPlace(): WalPlace | null {
    const places = this.sinks.map((s) => (isBackupSink(s) ? s.walPlace() : null));
    return places.find((p) => p !== null && 'walDir' in p) ?? places.find((p) => p !== null) ?? null;
  }

  override _write(chunk: unknown, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    let pending = 1;
    const accepted = () => {
      if (--pending > 0) return;
      this.waits = [];
      callback();
    };
    for (const sink of this.sinks) {
      if (sink.destroyed || sink.writableEnded) {
        return callback(new PgbbError('incomplete', `tee: sink ${sink.constructor.name} is no longer writable`));
      }
    }
    // Each sink gives back what it wrote (src/io/slab-pool.ts): recycled read memory is held once per sink.
    const bytes = heldBytes(chunk);
    if (bytes) for (let i = 1; i < this.sinks.length; i++) retain(bytes);
    for (const sink of this.sinks) {
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
    for (const sink of this.sinks) sink.end();
    Promise.all(this.sinks.map((s) => finished(s))).then(
      () => callback(),
      (err) => callback(err),
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    for (const { sink, fn } of this.waits) sink.removeListener('drain', fn);
    this.waits = [];
    for (const sink of this.sinks) if (!sink.destroyed) sink.destroy(err ?? undefined);
    // Report only once every sink has cleaned up what it half-wrote.
    Promise.all(this.sinks.map(whenClosed)).then(() => callback(err));
  }
}

/** Writes every event to all `sinks`; see the file comment. */
export function tee(...sinks: Writable[]): Tee {
  return new Tee(sinks);
}

/** The bytes a member event (or a byte chunk) carries, which a sink may give back. */
function heldBytes(chunk: unknown): Uint8Array | null {
  if (chunk instanceof Uint8Array) return chunk;
  const ev = chunk as { type?: string; chunk?: unknown; data?: unknown } | null;
  if (ev?.type === 'data' && ev.chunk instanceof Uint8Array) return ev.chunk;
  if ((ev?.type === 'manifest' || ev?.type === 'archive-bytes') && ev.data instanceof Uint8Array) return ev.data;
  return null;
}
