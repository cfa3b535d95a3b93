/**
 * The `-X stream` half of a backup source: a WalReceiver running beside
 * BASE_BACKUP, and the tail of the member stream it produces once the base
 * backup is over.
 *
 *   prepare()            second connection and slot, before BASE_BACKUP
 *   start(lsn, tli)      when BASE_BACKUP reports its start position
 *   stopAt(endLsn)       when BASE_BACKUP reports its end position: streaming
 *                        stops as soon as WAL reaches it (not later, when the
 *                        source gets round to the tail, which would stream
 *                        WAL written meanwhile into the backup for nothing)
 *   holdManifest(bytes)  the server's manifest waits: it must follow the WAL
 *   tail(endLsn)         async generator, pulled by the source:
 *                          (waits until WAL up to endLsn is spooled)
 *                          archive pg_wal … archive-end   (src/wal/wal-archive.ts)
 *                          manifest                        (if the server sent one)
 *   discard()            removes the spool now (synchronously, from the
 *                        source's destroy())
 *   destroy()            ends the streaming session, removes the spool
 *
 * Errors: the receiver's failures go to `onFailure` at once (the source
 * destroys itself); `tail` rejects with them too, or with a ManifestError
 * when the manifest's WAL-Ranges were not all streamed.
 */
import type { ClientConfig } from 'pg';
import type { BackupEvent } from '../events';
import type { ServerSettings } from '../net/server-settings';
import { WalReceiver } from './wal-receiver';
import type { SpoolSummary } from './wal-spool';
import { walArchiveEvents } from './wal-archive';
import { checkWalCoverage, parseWalRanges } from '../codec/wal-ranges';
import { validateSlotName } from '../codec/protocol/replication-commands';
import { UsageError } from '../errors';
import type { RateLimiter } from '../rate-limiter';

/** Refuses WAL options that do not go together; the CLI calls it before touching the target. */
export function checkWalOptions(opts: { wal?: string; slot?: string; noSlot?: boolean }): void {
  const wal = opts.wal ?? 'fetch';
  if (!['stream', 'fetch', 'none'].includes(wal)) {
    throw new UsageError(`invalid WAL method "${wal}", must be "stream", "fetch" or "none"`);
  }
  if (opts.slot !== undefined) {
    if (wal !== 'stream') throw new UsageError('replication slots can only be used with WAL streaming (-X stream)');
    if (opts.noSlot) throw new UsageError('--no-slot cannot be used with a slot name');
    validateSlotName(opts.slot);
  }
}

export interface StreamedWalOptions {
  clientConfig: ClientConfig;
  settings: ServerSettings;
  slot?: string;
  noSlot?: boolean;
  /** Write WAL straight into this directory (a plain target's pg_wal/), where it stays. */
  walDir?: string;
  /** Else: parent directory of a spool removed after (default defaultSpoolParent()). */
  walSpool?: string;
  /** -r: the backup's token bucket, which the WAL connection draws from too. */
  limiter?: RateLimiter;
  /** The receiver's limit on the server's silence, ms (see WalReceiverOptions). */
  timeoutMs?: number;
  /** Aborting gives up connecting. */
  signal?: AbortSignal;
  onFailure: (err: Error) => void;
}

export class StreamedWal {
  private readonly receiver: WalReceiver;
  private manifest: Buffer | null = null;
  private stopped: Promise<SpoolSummary> | null = null;
  private readonly paced: boolean;

  constructor(o: StreamedWalOptions) {
    this.paced = o.limiter !== undefined;
    this.receiver = new WalReceiver({
      clientConfig: o.clientConfig,
      serverVersion: o.settings.serverVersion,
      systemIdentifier: o.settings.systemIdentifier,
      segmentSize: o.settings.walSegmentSize,
      slot: o.slot,
      noSlot: o.noSlot,
      walDir: o.walDir,
      spoolDir: o.walSpool,
      limiter: o.limiter,
      timeoutMs: o.timeoutMs,
      signal: o.signal,
      onFailure: o.onFailure,
    });
  }

  /** WAL bytes streamed so far. */
  get bytes(): number {
    return this.receiver.bytes;
  }

  prepare(): Promise<void> {
    return this.receiver.prepare();
  }

  start(startLsn: string, timeline: number): void {
    this.receiver.start(startLsn, timeline);
  }

  stopAt(endLsn: string): void {
    if (this.stopped) return;
    this.stopped = this.receiver.stopAt(endLsn);
    // Failures also reach onFailure; tail() rethrows them.
    this.stopped.catch(() => {});
  }

  holdManifest(data: Buffer): void {
    this.manifest = data;
  }

  async *tail(endLsn: string): AsyncGenerator<BackupEvent> {
    this.stopAt(endLsn);
    const spool = await this.stopped!;
    if (this.manifest) checkWalCoverage(parseWalRanges(this.manifest), spool);
    yield* walArchiveEvents(spool, { paced: this.paced });
    // A spool has been read back: it goes before the manifest marks the backup whole.
    if (!spool.inPlace) await this.receiver.destroy();
    if (this.manifest) yield { type: 'manifest', data: this.manifest };
    // In place, the WAL belongs to the backup once the whole stream was handed on.
    this.receiver.keep();
    await this.receiver.destroy();
  }

  /** A spool on tmpfs or ramfs: its name, for a warning (it is held to a budget). */
  get memoryBacked(): string | null {
    return this.receiver.memoryBacked;
  }

  /** Removes the spool at once (see WalReceiver.discard); destroy() ends the session. */
  discard(): void {
    this.receiver.discard();
  }

  destroy(): Promise<void> {
    return this.receiver.destroy();
  }
}
