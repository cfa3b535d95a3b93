/**
 * The thin Readable of a replication backup: runs BASE_BACKUP on a
 * replication connection and pushes what the decoder makes of the reply.
 * It only reads, pauses, resumes and destroys:
 *
 *   socket ─► ReplicationConnection ─► BaseBackupDecoder ─► push()
 *                   ▲                                        │
 *                   └──────── pause() when push() says full ◄┘
 *
 * Backpressure: when the consumer is full we stop reading the socket, so the
 * server blocks in send() and memory stays bounded by one socket read.
 * A live source (src/sources/live-source.ts): `hooks.beforeBackup` is
 * awaited before BASE_BACKUP, `started`/`ended` hear its positions.
 *
 * Silence: `timeoutMs` bounds connecting and any silence of the server while
 * data is due, except during BASE_BACKUP's checkpoint and the wait for WAL
 * archiving (WAIT), which may legitimately take longer.
 * Destroying it while it connects gives up the attempt; destroying it
 * mid-BASE_BACKUP also cancels the command on the server.
 */
import { Readable } from 'node:stream';
import type { ClientConfig } from 'pg';
import { ReplicationConnection } from '../net/replication-connection';
import { baseBackupCommand, legacyBaseBackupCommand, type BaseBackupOptions } from '../codec/protocol/base-backup';
import { BaseBackupDecoder, type ArchiveBytesEvent, type StartFacts } from '../codec/protocol/base-backup-decoder';
import { PgbbError, ServerError, UsageError } from '../errors';
import type { BackupEvent } from '../events';
import { readServerSettings, type ServerSettings } from '../net/server-settings';
import { incrementalAvailable, uploadManifest } from '../net/upload-manifest';
import type { LiveSourceHooks } from './live-source';
import { retain } from '../io/slab-pool';
import { ContiguousParts } from './contiguous-parts';
import { hasOptionListGrammar, hasServerCompression } from '../codec/server-version';

export interface BaseBackupReaderOptions {
  config: ClientConfig;
  backup: BaseBackupOptions;
  /** Milliseconds (see ConnectOptions.timeoutMs); 0: none. */
  timeoutMs: number;
  incrementalFrom: Buffer | null;
  hooks: LiveSourceHooks;
  /**
   * Read into recycled slabs (src/io/slab-pool.ts): each data, manifest and
   * archive-bytes Buffer is pushed retained, and stays valid until a stage
   * releases it. Only for pipelines whose every stage is pgbb's own.
   */
  slabs?: boolean;
}

export class BaseBackupReader extends Readable {
  private conn: ReplicationConnection | null = null;
  private paused = false;
  /** Cuts a connection attempt short when the reader is destroyed while opening. */
  private readonly opening = new AbortController();

  constructor(private readonly o: BaseBackupReaderOptions) {
    super({ objectMode: true, highWaterMark: 16 });
  }

  /** Aborted when the reader is destroyed: for whatever its hooks open meanwhile. */
  get signal(): AbortSignal {
    return this.opening.signal;
  }

  override _construct(callback: (err?: Error | null) => void): void {
    this.open().then(
      () => callback(),
      (err) => callback(err),
    );
  }

  override destroy(err?: Error): this {
    // Node runs _destroy only once _construct is done: cut a pending connect short.
    this.opening.abort(err ?? new PgbbError('aborted', 'backup source destroyed'));
    return super.destroy(err);
  }

  override _read(): void {
    if (this.paused) {
      this.paused = false;
      this.conn?.resume();
    }
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // Dropping the connection (and cancelling the command) makes the server abort the backup.
    const cancelled = this.conn?.abort() ?? Promise.resolve();
    cancelled.then(
      () => callback(err),
      () => callback(err),
    );
  }

  private async open(): Promise<void> {
    const o = this.o;
    this.conn = await ReplicationConnection.connect(o.config, { timeoutMs: o.timeoutMs, signal: this.opening.signal, slabs: o.slabs === true });
    const settings = await readServerSettings(this.conn);
    if (this.destroyed) return;
    if (o.backup.compression && !hasServerCompression(settings.serverVersion)) {
      throw new UsageError(`server-side compression (--compress server-zstd) needs PostgreSQL 15 or later; the server is ${settings.serverVersion}: use client-side zstd`);
    }
    await o.hooks.beforeBackup(settings);
    if (this.destroyed) return;
    const backup = { ...o.backup };
    if (o.incrementalFrom && (await incrementalAvailable(this.conn, settings.serverVersion))) {
      await uploadManifest(this.conn, o.incrementalFrom);
      backup.incremental = true;
    }
    const command = hasOptionListGrammar(settings.serverVersion) ? baseBackupCommand(backup) : legacyBaseBackupCommand(backup);
    const conn = this.conn;
    const decoder = new BaseBackupDecoder({
      start: startFacts(settings, backup),
      emit: (ev) => this.emitEvent(ev),
      compressed: backup.compression !== undefined,
      noData: backup.target !== undefined,
      onStart: (lsn, tli) => {
        // The checkpoint is done: from here on the server sends as fast as we read.
        conn.allowSilence(false);
        o.hooks.started(lsn, tli);
      },
      onEnd: (lsn, tli) => o.hooks.ended(lsn, tli),
    });
    // Parts of one message that are neighbours in read memory go on as one (contiguous-parts.ts).
    const parts = new ContiguousParts((part, first, last) => decoder.copyDataPart(part, first, last));
    // The checkpoint before the start position may take minutes (spread): silence is fine until then.
    conn.allowSilence(true);
    conn
      .run(command, {
        rowDescription: () => decoder.rowDescription(),
        dataRow: (values) => decoder.dataRow(values),
        copyStart: (kind) => decoder.copyStart(kind),
        copyData: (payload) => decoder.copyData(payload),
        copyDataPart: (part, first, last) => parts.part(part, first, last),
        copyDone: () => decoder.copyDone(),
        commandComplete: () => decoder.commandComplete(),
        notice: (n) => {
          // "waiting for required WAL segments to be archived" (WAIT, i.e. -X none): as long as archiving takes.
          if (backup.wait && n.severity === 'NOTICE') conn.allowSilence(true);
          decoder.notice(n);
        },
      })
      .then(
        async () => {
          const end = decoder.finish();
          this.conn = null;
          await conn.close();
          this.push({ type: 'end', endLsn: end.lsn, timeline: end.tli });
          this.push(null);
        },
        (err) => {
          throw serverCompressionError(err, backup) ?? decoder.mapError(err);
        },
      )
      .catch((err) => this.destroy(err));
  }

  private emitEvent(ev: BackupEvent | ArchiveBytesEvent): void {
    if (ev.type === 'data') retain(ev.chunk);
    else if (ev.type === 'manifest' || ev.type === 'archive-bytes') retain(ev.data);
    if (!this.push(ev) && !this.paused) {
      this.paused = true;
      this.conn?.pause();
    }
  }
}

/** What the start event says beyond the server's rows: the server's settings and the options. */
export function startFacts(settings: ServerSettings, backup: Pick<BaseBackupOptions, 'label' | 'incremental'>): StartFacts {
  return {
    serverVersion: settings.serverVersion,
    systemIdentifier: settings.systemIdentifier,
    walSegmentSize: settings.walSegmentSize,
    blockSize: settings.blockSize,
    segmentBlocks: settings.segmentBlocks,
    dataChecksums: settings.dataChecksums,
    ...(settings.groupReadable ? { groupReadable: true } : {}),
    label: backup.label,
    ...(backup.incremental ? { incremental: true } : {}),
  };
}

/** A server built without zstd says "invalid compression specification: this build does not support…": say whose build. */
function serverCompressionError(err: unknown, backup: BaseBackupOptions): Error | null {
  if (!backup.compression || !(err instanceof ServerError) || !/compression/i.test(err.message)) return null;
  return new ServerError(`the server refused --compress server-zstd (${err.message}); use client-side zstd instead`, err.sqlstate, 'server', { cause: err });
}
