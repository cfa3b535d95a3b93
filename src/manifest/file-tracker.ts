/**
 * Per-file size and checksum while member events flow, keyed by the path the
 * manifest uses (shared by manifest-verify and manifest-build).
 *
 *   FileDigest       running size + CRC32C / SHA-2 of one file
 *   manifestPathOf   which member the manifest lists, under which path
 *   FileTracker      the digest of the listed file being read (an observer,
 *                    transforms/observer.ts, feeds it archive / entry /
 *                    data / entry-end); each finished file is handed back,
 *                    for the caller to keep as compactly as it likes
 *                    (src/codec/file-table.ts)
 */
import { createHash, type Hash } from 'node:crypto';
// crc32c(buf, crc) continues a running CRC (which library: src/codec/crc32c.ts).
import { crc32c } from '../codec/crc32c';
import { ManifestError } from '../errors';
import type { ArchiveKind, DataEvent, EntryKind } from '../events';
import { crc32cHex, type ChecksumAlgorithm } from '../codec/manifest';
import { crc32cCombine } from '../codec/chunkmap/crc32c-combine';
import { dataCrc, knownCrc } from '../codec/data-crc';

const fail = (msg: string): never => {
  throw new ManifestError(`backup_manifest: ${msg}`);
};

/** Running size + checksum of one file's bytes. */
export class FileDigest {
  size = 0;
  private crc = 0;
  private readonly hash: Hash | null;

  constructor(readonly algorithm: ChecksumAlgorithm) {
    this.hash = algorithm.startsWith('SHA') ? createHash(algorithm.toLowerCase()) : null;
  }

  /** `crc`: the chunk's own CRC32C when already known (src/codec/data-crc.ts), which spares the pass over its bytes. */
  update(chunk: Buffer, crc?: number): void {
    this.size += chunk.length;
    if (this.algorithm === 'CRC32C') this.crc = crc === undefined ? crc32c(chunk, this.crc) : crc32cCombine(this.crc, crc, chunk.length);
    else this.hash?.update(chunk);
  }

  /** Lowercase hex, or undefined for NONE. */
  digest(): string | undefined {
    if (this.algorithm === 'CRC32C') return crc32cHex(this.crc);
    return this.hash?.digest('hex');
  }
}

/**
 * The manifest path of a file member, or null when PostgreSQL does not list
 * it: WAL segments in base.tar (only `pg_wal/*.history` and
 * `pg_wal/archive_status/*` are sent with a manifest entry) and anything in a
 * separately streamed WAL archive. Directories and symlinks are never listed;
 * the caller checks the member kind.
 */
export function manifestPathOf(kind: ArchiveKind, archiveName: string, path: string): string | null {
  if (kind === 'wal') return null;
  if (kind === 'tablespace') return `pg_tblspc/${archiveName}/${path}`;
  if (/^pg_wal\/[^/]+$/.test(path) && !path.endsWith('.history')) return null;
  return path;
}

export interface DigestedFile {
  /** Manifest path. */
  path: string;
  size: number;
  mtime: Date;
  /** Lowercase hex; undefined for NONE. */
  checksum?: string;
}

/**
 * The listed file being read: its manifest path, mtime and running digest.
 * entryEnd() hands it back finished; nothing is kept per file.
 */
export class FileTracker {
  bytes = 0;
  private kind: ArchiveKind = 'base';
  private archiveName = 'base';
  private current: { path: string; mtime: Date; digest: FileDigest } | null = null;

  /**
   * `shareCrc`: a later stage wants each data event's CRC32C too (the chunk
   * map): take it from the event, computing and leaving it there if no stage
   * did (src/codec/data-crc.ts). Otherwise the running CRC goes on over the
   * bytes directly, as cheap as it gets when nobody else wants the CRC.
   */
  constructor(
    readonly algorithm: ChecksumAlgorithm,
    private readonly shareCrc = false,
  ) {}

  archive(kind: ArchiveKind, name: string): void {
    this.current = null;
    this.kind = kind;
    this.archiveName = name;
  }

  /** Starts a member; returns its manifest path when the manifest lists it. */
  entry(path: string, kind: EntryKind, mtime: Date): string | null {
    const mpath = kind === 'file' ? manifestPathOf(this.kind, this.archiveName, path) : null;
    this.current = mpath === null ? null : { path: mpath, mtime, digest: new FileDigest(this.algorithm) };
    return mpath;
  }

  data(ev: DataEvent): void {
    const cur = this.current;
    if (!cur) return;
    // A checksum needs every byte in order; a stage that skips or reorders data must come after us.
    if (ev.offset !== cur.digest.size) fail(`data for "${cur.path}" at offset ${ev.offset}, expected ${cur.digest.size}`);
    // CRC32C: the event's, shared with the chunk map's (each byte checksummed once).
    cur.digest.update(ev.chunk, this.algorithm !== 'CRC32C' ? undefined : this.shareCrc ? dataCrc(ev) : knownCrc(ev));
    this.bytes += ev.chunk.length;
  }

  /** The file just finished, when it is listed. */
  entryEnd(): DigestedFile | null {
    const cur = this.current;
    if (!cur) return null;
    this.current = null;
    return { path: cur.path, size: cur.digest.size, mtime: cur.mtime, checksum: cur.digest.digest() };
  }
}

/** Bytes of one digest: CRC32C 4, SHA-n n/8, NONE 0. */
export function digestBytes(algorithm: ChecksumAlgorithm): number {
  return algorithm === 'CRC32C' ? 4 : algorithm === 'NONE' ? 0 : Number(algorithm.slice(3)) / 8;
}
