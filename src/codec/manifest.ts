/**
 * backup_manifest codec: pure functions, no streams.
 *
 *   parseManifest(bytes) -> Manifest      checks the JSON, the layout rules of
 *                                         src/common/parse_manifest.c and the
 *                                         trailing SHA-256 Manifest-Checksum
 *   buildManifest(input) -> bytes         what src/backend/backup/backup_manifest.c
 *                                         writes, byte for byte
 *   walRangesFor                          the WAL-Ranges PostgreSQL computes
 * (Per-file digests while events flow: ./file-tracker.ts.)
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
import { pathFromBytes, pathToBytes, showPath } from './path-bytes';

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

const fail = (msg: string): never => {
  throw new ManifestError(`backup_manifest: ${msg}`);
};

/**
 * A manifest value for a message: strings escaped (one line) and cut at 100
 * characters, other JSON values named by type — never String(v), which
 * recurses through a deeply nested array until the stack overflows.
 */
function show(v: unknown): string {
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

/**
 * WAL-Ranges as AddWALInfoToBackupManifest computes them, newest timeline
 * first. A backup that ends on another timeline than it started needs the end
 * timeline's history file (`pg_wal/<tli>.history`) text.
 */
export function walRangesFor(startLsn: string, startTli: number, endLsn: string, endTli: number, history?: string): WalRange[] {
  if (startTli === endTli) return [{ timeline: endTli, startLsn: formatLsn(parseLsn(startLsn)), endLsn: formatLsn(parseLsn(endLsn)) }];
  if (history === undefined) {
    fail(`the backup spans timelines ${startTli} to ${endTli} and the history file "pg_wal/${endTli.toString(16).toUpperCase().padStart(8, '0')}.history" was not seen`);
  }
  // readTimeLineHistory: parent lines oldest first; the end timeline itself has no end.
  const entries: Array<{ tli: number; begin: bigint; end: bigint }> = [];
  let prevEnd = 0n;
  for (const line of history!.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [tli, lsn] = t.split(/\s+/);
    if (!/^\d+$/.test(tli) || lsn === undefined) fail(`invalid line in timeline history file: "${t}"`);
    const switchpoint = parseLsn(lsn);
    entries.unshift({ tli: Number(tli), begin: prevEnd, end: switchpoint });
    prevEnd = switchpoint;
  }
  entries.unshift({ tli: endTli, begin: prevEnd, end: 0n });

  const start = parseLsn(startLsn);
  let end = parseLsn(endLsn);
  const out: WalRange[] = [];
  for (const e of entries) {
    if (e.end !== 0n && e.end < start) continue;
    if (out.length === 0 && e.tli !== endTli) fail(`expected end timeline ${endTli} but found timeline ${e.tli}`);
    const begin = e.tli === startTli ? start : e.begin;
    if (e.tli !== startTli && begin === 0n) fail(`expected start timeline ${startTli} but found timeline ${e.tli}`);
    out.push({ timeline: e.tli, startLsn: formatLsn(begin), endLsn: formatLsn(end) });
    if (e.tli === startTli) return out;
    end = e.begin;
  }
  return fail(`start timeline ${startTli} not found in history of timeline ${endTli}`);
}

export function buildManifest(input: BuildManifestInput): Buffer {
  const { version } = input;
  let text = `{ "PostgreSQL-Backup-Manifest-Version": ${version},\n`;
  if (version === 2) {
    if (!input.systemIdentifier || !/^\d+$/.test(input.systemIdentifier)) fail('version 2 needs a decimal System-Identifier');
    text += `"System-Identifier": ${input.systemIdentifier},\n`;
  } else if (version !== 1) {
    fail(`cannot write manifest version ${version}`);
  }
  text += '"Files": [';
  const files = input.files instanceof Map ? input.files.values() : input.files;
  let first = true;
  for (const f of files) {
    text += first ? '\n' : ',\n';
    first = false;
    text += fileLine(f, input.forceEncode ?? false);
  }
  text += '\n],\n"WAL-Ranges": [\n';
  text += input.walRanges
    .map((r) => `{ "Timeline": ${r.timeline}, "Start-LSN": "${formatLsn(parseLsn(r.startLsn))}", "End-LSN": "${formatLsn(parseLsn(r.endLsn))}" }`)
    .join(',\n');
  text += '\n],\n';
  const body = Buffer.from(text, 'utf8');
  const sum = createHash('sha256').update(body).digest('hex');
  return Buffer.concat([body, Buffer.from(`"Manifest-Checksum": "${sum}"}\n`)]);
}

export function fileLine(f: ManifestFileInput, forceEncode: boolean): string {
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
  for (const r of ranges as unknown[]) {
    if (!isObject(r)) return fail('a WAL range is not an object');
    for (const k of Object.keys(r)) if (!RANGE_KEYS.has(k)) fail(`unexpected WAL range field "${show(k)}"`);
    const lsn = (v: unknown, what: string) => {
      if (typeof v !== 'string' || !/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(v)) fail(`could not parse ${what} "${show(v)}"`);
      return v as string;
    };
    if (r.Timeline === undefined) fail('missing timeline in a WAL range');
    manifest.walRanges.push({ timeline: unsigned(r.Timeline, 'timeline'), startLsn: lsn(r['Start-LSN'], 'start LSN'), endLsn: lsn(r['End-LSN'], 'end LSN') });
  }
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
