/**
 * BASE_BACKUP: the command text (PostgreSQL 15+ option list, 13/14 legacy
 * form) and the CopyData sub-messages of the 15+ response. Pure functions.
 *
 * Sub-messages (first byte of each CopyData payload, basebackup_copy.c):
 *   'n' new archive: archive name\0 tablespace location\0
 *   'd' archive bytes (or manifest bytes after 'm')
 *   'p' int64 bytes done so far
 *   'm' the manifest follows
 */
import { ProtocolError, UsageError } from '../../errors';
import { zstdDetail } from '../compression';

export interface BaseBackupOptions {
  label: string;
  progress: boolean;
  checkpoint: 'fast' | 'spread';
  /** Include the WAL needed to restore in base.tar (-X fetch). */
  wal: boolean;
  /** Wait for WAL archiving at the end; pg_basebackup sends WAIT 0 whenever WAL is included. */
  wait: boolean;
  manifest: boolean;
  manifestChecksums: 'NONE' | 'CRC32C' | 'SHA224' | 'SHA256' | 'SHA384' | 'SHA512';
  /** --manifest-force-encode: every path hex-encoded (MANIFEST 'force-encode'). */
  manifestForceEncode?: boolean;
  tablespaceMap: boolean;
  /** Server-side rate limit in kB/s (32 – 1048576), or undefined. */
  maxRate?: number;
  verifyChecksums: boolean;
  /** The server zstd-compresses each archive (PostgreSQL 15+); the manifest stays plain. */
  compression?: { level: number; workers?: number };
  /** PostgreSQL 17+, after UPLOAD_MANIFEST on the same connection (src/net/upload-manifest.ts). */
  incremental?: boolean;
  /**
   * PostgreSQL 15+, --target: the server writes the backup itself (TARGET
   * 'server', TARGET_DETAIL an absolute directory on the server) or throws
   * it away ('blackhole'); the reply names archives and progress, no bytes.
   */
  target?: { kind: 'server'; directory: string } | { kind: 'blackhole' };
}

/** A replication-protocol string literal: '' doubles a quote, no backslash escapes. */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new UsageError('a NUL byte is not allowed in a label or target');
  return `'${value.replace(/'/g, "''")}'`;
}

const CHECKSUMS = new Set(['NONE', 'CRC32C', 'SHA224', 'SHA256', 'SHA384', 'SHA512']);

function validate(o: BaseBackupOptions): void {
  // Both go into the command quoted as they are: anything else would reach the server as its syntax.
  if (o.checkpoint !== 'fast' && o.checkpoint !== 'spread') throw new UsageError(`invalid checkpoint "${String(o.checkpoint)}", must be "fast" or "spread"`);
  if (!CHECKSUMS.has(o.manifestChecksums)) throw new UsageError(`invalid manifest checksum algorithm "${String(o.manifestChecksums)}", must be one of ${[...CHECKSUMS].join(', ')}`);
  if (Buffer.byteLength(o.label) > 1024) throw new UsageError('backup label is longer than 1024 bytes');
  if (/[\r\n]/.test(o.label)) throw new UsageError('backup label must not contain a newline');
  if (o.maxRate !== undefined && (!Number.isInteger(o.maxRate) || o.maxRate < 32 || o.maxRate > 1048576)) {
    throw new UsageError(`transfer rate ${o.maxRate} kB/s is out of range (must be between 32 kB/s and 1 GB/s)`);
  }
}

/** The PostgreSQL 15+ form: `BASE_BACKUP ( NAME value, ... )`. */
export function baseBackupCommand(o: BaseBackupOptions): string {
  validate(o);
  const opts = [`LABEL ${quoteLiteral(o.label)}`];
  if (o.progress) opts.push('PROGRESS');
  opts.push(`CHECKPOINT '${o.checkpoint}'`);
  if (o.wal) opts.push('WAL');
  if (!o.wait) opts.push('WAIT 0');
  if (o.tablespaceMap) opts.push('TABLESPACE_MAP');
  if (o.maxRate !== undefined) opts.push(`MAX_RATE ${o.maxRate}`);
  if (!o.verifyChecksums) opts.push('VERIFY_CHECKSUMS 0');
  if (o.manifest) {
    opts.push(`MANIFEST '${o.manifestForceEncode ? 'force-encode' : 'yes'}'`, `MANIFEST_CHECKSUMS '${o.manifestChecksums}'`);
  }
  if (o.compression) opts.push(`COMPRESSION 'zstd'`, `COMPRESSION_DETAIL '${zstdDetail(o.compression)}'`);
  if (o.incremental) opts.push('INCREMENTAL');
  if (o.target) {
    opts.push(`TARGET '${o.target.kind}'`);
    if (o.target.kind === 'server') opts.push(`TARGET_DETAIL ${quoteLiteral(o.target.directory)}`);
  }
  return `BASE_BACKUP ( ${opts.join(', ')} )`;
}

/** The PostgreSQL 13/14 form: space-separated keywords, no parentheses. */
export function legacyBaseBackupCommand(o: BaseBackupOptions): string {
  validate(o);
  if (o.incremental) throw new UsageError('INCREMENTAL backups need PostgreSQL 17 or later');
  // pg_basebackup's words.
  if (o.target) throw new UsageError('backup targets are not supported by this server version (--target needs PostgreSQL 15 or later)');
  if (o.compression) throw new UsageError('server-side compression (--compress server-zstd) needs PostgreSQL 15 or later; use client-side zstd');
  const opts = [`LABEL ${quoteLiteral(o.label)}`];
  if (o.progress) opts.push('PROGRESS');
  if (o.checkpoint === 'fast') opts.push('FAST');
  if (o.wal) opts.push('WAL');
  if (!o.wait) opts.push('NOWAIT');
  if (o.maxRate !== undefined) opts.push(`MAX_RATE ${o.maxRate}`);
  if (o.tablespaceMap) opts.push('TABLESPACE_MAP');
  if (!o.verifyChecksums) opts.push('NOVERIFY_CHECKSUMS');
  if (o.manifest) opts.push(`MANIFEST '${o.manifestForceEncode ? 'force-encode' : 'yes'}'`, `MANIFEST_CHECKSUMS '${o.manifestChecksums}'`);
  return `BASE_BACKUP ${opts.join(' ')}`;
}

export type CopyDataMessage =
  | { kind: 'archive'; name: string; location: string }
  | { kind: 'data'; data: Buffer }
  | { kind: 'progress'; done: number }
  | { kind: 'manifest' };

/** Decodes one CopyData payload of the 15+ BASE_BACKUP stream. `data` is a subarray, not a copy. */
export function decodeCopyData(payload: Buffer): CopyDataMessage {
  if (payload.length === 0) throw new ProtocolError('empty CopyData message in BASE_BACKUP stream');
  const type = payload[0];
  switch (type) {
    case 0x64: // 'd'
      return { kind: 'data', data: payload.subarray(1) };
    case 0x70: // 'p'
      if (payload.length !== 9) throw new ProtocolError(`progress message has ${payload.length - 1} bytes, expected 8`);
      return { kind: 'progress', done: Number(payload.readBigInt64BE(1)) };
    case 0x6e: {
      // 'n'
      const end1 = payload.indexOf(0, 1);
      const end2 = end1 < 0 ? -1 : payload.indexOf(0, end1 + 1);
      if (end2 < 0 || end2 !== payload.length - 1) throw new ProtocolError('malformed new-archive message in BASE_BACKUP stream');
      return {
        kind: 'archive',
        name: payload.toString('utf8', 1, end1),
        location: payload.toString('utf8', end1 + 1, end2),
      };
    }
    case 0x6d: // 'm'
      if (payload.length !== 1) throw new ProtocolError('manifest message carries unexpected bytes');
      return { kind: 'manifest' };
    default:
      throw new ProtocolError(`unknown CopyData message type 0x${type.toString(16).padStart(2, '0')} in BASE_BACKUP stream`);
  }
}
