/**
 * The whole-buffer manifest parser pgbb had before the streaming reader
 * (JSON.parse, then the checks), kept here as an independent referee for
 * differential fuzzing of src/codec/manifest-reader.ts: both must accept and
 * refuse the same manifests, with the same message.
 */
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { ManifestError } from '../../src/errors';
import { pathFromBytes, showPath } from '../../src/codec/path-bytes';
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm, type Manifest, type ManifestFile } from '../../src/codec/manifest';

const fail = (msg: string): never => {
  throw new ManifestError(`backup_manifest: ${msg}`);
};

function show(v: unknown): string {
  if (typeof v === 'string') {
    const s = showPath(v);
    return s.length > 100 ? `${s.slice(0, 100)}…` : s;
  }
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return Array.isArray(v) ? 'an array' : `a${typeof v === 'object' ? 'n object' : ` ${typeof v}`}`;
}

const TOP_KEYS = new Set(['PostgreSQL-Backup-Manifest-Version', 'System-Identifier', 'Files', 'WAL-Ranges', 'Manifest-Checksum']);
const FILE_KEYS = new Set(['Path', 'Encoded-Path', 'Size', 'Last-Modified', 'Checksum-Algorithm', 'Checksum']);
const RANGE_KEYS = new Set(['Timeline', 'Start-LSN', 'End-LSN']);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** PostgreSQL reads these with strtoul on the token text: a JSON number or a digit string. */
function unsigned(v: unknown, what: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) fail(`${what} is not an integer`);
  return n as number;
}

export function parseManifestReference(buf: Buffer): Manifest {
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
  for (const r of ranges as unknown[]) {
    if (!isObject(r)) return fail('a WAL range is not an object');
    for (const k of Object.keys(r)) if (!RANGE_KEYS.has(k)) fail(`unexpected WAL range field "${show(k)}"`);
    const lsn = (v: unknown, what: string) => {
      if (v === undefined) fail(`missing ${what} in a WAL range`);
      if (typeof v !== 'string' || !/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(v)) fail(`could not parse ${what} "${show(v)}"`);
      return v as string;
    };
    if (r.Timeline === undefined) fail('missing timeline in a WAL range');
    manifest.walRanges.push({ timeline: unsigned(r.Timeline, 'timeline'), startLsn: lsn(r['Start-LSN'], 'start LSN'), endLsn: lsn(r['End-LSN'], 'end LSN') });
  }
  // Checked once the whole is read, as pg_verifybackup does: a broken entry is named before a missing checksum.
  if (keys[keys.length - 1] !== 'Manifest-Checksum') fail('manifest has no checksum as its last field');
  verifyChecksum(buf, doc['Manifest-Checksum']);
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
