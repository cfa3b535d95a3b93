/**
 * Replication source: a live server's base backup as a member stream (see
 * src/events.ts), composed of three parts:
 *
 *   BaseBackupReader (src/sources/base-backup-reader.ts)     BASE_BACKUP on a
 *       replication connection, its reply decoded by BaseBackupDecoder
 *       (src/codec/protocol/base-backup-decoder.ts); socket-paced
 *   StreamedWalSource (src/sources/streamed-wal-source.ts)   with `wal:
 *       'stream'`: WAL streamed beside it, the `pg_wal` archive appended,
 *       the manifest held until after it; else the reader's events as they are
 *
 * This file maps the options onto them and checks them before any
 * connection is made.
 */
import type { ClientConfig } from 'pg';
import { baseBackupCommand, type BaseBackupOptions } from '../codec/protocol/base-backup';
import { clientConfig, type ConnectionOptions } from '../net/conninfo';
import { DEFAULT_TIMEOUT_MS } from '../net/silence-watchdog';
import { UsageError } from '../errors';
import { checkWalOptions } from '../wal/streamed-wal';
import type { RateLimiter } from '../rate-limiter';
import { BaseBackupReader } from './base-backup-reader';
import { pipeline } from 'node:stream';
import { serverArchiveUnpack } from '../../transforms/server-archive-unpack';
import { StreamedWalSource } from './streamed-wal-source';

export { DEFAULT_TIMEOUT_MS } from '../net/silence-watchdog';

export interface ReplicationSourceOptions {
  /** Connection settings (conninfo / host / port / user), or a ready pg ClientConfig. */
  connection?: ConnectionOptions;
  clientConfig?: ClientConfig;
  label?: string;
  checkpoint?: 'fast' | 'spread';
  /**
   * 'stream': WAL streamed on a second connection becomes a `pg_wal` archive
   * after base (the default, as pg_basebackup's and pgbb's CLI); 'fetch':
   * the server puts the WAL needed to restore into base.tar; 'none': no WAL.
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
  manifestForceEncode?: boolean;
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
   * In milliseconds (the CLI's --timeout is in seconds): how long the server
   * may send nothing while data is due before the connection is given up;
   * also the connect timeout unless the conninfo sets connect_timeout.
   * Default 60 000 (DEFAULT_TIMEOUT_MS); 0: wait forever.
   */
  timeout?: number;
  /**
   * wal 'stream': bytes of the server's manifest held in memory while the
   * pg_wal archive goes first; beyond that, its pieces wait in a file beside
   * the WAL (src/sources/manifest-hold.ts). Default 1 MiB.
   */
  manifestMemory?: number;
  /**
   * The server zstd-compresses each archive (BASE_BACKUP COMPRESSION, PostgreSQL
   * 15+): fewer bytes on the network; the events are decompressed members all the same.
   */
  serverCompress?: { level: number; workers?: number };
  /**
   * --target (PostgreSQL 15+, wal 'fetch' or 'none'): the server writes the
   * backup into a directory of its own, or discards it; the stream then
   * carries start, archive names, progress and end, no members.
   */
  target?: BaseBackupOptions['target'];
  signal?: AbortSignal;
  /**
   * Read the backup into recycled memory (src/io/slab-pool.ts): lower peak
   * RSS and CPU, but then a `data` event's chunk (and a manifest piece) is
   * valid only until the stage that writes it calls `release(chunk)`:
   * pgbb's sinks do. Off by default, so that a stage of yours may keep
   * chunks as long as it likes; pgbb's backup() turns it on when the
   * pipeline holds no stage of yours.
   */
  recycleBuffers?: boolean;
}

export class ReplicationSource extends StreamedWalSource {
  constructor(opts: ReplicationSourceOptions = {}) {
    const config = opts.clientConfig ?? clientConfig(opts.connection ?? {}, true);
    const walMethod = opts.wal ?? 'stream';
    checkWalOptions({ ...opts, wal: walMethod });
    const timeoutMs = opts.timeout ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new UsageError(`invalid timeout ${opts.timeout}`);
    const backup: BaseBackupOptions = {
      label: opts.label ?? 'pgbb base backup',
      progress: opts.progress ?? false,
      checkpoint: opts.checkpoint ?? 'spread',
      wal: walMethod === 'fetch',
      // pg_basebackup sends WAIT 0 whenever the backup carries its WAL.
      wait: walMethod === 'none',
      manifest: opts.manifest ?? true,
      manifestChecksums: opts.manifestChecksums ?? 'CRC32C',
      manifestForceEncode: opts.manifestForceEncode ?? false,
      tablespaceMap: opts.tablespaceMap ?? false,
      maxRate: opts.maxRate,
      verifyChecksums: opts.verifyChecksums ?? true,
      ...(opts.serverCompress ? { compression: opts.serverCompress } : {}),
      ...(opts.target ? { target: opts.target } : {}),
    };
    // pg_basebackup's words: the WAL stream would have nowhere to go.
    if (opts.target && walMethod === 'stream') throw new UsageError('WAL cannot be streamed when a backup target is specified: use -X fetch or -X none');
    // Validate now so bad options fail before any connection is made.
    baseBackupCommand(backup);
    super({
      source: (hooks) => {
        const reader = new BaseBackupReader({ config, backup, timeoutMs, incrementalFrom: opts.incrementalFrom ?? null, hooks, slabs: opts.recycleBuffers === true && !backup.compression });
        // With a target the archives carry no bytes: nothing to unpack.
        if (!backup.compression || backup.target) return reader;
        // pipeline: an error or destroy on either side reaches the other (destroying the unpacker cancels the backup).
        const unpack = serverArchiveUnpack();
        pipeline(reader, unpack, () => {});
        return unpack;
      },
      wal:
        walMethod === 'stream'
          ? { clientConfig: config, slot: opts.slot, noSlot: opts.noSlot ?? false, walDir: opts.walDir, walSpool: opts.walSpool, limiter: opts.rateLimiter, timeoutMs, manifestMemory: opts.manifestMemory, recycleBuffers: opts.recycleBuffers === true }
          : null,
      signal: opts.signal,
    });
  }
}
