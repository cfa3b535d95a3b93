/**
 * backup_manifest codec: pure functions, no streams.
 *
 *   parseManifest(bytes) -> Manifest      checks the JSON, the layout rules of
 *                                         src/common/parse_manifest.c and the
 *                                         trailing SHA-256 Manifest-Checksum
 *   buildManifest(input) -> bytes         what src/backend/backup/backup_manifest.c
 *                                         writes, byte for byte
 *   walRangesFor                          the WAL-Ranges PostgreSQL computes
 * (Types and shared pieces: ./manifest-format.ts; the writer: ./manifest-writer.ts;
 * per-file digests while events flow: src/manifest/file-tracker.ts.)
 *
 * Layout PostgreSQL writes (13–16 version 1; 17+ version 2 with line 2):
 *   { "PostgreSQL-Backup-Manifest-Version": 1,\n
 *   "System-Identifier": 7710713033429169987,\n           (version 2 only)
 *   "Files": [\n{ "Path": …, "Size": N, "Last-Modified": "…", "Checksum-Algorithm": "CRC32C", "Checksum": "…" },\n{ … }\n],\n
 *   "WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n],\n
 *   "Manifest-Checksum": "<sha256 of every byte above, lowercase hex>"}\n
 *
 * Paths are pgbb path strings (src/codec/path-bytes.ts): UTF-8, with the bytes of a
 * non-UTF-8 file name carried as lone surrogates, exactly as the tar parser
 * decodes member names, so manifest keys and member paths compare equal.
 * buildManifest takes such a string or a Buffer of raw bytes and writes
 * "Encoded-Path" (lowercase hex of the bytes) when they are not valid UTF-8,
 * exactly as the server does, else "Path". parseManifest decodes an
 * Encoded-Path to its bytes (`rawPath`, which buildManifest writes as
 * Encoded-Path again) and keys the file by pathFromBytes of them.
 * Errors: ManifestError, message starting "backup_manifest: ".
 */
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { ManifestError } from '../errors';
import { formatLsn, parseLsn } from './lsn';
import { pathFromBytes } from './path-bytes';
import { unsigned, walRangeFromJson } from './wal-ranges';
import { CHECKSUM_ALGORITHMS, fail, show, type ChecksumAlgorithm, type Manifest, type ManifestFile, type WalRange } from './manifest-format';

export * from './manifest-format';
export { buildManifest, ManifestWriter, MANIFEST_PIECE_SIZE, type ManifestWriterOptions } from './manifest-writer';
export { walRangesFor } from './wal-ranges';

const TOP_KEYS = new Set(['PostgreSQL-Backup-Manifest-Version', 'System-Identifier', 'Files', 'WAL-Ranges', 'Manifest-Checksum']);
const FILE_KEYS = new Set(['Path', 'Encoded-Path', 'Size', 'Last-Modified', 'Checksum-Algorithm', 'Checksum']);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseManifest(buf: Buffer): Manifest {
  if (!isUtf8(buf)) fail('not valid UTF-8');
  const text = buf.toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(`backup_manifest: not valid JSON (${show((err as Error).message)})`, { cause: err });
  }
  if (!isObject(doc)) return fail('not a JSON object');
  const keys = Object.keys(doc);
  if (keys[0] !== 'PostgreSQL-Backup-Manifest-Version') fail('expected version indicator as the first field');
  for (const k of keys) if (!TOP_KEYS.has(k)) fail(`unrecognized top-level field "${show(k)}"`);
  const version = unsigned(doc['PostgreSQL-Backup-Manifest-Version'], 'manifest version');
  if (version !== 1 && version !== 2) fail(`unexpected manifest version ${version} (pgbb reads 1 and 2)`);
  if (keys[keys.length - 1] !== 'Manifest-Checksum') fail('manifest has no checksum as its last field');
  verifyChecksum(buf, doc['Manifest-Checksum']);

  const manifest: Manifest = { version: version as 1 | 2, files: new Map(), walRanges: [] };
  if ('System-Identifier' in doc) manifest.systemIdentifier = rawSystemIdentifier(text, doc['System-Identifier']);
  const files = doc.Files ?? [];
  if (!Array.isArray(files)) fail('"Files" is not an array');
  for (const f of files as unknown[]) {
    const file = parseFile(f);
    if (manifest.files.has(file.path)) fail(`duplicate path name "${show(file.path)}"`);
    manifest.files.set(file.path, file);
  }
  const ranges = doc['WAL-Ranges'] ?? [];
  if (!Array.isArray(ranges)) fail('"WAL-Ranges" is not an array');
  for (const r of ranges as unknown[]) manifest.walRanges.push(walRangeFromJson(r));
  return manifest;
}

function parseFile(f: unknown): ManifestFile {
  if (!isObject(f)) return fail('a file entry is not an object');
  for (const k of Object.keys(f)) if (!FILE_KEYS.has(k)) fail(`unexpected file field "${show(k)}"`);
  let path: string;
  let rawPath: Buffer | undefined;
  if (f.Path !== undefined && f['Encoded-Path'] !== undefined) fail('both path name and encoded path name');
  if (typeof f.Path === 'string') path = f.Path;
  else if (typeof f['Encoded-Path'] === 'string' && /^(?:[0-9a-fA-F]{2})*$/.test(f['Encoded-Path'])) {
    rawPath = Buffer.from(f['Encoded-Path'], 'hex');
    path = pathFromBytes(rawPath);
  } else if (f['Encoded-Path'] !== undefined) return fail(`could not decode file name "${show(f['Encoded-Path'])}"`);
  else return fail('missing path name in a file entry');
  if (f.Size === undefined) fail(`missing size for "${show(path)}"`);
  const file: ManifestFile = { path, size: unsigned(f.Size, `size of "${show(path)}"`), lastModified: typeof f['Last-Modified'] === 'string' ? f['Last-Modified'] : '' };
  if (rawPath) file.rawPath = rawPath;
  const alg = f['Checksum-Algorithm'];
  if (alg === undefined) {
    if (f.Checksum !== undefined) fail(`checksum without algorithm for "${show(path)}"`);
    return file;
  }
  const name = typeof alg === 'string' ? (alg.toUpperCase() as ChecksumAlgorithm) : undefined;
  if (!name || !CHECKSUM_ALGORITHMS.includes(name)) return fail(`unrecognized checksum algorithm "${show(alg)}" for "${show(path)}"`);
  file.checksumAlgorithm = name;
  const sum = f.Checksum ?? '';
  if (typeof sum !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(sum)) fail(`invalid checksum for file "${show(path)}": "${show(sum)}"`);
  if (sum) file.checksum = (sum as string).toLowerCase();
  return file;
}

/** SHA-256 over everything up to and including the newline before the last line. */
function verifyChecksum(buf: Buffer, expected: unknown): void {
  if (buf[buf.length - 1] !== 0x0a) fail('last line not newline-terminated');
  const penultimate = buf.lastIndexOf(0x0a, buf.length - 2);
  if (penultimate < 0) fail('expected at least 2 lines');
  if (typeof expected !== 'string' || !/^[0-9a-fA-F]{64}$/.test(expected)) fail(`invalid manifest checksum "${show(expected)}"`);
  const actual = createHash('sha256').update(buf.subarray(0, penultimate + 1)).digest('hex');
  if (actual !== (expected as string).toLowerCase()) fail(`manifest checksum mismatch: file says ${expected}, contents hash to ${actual}`);
}

/**
 * The System-Identifier exceeds 2^53, so JSON.parse rounds it: take the token
 * text instead. A `"` inside a JSON string is always escaped, so an unescaped
 * `"System-Identifier"` followed by `:` is the key itself; the parsed value
 * must agree with the text as a cross-check.
 */
function rawSystemIdentifier(text: string, parsed: unknown): string {
  const m = /(?<!\\)"System-Identifier"\s*:\s*([0-9]+)\s*[,}]/.exec(text);
  if (typeof parsed !== 'number' || !m || Number(m[1]) !== parsed || BigInt(m[1]) >= 1n << 64n) {
    return fail('manifest system identifier not an unsigned 64-bit integer');
  }
  return BigInt(m[1]).toString();
}
