/**
 * WAL receiver: the second replication connection of a `-X stream` backup.
 * It streams WAL from the backup's start into a WalSpool (the backup's own
 * pg_wal/ with `walDir`, else a spool directory) while BASE_BACKUP runs on
 * the first connection, and stops once the backup's end LSN is on disk.
 *
 *   prepare()          connect, IDENTIFY_SYSTEM (same system?), spool,
 *                      slot: CREATE_REPLICATION_SLOT … TEMPORARY (default),
 *                      READ_REPLICATION_SLOT for -S on 15+, none for noSlot
 *   start(lsn, tli)    TIMELINE_HISTORY (tli > 1), START_REPLICATION from
 *                      the start LSN rounded down to a segment boundary
 *   'w' XLogData  ───► WalSpool.write (segments at their offsets); with a
 *                      limiter (-r) the bytes are debited from the backup's
 *                      bucket and the socket is paused while it is in debt
 *   'k' keepalive ───► status update at once when the server asks
 *   at start, then
 *   every 10 s    ───► status update (wal-status.ts: what it reports; with a
 *                      timeout more often, asking for a reply)
 *   stopAt(end)        once received ≥ end: CopyDone, wait for the server's
 *                      CopyDone / CommandComplete / ReadyForQuery, close,
 *                      the last segment renamed; resolves with the summary
 *   keep()             in place: the WAL stays (the backup has it)
 *   discard()          removes the spool now, synchronously
 *   destroy()          Terminate (the server drops a temporary slot when the
 *                      session ends; close waits for that), remove the spool
 *
 * This mirrors pg_basebackup (pg_basebackup.c StartLogStreamer, receivelog.c);
 * the commands before the stream are in wal-session-setup.ts.
 * Errors: the first failure (slot missing or busy, too few max_wal_senders,
 * connection lost, the server ending the stream early, a spool write) is
 * reported once through `onFailure` and rejects a pending `stopAt`; the
 * caller then destroys the receiver.
 */
import type { ClientConfig } from 'pg';
import { ReplicationConnection } from '../net/replication-connection';
import { PgbbError, ProtocolError } from '../errors';
import { formatLsn, parseLsn } from '../codec/lsn';
import { decodeStreamingMessage } from '../codec/protocol/streaming-messages';
import { startReplicationCommand, validateSlotName } from '../codec/protocol/replication-commands';
import { WalSpool, type SpoolSummary } from './wal-spool';
import type { RateLimiter } from '../rate-limiter';
import { ReadPacer } from './read-pacer';
import { walStreamError } from './wal-stream-error';
import { checkPhysicalSlot, createTemporarySlot, fetchTimelineHistory, identifySystem } from './wal-session-setup';
import { statusEvery, statusUpdate } from './wal-status';
import { hasReadReplicationSlot } from '../codec/server-version';

export interface WalReceiverOptions {
  /** The cluster is group-readable (data_directory_mode 0750): WAL written in place gets 0750/0640, as the rest of it. */
  groupReadable?: boolean;
  /** The same connection settings as the base backup's; `replication` is forced to physical. */
  clientConfig: ClientConfig;
  serverVersion: number;
  /** From the base backup connection: both must talk to the same system. */
  systemIdentifier: string;
  /** The server's wal_segment_size in bytes. */
  segmentSize: number;
  /** An existing physical slot to stream from (-S NAME). */
  slot?: string;
  /** Stream without any slot (--no-slot): the server may recycle WAL we still need. */
  noSlot?: boolean;
  /**
   * Write the WAL straight into this directory (a plain backup's own
   * `pg_wal/`), where it stays: see WalSpool.inPlace.
   */
  walDir?: string;
  /** Else: parent directory of a spool that is removed after (default defaultSpoolParent()). */
  spoolDir?: string;
  /**
   * The backup's one token bucket (-r): each XLogData message draws from it,
   * and the socket is not read while the bucket is in debt, so the server
   * is held back rather than our memory filled.
   */
  limiter?: RateLimiter;
  /** Milliseconds between status updates (default 10 s, pg_basebackup's -s). */
  statusInterval?: number;
  /**
   * Milliseconds without a byte from the server after which the stream is
   * given up (and the connect timeout); 0 or undefined: none.
   */
  timeoutMs?: number;
  /** Aborting gives up connecting. */
  signal?: AbortSignal;
  /** Called once with the first failure. */
  onFailure?: (err: Error) => void;
}

type State = 'new' | 'prepared' | 'streaming' | 'stopping' | 'done' | 'failed' | 'destroyed';

export class WalReceiver {
  private conn: ReplicationConnection | null = null;
  private spool: WalSpool | null = null;
  private slotName: string | undefined;
  private temporary = false;
  private state: State = 'new';
  private failure: Error | null = null;
  private serverTimeline = 0;
  private target: bigint | null = null;
  private copyDoneSent = false;
  private timer: NodeJS.Timeout | null = null;
  /** -r: the socket is not read while the rate limiter is in debt. */
  private pacer: ReadPacer | null = null;
  private discarded = false;
  private waiter: { resolve: (s: SpoolSummary) => void; reject: (e: Error) => void } | null = null;
  private stopped: Promise<SpoolSummary> | null = null;

  constructor(private readonly opts: WalReceiverOptions) {
    if (opts.slot !== undefined) validateSlotName(opts.slot);
  }

  /** The slot streamed from: the -S name, the temporary slot's name, or undefined. */
  get slot(): string | undefined {
    return this.slotName;
  }

  get isTemporarySlot(): boolean {
    return this.temporary;
  }

  /** WAL bytes received so far. */
  get bytes(): number {
    return this.spool?.received ?? 0;
  }

  /** Connects and sets up the slot; rejects (and leaves cleanup to destroy()) on any failure. */
  async prepare(): Promise<void> {
    const o = this.opts;
    this.conn = await ReplicationConnection.connect({ ...o.clientConfig, replication: 'true' } as ClientConfig, {
      timeoutMs: o.timeoutMs,
      signal: o.signal,
      // Every XLogData is written (writeSync) before its handler returns and nothing keeps it: recycled read memory needs no hold.
      slabs: true,
    }).catch((err) => {
      throw walStreamError(err);
    });
    const conn = this.conn;
    if (o.limiter) this.pacer = new ReadPacer(o.limiter, { pause: () => conn.pause(), resume: () => conn.resume() });
    if (this.discarded) throw new PgbbError('aborted', 'WAL streaming was stopped before it began');
    // Synchronous: discard() cannot run in between, so no spool outlives it.
    this.spool = o.walDir !== undefined ? WalSpool.inPlace(o.walDir, o.groupReadable) : WalSpool.create(o.spoolDir);
    this.serverTimeline = await identifySystem(this.conn, o.systemIdentifier);
    if (o.slot !== undefined) {
      this.slotName = o.slot;
      if (hasReadReplicationSlot(o.serverVersion)) await checkPhysicalSlot(this.conn, o.slot);
    } else if (!o.noSlot) {
      this.slotName = await createTemporarySlot(this.conn, o.serverVersion);
      this.temporary = true;
    }
    if (this.state === 'new') this.state = 'prepared';
  }

  /**
   * Starts streaming at the backup's start LSN (rounded down to a segment
   * boundary) on its timeline. Failures go to onFailure.
   */
  start(startLsn: string, timeline: number): void {
    if (this.state !== 'prepared') return;
    this.state = 'streaming';
    this.stream(startLsn, timeline).catch((err) => this.fail(walStreamError(err)));
  }

  /** Resolves once WAL up to `endLsn` is in the spool and the stream has ended cleanly. */
  stopAt(endLsn: string): Promise<SpoolSummary> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.stopped) return this.stopped;
    this.target = parseLsn(endLsn);
    this.stopped = new Promise<SpoolSummary>((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
    this.maybeStop();
    return this.stopped;
  }

  /** The spool is where the backup keeps its WAL (in place, streaming done): destroy() leaves it. */
  keep(): void {
    this.spool?.keep();
  }

  /** Where the WAL is written (the spool directory, or walDir in place), once prepared. */
  get dir(): string | null {
    return this.spool?.dir ?? null;
  }

  /** The spool's filesystem when it is memory-backed ('tmpfs', 'ramfs'), else null. */
  get memoryBacked(): string | null {
    return this.spool && !this.spool.inPlace ? this.spool.memoryBacked : null;
  }

  /**
   * Removes the spool now, synchronously (from a stream's destroy(), so that
   * nothing is left once a pipeline settles, even if its caller exits at
   * once); destroy() still ends the session.
   */
  discard(): void {
    this.discarded = true;
    this.spool?.remove();
  }

  /** Drops the connection (a temporary slot goes with the session) and removes the spool. */
  async destroy(): Promise<void> {
    if (this.state === 'destroyed') return;
    const wasFailed = this.state === 'failed';
    this.state = 'destroyed';
    this.clearTimer();
    this.pacer?.stop();
    this.waiter?.reject(this.failure ?? new PgbbError('aborted', 'WAL streaming was stopped before the backup ended'));
    this.waiter = null;
    const conn = this.conn;
    this.conn = null;
    // A polite Terminate and a wait for the server to close the socket: the
    // temporary slot is dropped before the backend exits.
    if (conn && !conn.isClosed && !wasFailed) await conn.close();
    else conn?.destroy();
    this.spool?.remove();
  }

  private async stream(startLsn: string, timeline: number): Promise<void> {
    const o = this.opts;
    const conn = this.conn!;
    if (timeline > this.serverTimeline) {
      throw new ProtocolError(`starting timeline ${timeline} is not present in the server`);
    }
    const lsn = parseLsn(startLsn);
    const start = lsn - (lsn % BigInt(o.segmentSize));
    this.spool!.begin(start, timeline, o.segmentSize);
    if (timeline > 1) await fetchTimelineHistory(conn, timeline, this.spool!);
    if (this.state !== 'streaming') return;
    let serverEnded = false;
    await conn.run(startReplicationCommand(start, timeline, this.slotName), {
      copyStart: () => {
        // A first status at once, as receivelog.c sends: with a slot its
        // flush (the start segment) moves the slot's restart_lsn up to the
        // WAL this backup needs, and no further back.
        this.sendStatus();
        this.timer = setInterval(() => this.sendStatus(), statusEvery(o.statusInterval, o.timeoutMs));
        this.timer.unref();
      },
      copyData: (payload) => this.onCopyData(payload),
      // Written (writeSync) before onCopyData returns, nothing kept: one buffer joins every split XLogData.
      copyDataTransient: true,
      copyDone: () => {
        // The server ended the stream first (end of timeline, shutdown): answer so it can finish.
        if (!this.copyDoneSent) {
          serverEnded = true;
          this.copyDoneSent = true;
          conn.sendCopyDone();
        }
      },
    });
    this.clearTimer();
    this.pacer?.stop();
    if (serverEnded || (this.state as State) !== 'stopping') {
      const at = formatLsn(this.spool!.position);
      throw new PgbbError('wal_stream', `server ended WAL streaming at ${at} on timeline ${timeline} before the backup's end`);
    }
    await conn.close();
    this.conn = null;
    this.state = 'done';
    this.spool!.finish();
    const summary = this.spool!.summary();
    this.waiter?.resolve(summary);
    this.waiter = null;
  }

  private onCopyData(payload: Buffer): void {
    const msg = decodeStreamingMessage(payload);
    if (msg.kind === 'keepalive') {
      if (msg.replyRequested) this.sendStatus();
      return;
    }
    // After our CopyDone the server may still send what was in flight: not needed.
    if (this.copyDoneSent) return;
    this.spool!.write(msg.dataStart, msg.data);
    this.pacer?.paid(msg.data.length);
    this.maybeStop();
  }

  private maybeStop(): void {
    if (this.state !== 'streaming' || this.target === null || this.copyDoneSent) return;
    const spool = this.spool!;
    if (spool.position < 0n || spool.position < this.target) return;
    this.state = 'stopping';
    this.copyDoneSent = true;
    this.clearTimer();
    // The end is reached: read the server's answer at once, whatever is owed.
    this.pacer?.stop();
    this.conn?.sendCopyDone();
  }

  private sendStatus(): void {
    const conn = this.conn;
    const spool = this.spool;
    if (!conn || !spool || this.copyDoneSent || conn.isClosed || spool.position < 0n) return;
    conn.sendCopyData(statusUpdate(spool, this.slotName !== undefined, this.opts.timeoutMs));
  }

  private fail(err: Error): void {
    if (this.state === 'destroyed' || this.state === 'failed' || this.state === 'done') return;
    this.state = 'failed';
    this.failure = err;
    this.clearTimer();
    this.pacer?.stop();
    this.conn?.destroy(err);
    this.waiter?.reject(err);
    this.waiter = null;
    this.opts.onFailure?.(err);
  }

  private clearTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
