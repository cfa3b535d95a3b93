/**
 * Replication source: runs BASE_BACKUP on a replication connection and emits
 * the member stream (see src/events.ts).
 *
 *   socket ─► BackendParser ─► CopyData sub-messages ─► TarParser ─► events ─► push()
 *                 ▲                                                     │
 *                 └──────────── pause() when push() says full ◄─────────┘
 *
 * Backpressure: when the consumer is full we stop reading the socket, so the
 * server blocks in send() and memory stays bounded by one socket read.
 * With `wal: 'stream'` (-X stream) a StreamedWal (src/wal/streamed-wal.ts)
 * streams WAL on a second connection from the moment BASE_BACKUP reports its
 * start — straight into the target's pg_wal/ (`walDir`) or into a spool
 * (`walSpool`) — paced by `rateLimiter` when given; after the server's end
 * position and CommandComplete it is stopped at the end LSN and its files are
 * emitted as the `pg_wal` archive (read back; `writtenIn` when in place):
 *
 *   start, tablespace and base archives … │ WAL: pg_wal archive │ manifest │ end
 *                 (socket-paced)           │  (pulled by _read)  │   held until here
 *
 * The manifest is held back so that it follows the WAL it lists (its
 * WAL-Ranges are checked against what was streamed).
 *
 * Errors: the server's ErrorResponse (checksum failures arrive that way, after
 * the archives), a dropped connection, or a malformed archive destroy the
 * stream; so does any failure of the WAL receiver (slot missing, too few
 * max_wal_senders, its connection lost), at once. Destroying the source
 * removes the spool at once, synchronously (so nothing is left when any
 * pipeline built on it settles), then stops the receiver and ends its session
 * (dropping a temporary slot). `end` is emitted only after the server's
 * CommandComplete and, when streaming, after the WAL archive.
 *
 * A dead server: `timeout` (default 60 s) bounds connecting and any silence
 * of the server while we wait for data (src/net/replication-connection.ts),
 * except during BASE_BACKUP's checkpoint and the wait for WAL archiving,
 * which may legitimately take longer (TCP keepalives still notice a vanished
 * host there). Destroying the source while it connects gives up the attempt;
 * destroying it mid-BASE_BACKUP also cancels the command on the server.
 */
import { Readable } from 'node:stream';
import type { ClientConfig } from 'pg';
import { ReplicationConnection } from '../net/replication-connection';
import { baseBackupCommand, decodeCopyData, legacyBaseBackupCommand, type BaseBackupOptions } from '../codec/protocol/base-backup';
import { TarParser } from '../codec/tar/tar-parser';
import { clientConfig, type ConnectionOptions } from '../net/conninfo';
import { ChecksumError, PgbbError, ProtocolError, ServerError, UsageError } from '../errors';
import type { ArchiveEvent, BackupEvent, StartEvent, Tablespace } from '../events';
import { readServerSettings, type ServerSettings } from '../net/server-settings';
import { checkWalOptions, StreamedWal } from '../wal/streamed-wal';
import { incrementalAvailable, uploadManifest } from '../net/upload-manifest';
import type { RateLimiter } from '../rate-limiter';
import { DEFAULT_TIMEOUT_MS } from '../net/timeouts';

export interface ReplicationSourceOptions {
  /** Connection settings (conninfo / host / port / user), or a ready pg ClientConfig. */
  connection?: ConnectionOptions;
  clientConfig?: ClientConfig;
  label?: string;
  checkpoint?: 'fast' | 'spread';
  /**
   * 'stream': WAL streamed on a second connection becomes a `pg_wal` archive
   * after base (what pg_basebackup does by default); 'fetch' (the default
   * here): the server puts the WAL needed to restore into base.tar; 'none':
   * no WAL.
   */
  wal?: 'stream' | 'fetch' | 'none';
  /** -S: stream from this existing physical slot instead of a temporary one (wal 'stream' only). */
  slot?: string;
  /** --no-slot: stream without a slot (the server may remove WAL before it is streamed). */
  noSlot?: boolean;
  /**
   * wal 'stream': write the WAL straight into this directory — a plain
   * target's `pg_wal/` — as `<segment>.partial` renamed once complete, where
   * it stays (each WAL byte written once). The `pg_wal` archive then says so
   * (`writtenIn`): its data, read back, is for observers; the sink whose
   * pg_wal this is writes nothing for it.
   */
  walDir?: string;
  /**
   * Else: the parent directory of a spool (`pgbb-wal-XXXXXX`), read back
   * into the archive and removed before the manifest; default: os.tmpdir()
   * or /var/tmp, whichever is not memory-backed (src/wal/spool-place.ts).
   */
  walSpool?: string;
  /**
   * -r shared by everything the backup moves: the WAL connection draws from
   * it as it receives (the socket is not read while it is in debt). Give the
   * same limiter to the throttle transform for the base backup's data.
   */
  rateLimiter?: RateLimiter;
  manifest?: boolean;
  manifestChecksums?: BaseBackupOptions['manifestChecksums'];
  tablespaceMap?: boolean;
  /** Server-side rate limit, kB/s. */
  maxRate?: number;
  verifyChecksums?: boolean;
  /** Ask the server for size estimates (it scans the data directory first). */
  progress?: boolean;
  /**
   * PostgreSQL 17+ with summarize_wal on: the prior backup's manifest, sent
   * with UPLOAD_MANIFEST so that the backup is INCREMENTAL (the `start`
   * event says `incremental: true`). On other servers it is ignored and a
   * full backup is taken.
   */
  incrementalFrom?: Buffer;
  /**
   * Milliseconds without a byte from the server (while data is due) after
   * which the connection is given up; also the connect timeout unless the
   * conninfo sets connect_timeout. Default 60 000; 0: wait forever.
   */
  timeout?: number;
  signal?: AbortSignal;
}

export { DEFAULT_TIMEOUT_MS };

type Phase = 'start' | 'tablespaces' | 'copy' | 'end';

export class ReplicationSource extends Readable {
  private conn: ReplicationConnection | null = null;
  private settings: ServerSettings | null = null;
  private readonly backupOptions: BaseBackupOptions;
  private readonly config: ClientConfig;
  private phase: Phase = 'start';
  private startLsn = '';
  private startTli = 0;
  private tablespaces: Tablespace[] = [];
  private tar: TarParser | null = null;
  private inManifest = false;
  private manifestChunks: Buffer[] = [];
  private legacyArchive = 0;
  private end: { lsn: string; tli: number } | null = null;
  private checksumWarnings: string[] = [];
  private checksumFailures = 0;
  private checksumTotal = 0;
  private totalBytes: number | null = null;
  private paused = false;
  private readonly walMethod: 'stream' | 'fetch' | 'none';
  private readonly streamOptions: { slot?: string; noSlot: boolean; walDir?: string; walSpool?: string; limiter?: RateLimiter };
  private wal: StreamedWal | null = null;
  /** pg_wal archive and manifest of a streamed backup, pulled by _read. */
  private tail: AsyncGenerator<BackupEvent> | null = null;
  private pumping = false;
  private readonly timeoutMs: number;
  private readonly incrementalFrom: Buffer | null;
  /** Cuts a connection attempt or slot creation short when the source is destroyed while opening. */
  private readonly opening = new AbortController();

  constructor(opts: ReplicationSourceOptions = {}) {
    super({ objectMode: true, highWaterMark: 16, signal: opts.signal });
    this.config = opts.clientConfig ?? clientConfig(opts.connection ?? {}, true);
    this.walMethod = opts.wal ?? 'fetch';
    checkWalOptions(opts);
    this.incrementalFrom = opts.incrementalFrom ?? null;
    this.timeoutMs = opts.timeout ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs < 0) throw new UsageError(`invalid timeout ${opts.timeout}`);
    this.streamOptions = { slot: opts.slot, noSlot: opts.noSlot ?? false, walDir: opts.walDir, walSpool: opts.walSpool, limiter: opts.rateLimiter };
    this.backupOptions = {
      label: opts.label ?? 'pgbb base backup',
      progress: opts.progress ?? false,
      checkpoint: opts.checkpoint ?? 'spread',
      wal: this.walMethod === 'fetch',
      // pg_basebackup sends WAIT 0 whenever the backup carries its WAL.
      wait: this.walMethod === 'none',
      manifest: opts.manifest ?? true,
      manifestChecksums: opts.manifestChecksums ?? 'CRC32C',
      tablespaceMap: opts.tablespaceMap ?? false,
      maxRate: opts.maxRate,
      verifyChecksums: opts.verifyChecksums ?? true,
    };
    // Validate now so bad options fail before any connection is made.
    baseBackupCommand(this.backupOptions);
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
    // The spool goes now, not in _destroy: a caller that exits as soon as its pipeline rejects leaves nothing behind.
    if (!this.destroyed) this.wal?.discard();
    return super.destroy(err);
  }

  private async open(): Promise<void> {
    const connectOptions = { timeoutMs: this.timeoutMs, signal: this.opening.signal };
    this.conn = await ReplicationConnection.connect(this.config, connectOptions);
    this.settings = await readServerSettings(this.conn);
    if (this.destroyed) return;
    if (this.walMethod === 'stream') {
      // Before BASE_BACKUP: a missing slot or too few WAL senders fails
      // without a checkpoint and before anything is written.
      this.wal = new StreamedWal({
        clientConfig: this.config,
        settings: this.settings,
        ...this.streamOptions,
        ...connectOptions,
        onFailure: (err) => this.destroy(err),
      });
      await this.wal.prepare();
      // Only where pgbb chose the place (no target, no --wal-spool): both candidates were memory-backed.
      const memory = this.streamOptions.walSpool === undefined ? this.wal.memoryBacked : null;
      if (memory) {
        this.emitEvent({ type: 'warning', code: 'wal_spool', message: `WAL is spooled on a memory-backed filesystem (${memory}); it is held to a limit, choose a directory on disk with --wal-spool` });
      }
    }
    if (this.destroyed) return;
    if (this.incrementalFrom && (await incrementalAvailable(this.conn, this.settings.serverVersion))) {
      await uploadManifest(this.conn, this.incrementalFrom);
      this.backupOptions.incremental = true;
    }
    const command =
      this.settings.serverVersion >= 150000
        ? baseBackupCommand(this.backupOptions)
        : legacyBaseBackupCommand(this.backupOptions);
    // The checkpoint before the start position may take minutes (spread): silence is fine until then.
    this.conn.allowSilence(true);
    this.conn
      .run(command, {
        rowDescription: () => this.onRowDescription(),
        dataRow: (values) => this.onDataRow(values),
        copyStart: () => this.onCopyStart(),
        copyData: (payload) => this.onCopyData(payload),
        copyDone: () => this.onCopyDone(),
        notice: (n) => this.onNotice(n.severity, n.message),
      })
      .then(
        () => this.finish(),
        (err) => {
          throw this.mapError(err);
        },
      )
      .catch((err) => this.destroy(err));
  }

  override _read(): void {
    if (this.tail) {
      void this.pumpTail();
      return;
    }
    if (this.paused) {
      this.paused = false;
      this.conn?.resume();
    }
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // Dropping the connection (and cancelling the command) makes the server abort the backup.
    const cancelled = this.conn?.abort();
    const tail = this.tail;
    this.tail = null;
    const wal = this.wal;
    this.wal = null;
    const cleanup = async () => {
      // Ends the streaming session (a temporary slot goes with it) and removes
      // the spool; first, because a tail waiting for the stream to reach the
      // end LSN only settles once the receiver stops.
      await wal?.destroy();
      await tail?.return(undefined).catch(() => {});
      await cancelled;
    };
    cleanup().then(
      () => callback(err),
      () => callback(err),
    );
  }

  private emitEvent(ev: BackupEvent): void {
    if (!this.push(ev) && !this.paused) {
      this.paused = true;
      this.conn?.pause();
    }
  }

  private onRowDescription(): void {
    if (this.phase === 'start' && this.startLsn) this.phase = 'tablespaces';
    else if (this.phase === 'copy') this.phase = 'end';
  }

  private onDataRow(values: (string | null)[]): void {
    switch (this.phase) {
      case 'start':
        this.startLsn = values[0] ?? '';
        this.startTli = Number(values[1]);
        // The checkpoint is done: from here on the server sends as fast as we read.
        this.conn?.allowSilence(false);
        // Stream from the backup's start while the server sends the files.
        this.wal?.start(this.startLsn, this.startTli);
        return;
      case 'tablespaces': {
        const size = values[2] == null ? null : Number(values[2]) * 1024;
        this.tablespaces.push({ oid: values[0], location: values[1] ?? '', size });
        return;
      }
      case 'end':
        this.end = { lsn: values[0] ?? '', tli: Number(values[1]) };
        this.wal?.stopAt(this.end.lsn);
        return;
      default:
        throw new ProtocolError('unexpected data row during BASE_BACKUP copy');
    }
  }

  private onCopyStart(): void {
    const legacy = this.settings!.serverVersion < 150000;
    if (this.phase !== 'copy') {
      this.phase = 'copy';
      this.emitStart();
    }
    if (!legacy) return;
    // 13/14: one CopyOut per tablespace row in order, then one for the manifest.
    if (this.legacyArchive < this.tablespaces.length) {
      const ts = this.tablespaces[this.legacyArchive++];
      this.openArchive(ts.oid === null ? 'base.tar' : `${ts.oid}.tar`, ts.location);
    } else {
      this.inManifest = true;
    }
  }

  private emitStart(): void {
    const s = this.settings!;
    const known = this.tablespaces.every((t) => t.size !== null);
    this.totalBytes = known ? this.tablespaces.reduce((a, t) => a + (t.size ?? 0), 0) : null;
    const ev: StartEvent = {
      type: 'start',
      serverVersion: s.serverVersion,
      systemIdentifier: s.systemIdentifier,
      timeline: this.startTli,
      startLsn: this.startLsn,
      tablespaces: this.tablespaces,
      walSegmentSize: s.walSegmentSize,
      blockSize: s.blockSize,
      segmentBlocks: s.segmentBlocks,
      dataChecksums: s.dataChecksums,
      label: this.backupOptions.label,
      totalBytes: this.totalBytes,
      ...(this.backupOptions.incremental ? { incremental: true } : {}),
    };
    this.emitEvent(ev);
  }

  private openArchive(fileName: string, location: string): void {
    this.closeArchive();
    const base = fileName === 'base.tar';
    const name = fileName.replace(/\.tar$/, '');
    if (!base && !/^\d+$/.test(name)) {
      throw new ProtocolError(`unexpected archive "${fileName}" from server (server-side compression is not supported)`);
    }
    const ev: ArchiveEvent = { type: 'archive', kind: base ? 'base' : 'tablespace', name, location };
    this.emitEvent(ev);
    this.tar = new TarParser(
      {
        entry: (m) =>
          this.emitEvent({ type: 'entry', path: m.path, kind: m.kind, size: m.size, mode: m.mode, mtime: m.mtime, linkTarget: m.linkTarget }),
        data: (chunk, offset) => this.emitEvent({ type: 'data', offset, chunk }),
        entryEnd: () => this.emitEvent({ type: 'entry-end' }),
      },
      { archiveName: fileName },
    );
  }

  private closeArchive(): void {
    if (!this.tar) return;
    this.tar.end();
    this.tar = null;
    this.emitEvent({ type: 'archive-end' });
  }

  private onCopyData(payload: Buffer): void {
    if (this.settings!.serverVersion < 150000) {
      if (this.inManifest) this.manifestChunks.push(payload);
      else if (this.tar) this.tar.write(payload);
      else throw new ProtocolError('archive data before any archive started');
      return;
    }
    const msg = decodeCopyData(payload);
    switch (msg.kind) {
      case 'data':
        if (this.inManifest) this.manifestChunks.push(msg.data);
        else if (this.tar) this.tar.write(msg.data);
        else throw new ProtocolError('archive data before any archive started');
        return;
      case 'archive':
        if (this.inManifest) throw new ProtocolError('new archive after the manifest');
        this.openArchive(msg.name, msg.location);
        return;
      case 'progress':
        this.emitEvent({ type: 'progress', done: msg.done, total: this.totalBytes });
        return;
      case 'manifest':
        this.closeArchive();
        this.inManifest = true;
        return;
    }
  }

  private onCopyDone(): void {
    this.closeArchive();
    if (this.inManifest) {
      this.inManifest = false;
      if (this.manifestChunks.length) {
        const data = Buffer.concat(this.manifestChunks);
        // With streamed WAL the manifest must follow the pg_wal archive.
        if (this.wal) this.wal.holdManifest(data);
        else this.emitEvent({ type: 'manifest', data });
      }
      this.manifestChunks = [];
    }
  }

  private onNotice(severity: string, message: string): void {
    // "waiting for required WAL segments to be archived" (WAIT, i.e. -X none): as long as archiving takes.
    if (this.backupOptions.wait && severity === 'NOTICE') this.conn?.allowSilence(true);
    const code = /checksum/i.test(message) ? 'checksum' : 'server';
    // Kept for the final error; bounded, the server's own total says the rest.
    if (code === 'checksum' && /failed in file/.test(message)) {
      if (this.checksumWarnings.length < 10) this.checksumWarnings.push(message);
      this.checksumFailures++;
    }
    const total = /^(\d+) total checksum verification failures$/.exec(message);
    if (total) this.checksumTotal = Number(total[1]);
    this.emitEvent({ type: 'warning', code, message: severity && severity !== 'WARNING' ? `${severity.toLowerCase()}: ${message}` : message });
  }

  private async finish(): Promise<void> {
    if (!this.end) {
      this.destroy(new ProtocolError('server ended BASE_BACKUP without reporting the end position'));
      return;
    }
    const conn = this.conn;
    this.conn = null;
    await conn?.close();
    if (this.wal) {
      this.tail = this.wal.tail(this.end.lsn);
      void this.pumpTail();
      return;
    }
    this.emitEvent({ type: 'end', endLsn: this.end.lsn, timeline: this.end.tli });
    this.push(null);
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
          this.push({ type: 'end', endLsn: this.end!.lsn, timeline: this.end!.tli });
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

  private mapError(err: unknown): Error {
    if (err instanceof ServerError && err.sqlstate === 'XX001') {
      const listed = this.checksumWarnings;
      const more = Math.max(this.checksumTotal, this.checksumFailures) - listed.length;
      const detail = listed.length ? `: ${listed.join('; ')}${more > 0 ? `; and ${more} more` : ''}` : '';
      return new ChecksumError(`${err.message}${detail}`, { cause: err });
    }
    if (err instanceof PgbbError) return err;
    return err as Error;
  }
}
