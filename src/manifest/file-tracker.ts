/**
 * Per-file size and checksum while member events flow, keyed by the path the
 * manifest uses (shared by manifest-verify and manifest-build).
 *
 *   FileDigest       running size + CRC32C / SHA-2 of one file
 *   manifestPathOf   which member the manifest lists, under which path
 *   FileTracker      follows archive / entry / data / entry-end events
 */
import { createHash, type Hash } from 'node:crypto';
// calculate(buf, crc) continues a running CRC (types: src/types/fast-crc32c.d.ts).
import { calculate as crc32c } from 'fast-crc32c';
import { ManifestError } from '../errors';
import type { ArchiveKind, EntryKind } from '../events';
import { crc32cHex, type ChecksumAlgorithm } from '../codec/manifest';

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

  update(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.algorithm === 'CRC32C') this.crc = crc32c(chunk, this.crc);
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
 * Follows archive / entry / data / entry-end events and digests every file the
 * manifest lists, in stream order (the order the server writes its entries).
 * Memory: one small record per listed file.
 */
export class FileTracker {
  readonly files = new Map<string, DigestedFile>();
  /** Manifest paths seen more than once. */
  readonly duplicates: string[] = [];
  bytes = 0;
  private kind: ArchiveKind = 'base';
  private archiveName = 'base';
  private current: { path: string; mtime: Date; digest: FileDigest } | null = null;

  constructor(readonly algorithm: ChecksumAlgorithm) {}

  archive(kind: ArchiveKind, name: string): void {
    this.entryEnd();
    this.kind = kind;
    this.archiveName = name;
  }

  /** Starts a member; returns its manifest path when the manifest lists it. */
  entry(path: string, kind: EntryKind, mtime: Date): string | null {
    this.entryEnd();
    const mpath = kind === 'file' ? manifestPathOf(this.kind, this.archiveName, path) : null;
    if (mpath !== null) this.current = { path: mpath, mtime, digest: new FileDigest(this.algorithm) };
    return mpath;
  }

  data(offset: number, chunk: Buffer): void {
    const cur = this.current;
    if (!cur) return;
    // A checksum needs every byte in order; a stage that skips or reorders data must come after us.
    if (offset !== cur.digest.size) fail(`data for "${cur.path}" at offset ${offset}, expected ${cur.digest.size}`);
    cur.digest.update(chunk);
    this.bytes += chunk.length;
  }

  entryEnd(): void {
    const cur = this.current;
    if (!cur) return;
    this.current = null;
    if (this.files.has(cur.path)) this.duplicates.push(cur.path);
    this.files.set(cur.path, { path: cur.path, size: cur.digest.size, mtime: cur.mtime, checksum: cur.digest.digest() });
  }
}

