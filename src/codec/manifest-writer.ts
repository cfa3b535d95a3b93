/**
 * backup_manifest writer: what src/backend/backup/backup_manifest.c writes,
 * byte for byte, produced as it goes.
 *
 *   new ManifestWriter({ version, systemIdentifier, forceEncode, pieceSize })
 *   writer.file(f)              one file's line, in the order to list them
 *   writer.finish(walRanges)    the rest, SHA-256 Manifest-Checksum last
 *
 * Memory: the text so far, in pieces of `pieceSize` bytes (default 256 KiB;
 * the last may be shorter, a small manifest is one piece), never a string or
 * object per file; the checksum runs along.
 * buildManifest(input) is the same, returned as one Buffer.
 */
import { createHash, type Hash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { walRangeLine } from './wal-ranges';
import { pathFromBytes, pathToBytes } from './path-bytes';
import { escapeJson, fail, formatLastModified, show, type BuildManifestInput, type ManifestFileInput, type WalRange } from './manifest-format';

export const MANIFEST_PIECE_SIZE = 256 * 1024;

export interface ManifestWriterOptions {
  version: 1 | 2;
  /** Required for version 2. */
  systemIdentifier?: string;
  /** Encoded-Path for every file, as MANIFEST 'force-encode' does. */
  forceEncode?: boolean;
  /** Largest piece handed out (default 256 KiB). */
  pieceSize?: number;
}

export class ManifestWriter {
  private readonly pieces: Buffer[] = [];
  /** Text not yet encoded; then bytes not yet a whole piece. */
  private pending = '';
  private parts: Buffer[] = [];
  private partsLength = 0;
  private files = 0;
  private readonly hash: Hash = createHash('sha256');
  private readonly pieceSize: number;

  constructor(private readonly opts: ManifestWriterOptions) {
    this.pieceSize = opts.pieceSize ?? MANIFEST_PIECE_SIZE;
    const { version } = opts;
    let text = `{ "PostgreSQL-Backup-Manifest-Version": ${version},\n`;
    if (version === 2) {
      if (!opts.systemIdentifier || !/^\d+$/.test(opts.systemIdentifier)) fail('version 2 needs a decimal System-Identifier');
      text += `"System-Identifier": ${opts.systemIdentifier},\n`;
    } else if (version !== 1) {
      fail(`cannot write manifest version ${version}`);
    }
    this.pending = text + '"Files": [';
  }

  file(f: ManifestFileInput): void {
    this.pending += (this.files++ === 0 ? '\n' : ',\n') + fileLine(f, this.opts.forceEncode ?? false);
    if (this.pending.length >= 64 * 1024) this.cut();
  }

  /** The whole manifest, in pieces of at most pieceSize bytes. */
  finish(walRanges: WalRange[]): Buffer[] {
    this.pending += '\n],\n"WAL-Ranges": [\n';
    this.pending += walRanges.map(walRangeLine).join(',\n');
    this.pending += '\n],\n';
    this.cut();
    // The checksum line goes with the rest: a manifest of up to pieceSize stays one piece.
    this.split(Buffer.concat([...this.parts, Buffer.from(`"Manifest-Checksum": "${this.hash.digest('hex')}"}\n`)]));
    this.parts = [];
    this.partsLength = 0;
    return this.pieces.splice(0);
  }

  /** Encodes the pending text (hashing it) and hands out every whole piece. */
  private cut(): void {
    const b = Buffer.from(this.pending, 'utf8');
    this.pending = '';
    this.hash.update(b);
    this.parts.push(b);
    this.partsLength += b.length;
    if (this.partsLength < this.pieceSize) return;
    const all = Buffer.concat(this.parts);
    const whole = all.length - (all.length % this.pieceSize);
    this.split(all.subarray(0, whole));
    this.parts = whole < all.length ? [all.subarray(whole)] : [];
    this.partsLength = all.length - whole;
  }

  private split(b: Buffer): void {
    for (let at = 0; at < b.length; at += this.pieceSize) this.pieces.push(b.subarray(at, at + this.pieceSize));
  }
}

export function buildManifest(input: BuildManifestInput): Buffer {
  const w = new ManifestWriter({ version: input.version, systemIdentifier: input.systemIdentifier, forceEncode: input.forceEncode });
  for (const f of input.files instanceof Map ? input.files.values() : input.files) w.file(f);
  return Buffer.concat(w.finish(input.walRanges));
}

function fileLine(f: ManifestFileInput, forceEncode: boolean): string {
  const bytes = f.rawPath ?? (typeof f.path === 'string' ? pathToBytes(f.path) : f.path);
  const path = typeof f.path === 'string' ? f.path : pathFromBytes(f.path);
  const shown = show(path);
  if (!Number.isSafeInteger(f.size) || f.size < 0) fail(`invalid size ${f.size} for "${shown}"`);
  // pg_verify_mbstr(PG_UTF8) and isUtf8 reject the same byte sequences.
  const encode = f.rawPath !== undefined || forceEncode || !isUtf8(bytes);
  let s = encode ? `{ "Encoded-Path": "${bytes.toString('hex')}", ` : `{ "Path": ${escapeJson(bytes.toString('utf8'))}, `;
  const lm = typeof f.lastModified === 'string' ? f.lastModified : formatLastModified(f.lastModified);
  s += `"Size": ${f.size}, "Last-Modified": "${lm}"`;
  const alg = f.checksumAlgorithm;
  if (alg && alg !== 'NONE') {
    if (!f.checksum || !/^(?:[0-9a-f]{2})+$/.test(f.checksum)) fail(`file "${shown}" has ${alg} but no lowercase hex checksum`);
    s += `, "Checksum-Algorithm": "${alg}", "Checksum": "${f.checksum}"`;
  }
  return s + ' }';
}

