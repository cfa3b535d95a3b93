/**
 * WAL streaming (-X stream) around any live source (src/sources/live-source.ts):
 * a StreamedWal (src/wal/streamed-wal.ts) streams WAL on a second connection
 * from the moment the source reports its start — straight into the target's
 * pg_wal/ (`walDir`) or into a spool (`walSpool`) — and stops at its end
 * position; then its files follow the source's archives as the `pg_wal`
 * archive, read back (`writtenIn` when in place):
 *
 *   source: start, its archives …    │ pg_wal archive   │ manifest*   │ end
 *           (the source's pace)      │ (pulled by _read) │ held to here
 *
 * The manifest is held back (src/sources/manifest-hold.ts: in memory while
 * small, else in a file beside the WAL) so that it follows the WAL it lists;
 * its WAL-Ranges are checked against what was streamed.
 *
 * Without a plan (`wal: null`) the source's events pass unchanged.
 *
 * Errors: the source's, and any failure of the WAL receiver (slot missing,
 * too few max_wal_senders, its connection lost), destroy this stream at once.
 * Destroying it removes the spool and a held manifest's file at once,
 * synchronously (so nothing is left when a pipeline built on it settles),
 * then destroys the source, stops the receiver and ends its session
 * (dropping a temporary slot). `end` comes only after the source's and,
 * when streaming, after the WAL archive and the manifest.
 */
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { PgbbError, ProtocolError } from '../errors';
import type { BackupEvent, EndEvent } from '../events';
import { StreamedWal, type StreamedWalOptions } from '../wal/streamed-wal';
import type { LiveSourceFactory, LiveSourceHooks } from './live-source';
import { NO_HOOKS } from './live-source';
import { ManifestHold } from './manifest-hold';

/** Where and how to stream: the StreamedWal options a caller settles (the server's settings come from the source). */
export interface WalStreamPlan extends Pick<StreamedWalOptions, 'clientConfig' | 'slot' | 'noSlot' | 'walDir' | 'walSpool' | 'limiter' | 'timeoutMs' | 'recycleBuffers'> {
  /** Manifest bytes held in memory before they go to a file (default 1 MiB). */
  manifestMemory?: number;
}

export interface StreamedWalSourceOptions {
  source: LiveSourceFactory;
  /** null: no streaming, the source's events pass through. */
  wal: WalStreamPlan | null;
  signal?: AbortSignal;
}

export class StreamedWalSource extends Readable {
  private readonly inner: Readable;
  private readonly plan: WalStreamPlan | null;
  private wal: StreamedWal | null = null;
  private readonly manifest: ManifestHold;
  private endEvent: EndEvent | null = null;
  /** pg_wal archive, manifest and end, pulled by _read once the source is done. */
  private tail: AsyncGenerator<BackupEvent> | null = null;
  private pumping = false;
  private readonly opening = new AbortController();

  constructor(o: StreamedWalSourceOptions) {
    super({ objectMode: true, highWaterMark: 16, signal: o.signal });
    this.plan = o.wal;
    this.manifest = new ManifestHold({ dir: () => this.wal?.dir ?? null, memoryLimit: o.wal?.manifestMemory });
    this.inner = o.source(this.plan ? this.hooks() : NO_HOOKS);
    this.inner.on('data', (ev: BackupEvent) => this.fromSource(ev));
    this.inner.once('end', () => this.sourceDone());
    this.inner.once('error', (err) => this.destroy(err));
  }

  override destroy(err?: Error): this {
    this.opening.abort(err ?? new PgbbError('aborted', 'backup source destroyed'));
    if (!this.destroyed) {
      // The spool (and a manifest held beside it) go now, not in _destroy: a caller that exits
      // as soon as its pipeline rejects leaves nothing behind.
      this.manifest.discard();
      this.wal?.discard();
      this.inner.destroy(err);
    }
    return super.destroy(err);
  }

  override _read(): void {
    if (this.tail) void this.pumpTail();
    else this.inner.resume();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const cleanup = async () => {
      const tail = this.tail;
      this.tail = null;
      // Ends the streaming session (a temporary slot goes with it) and removes the spool;
      // first, because a tail waiting for the stream to reach the end LSN only settles once
      // the receiver stops. Again after the source closed: its hook may have made one meanwhile.
      await this.wal?.destroy();
      await finished(this.inner).catch(() => {});
      await this.wal?.destroy();
      await tail?.return(undefined).catch(() => {});
    };
    cleanup().then(
      () => callback(err),
      () => callback(err),
    );
  }

  private hooks(): LiveSourceHooks {
    const plan = this.plan!;
    return {
      beforeBackup: async (settings) => {
        // Before the backup starts: a missing slot or too few WAL senders fails
        // without a checkpoint and before anything is written.
        this.wal = new StreamedWal({
          clientConfig: plan.clientConfig,
          settings,
          slot: plan.slot,
          noSlot: plan.noSlot,
          walDir: plan.walDir,
          walSpool: plan.walSpool,
          limiter: plan.limiter,
          timeoutMs: plan.timeoutMs,
          recycleBuffers: plan.recycleBuffers,
          signal: this.opening.signal,
          onFailure: (err) => this.destroy(err),
        });
        if (this.destroyed) this.wal.discard();
        await this.wal.prepare();
        // Only where pgbb chose the place (no target, no --wal-spool): both candidates were memory-backed.
        const memory = plan.walSpool === undefined ? this.wal.memoryBacked : null;
        if (memory) {
          this.push({ type: 'warning', code: 'wal_spool', message: `WAL is spooled on a memory-backed filesystem (${memory}); it is held to a limit, choose a directory on disk with --wal-spool` });
        }
      },
      started: (lsn, tli) => this.wal?.start(lsn, tli),
      ended: (lsn) => this.wal?.stopAt(lsn),
    };
  }

  private fromSource(ev: BackupEvent): void {
    if (this.plan && ev.type === 'manifest') {
      try {
        this.manifest.add(ev.data);
      } catch (err) {
        this.destroy(err as Error);
      }
      return;
    }
    if (this.plan && ev.type === 'end') {
      this.endEvent = ev;
      return;
    }
    if (!this.push(ev)) this.inner.pause();
  }

  private sourceDone(): void {
    if (this.destroyed) return;
    if (!this.plan) {
      this.push(null);
      return;
    }
    const end = this.endEvent;
    const wal = this.wal;
    if (!end || !wal) {
      this.destroy(new ProtocolError('backup source ended without reporting the end position'));
      return;
    }
    this.tail = this.tailEvents(wal, end);
    void this.pumpTail();
  }

  private async *tailEvents(wal: StreamedWal, end: EndEvent): AsyncGenerator<BackupEvent> {
    yield* wal.tail(end.endLsn, this.manifest);
    yield end;
  }

  /** Emits the streamed tail at the consumer's pace: one spool read per pull. */
  private async pumpTail(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.tail && !this.destroyed) {
        const next = await this.tail.next();
        if (this.destroyed) return;
        if (next.done) {
          this.tail = null;
          this.wal = null;
          this.push(null);
          return;
        }
        if (!this.push(next.value)) return;
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.pumping = false;
    }
  }
}
