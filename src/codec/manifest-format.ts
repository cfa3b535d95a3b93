/**
 * backup_manifest format: the types, and the small pieces the reader
 * (./manifest-reader.ts), the writer (./manifest-writer.ts) and the facade
 * (./manifest.ts) share. Pure. Errors: ManifestError, message starting
 * "backup_manifest: ".
 */
import { ManifestError } from '../errors';
import { showPath } from './path-bytes';

export type ChecksumAlgorithm = 'NONE' | 'CRC32C' | 'SHA224' | 'SHA256' | 'SHA384' | 'SHA512';
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['NONE', 'CRC32C', 'SHA224', 'SHA256', 'SHA384', 'SHA512'];

export interface WalRange {
  timeline: number;
  /** `X/X`, as PostgreSQL prints LSNs. */
  startLsn: string;
  endLsn: string;
}

export interface ManifestFile {
  /** Relative to the data directory, '/'-separated (tablespaces under pg_tblspc/<oid>/). */
  path: string;
  /** The raw bytes when the manifest gave an Encoded-Path; buildManifest then writes Encoded-Path again. */
  rawPath?: Buffer;
  size: number;
  /** As written, `YYYY-MM-DD HH:MM:SS GMT` ('' when absent: PostgreSQL ignores it). */
  lastModified: string;
  /** Absent (or 'NONE'): no checksum. */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** Lowercase hex. */
  checksum?: string;
}

export interface Manifest {
  version: 1 | 2;
  /** uint64 as a decimal string (version 2): it does not fit a JS number. */
  systemIdentifier?: string;
  files: Map<string, ManifestFile>;
  walRanges: WalRange[];
}

export interface ManifestFileInput extends Omit<ManifestFile, 'path' | 'lastModified'> {
  /** A pgbb path string or raw bytes: "Encoded-Path" when its bytes are not valid UTF-8, else "Path". */
  path: string | Buffer;
  lastModified: Date | string;
}

export interface BuildManifestInput {
  version: 1 | 2;
  /** Required for version 2. */
  systemIdentifier?: string;
  /** In the order to write them (the server writes them in the order it sends them). */
  files: Iterable<ManifestFileInput> | Map<string, ManifestFileInput>;
  /** Newest timeline first, as walRangesFor returns them. */
  walRanges: WalRange[];
  /** Encoded-Path for every file, as MANIFEST 'force-encode' does. */
  forceEncode?: boolean;
}

export const fail = (msg: string): never => {
  throw new ManifestError(`backup_manifest: ${msg}`);
};

/**
 * A manifest value for a message: strings escaped (one line) and cut at 100
 * characters, other JSON values named by type — never String(v), which
 * recurses through a deeply nested array until the stack overflows.
 */
export function show(v: unknown): string {
  if (typeof v === 'string') {
    const s = showPath(v);
    return s.length > 100 ? `${s.slice(0, 100)}…` : s;
  }
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return Array.isArray(v) ? 'an array' : `a${typeof v === 'object' ? 'n object' : ` ${typeof v}`}`;
}

/** CRC32C as PostgreSQL writes it: the uint32 in little-endian byte order, hex. */
export function crc32cHex(crc: number): string {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(crc >>> 0);
  return b.toString('hex');
}

/** `YYYY-MM-DD HH:MM:SS GMT`, whole seconds (pg_strftime of pg_gmtime). */
export function formatLastModified(d: Date): string {
  if (Number.isNaN(d.getTime())) fail('invalid Last-Modified date');
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} GMT`;
}

/** escape_json() of src/backend/utils/adt/json.c: \b \f \n \r \t \" \\, other controls \u00xx. */
export function escapeJson(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c >= 0x20) out += s[i];
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 10) out += '\\n';
    else if (c === 13) out += '\\r';
    else if (c === 9) out += '\\t';
    else out += '\\u' + c.toString(16).padStart(4, '0');
  }
  return out + '"';
}

