/**
 * The member stream: what a backup source emits, in order, and what transforms
 * and sinks consume (object mode).
 *
 *   start
 *   (archive (entry data* entry-end)* archive-end)*    one archive per tablespace, base last, then pg_wal
 *   manifest*                                          the backup_manifest bytes, in one or more pieces
 *   end                                                the backup is complete only after this
 *
 * `progress` and `warning` may appear anywhere. Transforms pass through every
 * event they do not handle, unchanged and in order.
 *
 * Paths and link targets are file names as the server has them, which are
 * bytes: they are carried as strings that hold those bytes losslessly
 * (src/codec/path-bytes.ts) — UTF-8 as usual, and each byte that is not part of
 * valid UTF-8 as one lone surrogate U+DC80–U+DCFF. String operations (join,
 * slice, compare, Map keys) stay exact; where bytes leave pgbb, use
 * `fsPath(path)` for node:fs and `pathToBytes(path)` for archives and
 * manifests, and `showPath(path)` in messages.
 */

export interface Tablespace {
  /** Tablespace OID as a decimal string; null for the data directory. */
  oid: string | null;
  /** Absolute location on the server; '' for the data directory. */
  location: string;
  /** Size estimate in bytes when the server was asked for PROGRESS, else null. */
  size: number | null;
}

export interface StartEvent {
  type: 'start';
  /** server_version_num, e.g. 150018. */
  serverVersion: number;
  /** uint64 as a decimal string: it does not fit a JS number. */
  systemIdentifier: string;
  timeline: number;
  /** Checkpoint redo LSN the backup starts from, `X/X`. */
  startLsn: string;
  tablespaces: Tablespace[];
  walSegmentSize: number;
  blockSize: number;
  /** RELSEG_SIZE in blocks (131072 for 1 GiB segments). */
  segmentBlocks: number;
  dataChecksums: boolean;
  label: string;
  /** Sum of tablespace sizes in bytes, when known. */
  totalBytes: number | null;
  /**
   * An INCREMENTAL backup (PostgreSQL 17+, after UPLOAD_MANIFEST): relation
   * files may come as `INCREMENTAL.<name>` members holding only changed
   * blocks, and backup_label names the prior backup (see
   * transforms/incremental-apply.ts).
   */
  incremental?: boolean;
  /**
   * The server's data_directory_mode is 0750 (initdb -g): what a sink adds
   * (archives, manifest, WAL, directories) is 0750/0640 too, as
   * pg_basebackup writes it. Absent: owner-only, or not known (a backup read
   * back, whose members' modes then tell).
   */
  groupReadable?: boolean;
}

export type ArchiveKind = 'base' | 'tablespace' | 'wal';

export interface ArchiveEvent {
  type: 'archive';
  kind: ArchiveKind;
  /** 'base', the tablespace OID, or 'pg_wal': names the archive file (`<name>.tar`). */
  name: string;
  /** Tablespace location on the server ('' for base and WAL). */
  location: string;
  /**
   * Its bytes already drew from the backup's rate limiter as they arrived
   * (WAL streamed with -r, src/wal/wal-receiver.ts): throttles let its data
   * pass at once rather than charge it twice.
   */
  paced?: boolean;
  /**
   * The archive's files are already on disk under these names, in this
   * absolute directory (streamed WAL written straight into a plain target's
   * `pg_wal/`). Its `data` events carry the same bytes, read back, for
   * observers (chunk map, WAL checks); a sink whose own directory for the
   * archive is `writtenIn` writes nothing for it, any other sink writes it.
   */
  writtenIn?: string;
}

export type EntryKind = 'file' | 'directory' | 'symlink';

export interface EntryEvent {
  type: 'entry';
  /**
   * Relative to the archive root, '/'-separated, no leading './', no trailing
   * '/'. Any length (pax carries names over 100 bytes); not-UTF-8 bytes as
   * lone surrogates (see the top of this file).
   */
  path: string;
  kind: EntryKind;
  /** File size in bytes (0 for directories and symlinks). */
  size: number;
  /** Permission bits. */
  mode: number;
  mtime: Date;
  /** Symlink target (any length; not-UTF-8 bytes as for `path`). */
  linkTarget?: string;
  /**
   * Set by chunk-diff (and incremental-apply) for a refresh: the file already
   * exists in the target and only changed bytes follow, as `data` events at
   * their offsets (gaps keep what the target holds); the file ends at `size`
   * (the sink truncates or extends it). Sinks that cannot write in place must
   * refuse such entries; absent, every byte follows from offset 0.
   */
  inPlace?: boolean;
  /**
   * The file holds a password (postgresql.auto.conf once recovery-config has
   * added primary_conninfo): sinks write it owner-only (0600), whatever the
   * modes of the rest of the backup.
   */
  secret?: boolean;
}

export interface DataEvent {
  type: 'data';
  /** Offset of `chunk` within the current entry's file. */
  offset: number;
  /**
   * Never written into once pushed: a stage that passes other bytes passes
   * another Buffer (in a new event). Its CRC32C is computed once and shared
   * by the stages that want it (src/codec/data-crc.ts).
   */
  chunk: Buffer;
  /**
   * Only in `inPlace` entries (see EntryEvent): these bytes are already what
   * the target holds at this offset (or will hold once the file is set to
   * its new size: zeros past its old end). They come so that whole chunks
   * can be digested; a sink writes nothing for them.
   */
  inTarget?: boolean;
}

export interface EntryEndEvent {
  type: 'entry-end';
}

export interface ArchiveEndEvent {
  type: 'archive-end';
}

/**
 * A piece of the backup_manifest. A manifest may come as several `manifest`
 * events in a row (as the server sends it, or read back in chunks), so that
 * no stage has to hold a large one whole; the manifest is their
 * concatenation, complete when `end` follows. Consumers must not assume a
 * single event.
 */
export interface ManifestEvent {
  type: 'manifest';
  data: Buffer;
}

export interface ProgressEvent {
  type: 'progress';
  /** Bytes of tablespace data done so far. */
  done: number;
  /** Estimated total bytes, when known. */
  total: number | null;
}

export interface WarningEvent {
  type: 'warning';
  code: string;
  message: string;
}

export interface EndEvent {
  type: 'end';
  endLsn: string;
  timeline: number;
}

export type BackupEvent =
  | StartEvent
  | ArchiveEvent
  | EntryEvent
  | DataEvent
  | EntryEndEvent
  | ArchiveEndEvent
  | ManifestEvent
  | ProgressEvent
  | WarningEvent
  | EndEvent;
