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
 *   tail(endLsn, held)   async generator, pulled by the source:
 *                          (waits until WAL up to endLsn is spooled)
 *                          archive pg_wal … archive-end   (src/wal/wal-archive.ts)
 *                          manifest*                       the held manifest's pieces
 *                                                          (src/sources/manifest-hold.ts)
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
  const wal = opts.wal ?? 'stream';
  if (!['stream', 'fetch', 'none'].includes(wal)) {
    throw new UsageError(`invalid WAL method "${wal}", must be "stream", "fetch" or "none"`);
  }
  if (opts.slot !== undefined) {
    if (wal !== 'stream') throw new UsageError('replication slots can only be used with WAL streaming (-X stream)');
    if (opts.noSlot) throw new UsageError('--no-slot cannot be used with a slot name');
    validateSlotName(opts.slot);
  }
}

/** The server's manifest, held until the WAL archive is out (src/sources/manifest-hold.ts implements it). */
export interface HeldManifest {
  /** Bytes held (0: the server sent none). */
  readonly size: number;
  /** Its last bytes, where WAL-Ranges are. */
  tail(): Buffer;
  /** Its file (if any) loses its name, staying readable: before the spool directory goes. */
  detach(): void;
  /** With `recycle`, read back into recycled memory (each piece retained, for its writer to give back). */
  read(recycle?: boolean): AsyncIterable<Buffer>;
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
  /** Read the archive's WAL back into recycled slabs (src/io/slab-pool.ts; ReplicationSourceOptions.recycleBuffers). */
  recycleBuffers?: boolean;
  onFailure: (err: Error) => void;
}

export class StreamedWal {
  private readonly receiver: WalReceiver;
  private stopped: Promise<SpoolSummary> | null = null;
  private readonly paced: boolean;
  private readonly recycle: boolean;

  constructor(o: StreamedWalOptions) {
    this.paced = o.limiter !== undefined;
    this.recycle = o.recycleBuffers === true;
    this.receiver = new WalReceiver({
      clientConfig: o.clientConfig,
      serverVersion: o.settings.serverVersion,
      systemIdentifier: o.settings.systemIdentifier,
      segmentSize: o.settings.walSegmentSize,
      groupReadable: o.settings.groupReadable,
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

  /** Where the WAL is written (spool directory or walDir), once prepared: a held manifest's file goes there too. */
  get dir(): string | null {
    return this.receiver.dir;
  }

  async *tail(endLsn: string, manifest: HeldManifest | null): AsyncGenerator<BackupEvent> {
    this.stopAt(endLsn);
    const spool = await this.stopped!;
    if (manifest?.size) checkWalCoverage(parseWalRanges(manifest.tail()), spool);
    yield* walArchiveEvents(spool, { paced: this.paced, recycle: this.recycle });
    // A spool has been read back: it goes before the manifest marks the backup whole
    // (a manifest spooled inside it stays readable: its name goes first).
    manifest?.detach();
    if (!spool.inPlace) await this.receiver.destroy();
    if (manifest) for await (const data of manifest.read(this.recycle)) yield { type: 'manifest', data };
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
