/**
 * The chunk map (pure codec, no streams): what a plain backup records so that
 * a later refresh can tell, chunk by chunk, which parts of each file changed.
 *
 * For every regular file of the backup (tablespace members under
 * `pg_tblspc/<oid>/`, WAL under `pg_wal/`): its size and, per fixed-size
 * chunk (the last one may be shorter), a CRC32C and an XXH3-128 keyed with
 * a secret derived from the map's random `hashKey` (format 2; format 1, an
 * older pgbb's, kept the first 16 bytes of a SHA-256). A chunk is
 * "unchanged" only when its length, CRC32C and hash all agree (see README,
 * "Incremental refresh", for why both and why a key).
 *
 * Stored as `pg_wal/pgbb.chunkmap`: pg_verifybackup ignores everything under
 * pg_wal/, the server never sends pg_wal's contents in a later BASE_BACKUP,
 * and PostgreSQL skips names in pg_wal that are not WAL segment names.
 *
 * Layout (integers little-endian):
 *   "PGBBCMAP"  u32 format version (2)  u32 chunk size  u32 hash bytes (16)
 *   u32 header length, header JSON (system identifier, timeline, start LSN,
 *       server version of the backup the map describes; `tablespaces`, OID →
 *       the absolute location the backup wrote it to, which is what a refresh
 *       will follow a pg_tblspc/<oid> link to; absent in older maps;
 *       `hashKey`, 32 bytes in hex, format 2 only)
 *   u32 file count, then per file:
 *     u32 path length, path bytes (raw: src/codec/path-bytes.ts), u64 size,
 *     n × u32 CRC32C, n × 16-byte hash       n = ceil(size / chunk size)
 *   SHA-256 of every byte before it (32 bytes)
 *
 * Decoded, the files stay in the map's bytes (packed-files.ts): memory is
 * the map's size plus ~12 bytes per file, and a file count or chunk count is
 * checked against the bytes that remain before anything is sized by it.
 * Encoded, in pieces (encodeChunkMapPieces): every field is known from what
 * is recorded (the count and trailer come from the files themselves), so the
 * size is known before the first byte (encodedChunkMapSize) and the layout
 * needed no change to be streamed.
 *
 * Format 1 (SHA-256 prefixes, no key) has the same layout: it is decoded,
 * `hashAlgorithm: 'sha256'`, so that its header (tablespace locations) is
 * still known, but a refresh never trusts its chunk hashes (prior-state.ts
 * reads every file again). Maps are always written as format 2.
 *
 * Errors: PgbbError code 'chunk_map' naming the file and what is wrong
 * (truncated, bad magic, checksum mismatch, duplicate path); UsageError for
 * a chunk size outside 64 KiB–1 MiB or not a power of two.
 */
import { createHash } from 'node:crypto';
import { PgbbError, UsageError } from '../../errors';
import type { ArchiveKind } from '../../events';
import { pathFromBytes, pathToBytes } from '../path-bytes';
import { PackedChunkFiles } from './packed-files';
import type { ChunkMap, ChunkMapFile, ChunkMapHeader } from './types';

/** Where the map lives, relative to the data directory. */
export const CHUNK_MAP_FILE = 'pg_wal/pgbb.chunkmap';
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
export const MIN_CHUNK_SIZE = 64 * 1024;
export const MAX_CHUNK_SIZE = 1024 * 1024;
/** Bytes of hash per chunk (XXH3-128; format 1: a SHA-256 prefix). */
export const HASH_BYTES = 16;
/** The map's hash key (header `hashKey`, hex). */
export const HASH_KEY_BYTES = 32;

const MAGIC = Buffer.from('PGBBCMAP', 'latin1');
const FORMAT_VERSION = 2;
const SHA256_FORMAT = 1;
const TRAILER = 32;
/** No PostgreSQL path comes near this; a larger length means a corrupt map. */
const MAX_PATH_BYTES = 4096;
/** The smallest file record: path length, one path byte, size. */
const MIN_RECORD = 4 + 1 + 8;

export type { ChunkFiles, ChunkHashAlgorithm, ChunkMap, ChunkMapFile, ChunkMapHeader } from './types';

/** A map's hash key (header.hashKey), checked: 32 bytes from 64 hex digits. */
export function hashKeyOf(hex: string | undefined): Buffer {
  if (typeof hex !== 'string' || !/^[0-9a-f]{64}$/.test(hex)) throw new PgbbError('chunk_map', 'chunk map header has no valid hash key');
  return Buffer.from(hex, 'hex');
}

/**
 * True when the map's chunk hashes are SHA-256 prefixes (a format 1 map):
 * only then can they be compared with a server-side sha256(). Maps pgbb
 * writes now are XXH3-128 (not known to the server).
 */
export function chunkSha256Known(map: ChunkMap): boolean {
  return map.hashAlgorithm === 'sha256';
}

const fail = (where: string, why: string): never => {
  throw new PgbbError('chunk_map', `chunk map "${where}": ${why}`);
};

/** 64 KiB to 1 MiB, a power of two (so chunks hold whole 8 KiB pages and align with INCREMENTAL blocks). */
export function checkChunkSize(n: number): number {
  if (!Number.isInteger(n) || n < MIN_CHUNK_SIZE || n > MAX_CHUNK_SIZE || (n & (n - 1)) !== 0) {
    throw new UsageError(`invalid chunk size ${n}: must be a power of two from 64 KiB to 1 MiB`);
  }
  return n;
}

/** `--chunk-size`: bytes, or with a k/K (KiB) or M (MiB) suffix. */
export function parseChunkSize(text: string): number {
  const m = /^\s*(\d+)\s*(k|K|KiB|kB|M|MiB|MB)?\s*$/.exec(text);
  if (!m) throw new UsageError(`invalid chunk size "${text}"`);
  const unit = m[2] ? (m[2].startsWith('M') ? 1024 * 1024 : 1024) : 1;
  return checkChunkSize(Number(m[1]) * unit);
}

export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/** Length of chunk `k` of a file of `size` bytes. */
export function chunkLength(size: number, chunkSize: number, k: number): number {
  return Math.max(0, Math.min(chunkSize, size - k * chunkSize));
}

/**
 * The map key of a member: the path relative to the data directory, as the
 * manifest writes it for base and tablespaces; the streamed WAL archive's
 * members go under `pg_wal/`.
 */
export function chunkKey(kind: ArchiveKind, archiveName: string, path: string): string {
  if (kind === 'tablespace') return `pg_tblspc/${archiveName}/${path}`;
  if (kind === 'wal') return `pg_wal/${path}`;
  return path;
}

/** True when chunk `k` of `a` has this CRC32C and hash (the caller checks the lengths agree). */
export function sameChunk(a: ChunkMapFile, k: number, crc: number, hash: Buffer): boolean {
  if (a.crcs[k] !== crc >>> 0) return false;
  return a.hashes.compare(hash, 0, HASH_BYTES, k * HASH_BYTES, (k + 1) * HASH_BYTES) === 0;
}

/** Pieces of an encoded map are at most this long (see encodeChunkMapPieces). */
export const CHUNK_MAP_PIECE = 64 * 1024;

function headerBytes(map: ChunkMap): Buffer {
  return Buffer.from(JSON.stringify(map.header), 'utf8');
}

function recordLength(pathBytes: number, chunks: number): number {
  return 4 + pathBytes + 8 + chunks * (4 + HASH_BYTES);
}

/** The encoded map's length in bytes, from what it records (so that its member's header can precede its data). */
export function encodedChunkMapSize(map: ChunkMap): number {
  let n = 24 + headerBytes(map).length + 4 + TRAILER;
  if (map.files instanceof PackedChunkFiles) return n + map.files.recordBytes;
  for (const f of map.files.values()) n += recordLength(pathToBytes(f.path).length, chunkCount(f.size, map.chunkSize));
  return n;
}

function encodeRecord(f: ChunkMapFile, chunkSize: number): Buffer {
  const n = chunkCount(f.size, chunkSize);
  if (f.crcs.length !== n || f.hashes.length !== n * HASH_BYTES) {
    throw new PgbbError('chunk_map', `cannot encode chunk map: "${f.path}" has ${f.crcs.length} chunks, its size ${f.size} needs ${n}`);
  }
  const path = pathToBytes(f.path);
  const out = Buffer.allocUnsafe(recordLength(path.length, n));
  out.writeUInt32LE(path.length, 0);
  path.copy(out, 4);
  out.writeBigUInt64LE(BigInt(f.size), 4 + path.length);
  let at = 12 + path.length;
  for (let k = 0; k < n; k++, at += 4) out.writeUInt32LE(f.crcs[k]! >>> 0, at);
  f.hashes.copy(out, at, 0, n * HASH_BYTES);
  return out;
}

/**
 * Memory for the next piece (src/io/slab-pool.ts's SlabReader is one):
 * `next()` gives room (at least one byte), `got(n)` the piece made of its
 * first n bytes.
 */
export interface PieceMemory {
  next(): Buffer;
  got(n: number): Buffer;
}

/**
 * The encoded map, in pieces of at most `pieceSize` bytes, `encodedChunkMapSize(map)`
 * bytes in all: the map is never held encoded whole, and a packed map's records
 * are copied once, into the pieces. The SHA-256 trailer is computed as the
 * pieces go. Pieces are fresh buffers the caller may keep, or with `memory`
 * taken from it (a backup's pieces in recycled read slabs: 5 MB of garbage
 * for 100,000 files otherwise).
 */
export function* encodeChunkMapPieces(map: ChunkMap, pieceSize = CHUNK_MAP_PIECE, memory?: PieceMemory): Generator<Buffer> {
  checkChunkSize(map.chunkSize);
  if (map.hashAlgorithm === 'sha256') throw new PgbbError('chunk_map', 'cannot encode a chunk map of SHA-256 hashes (format 1): maps are written as format 2');
  hashKeyOf(map.header.hashKey);
  const sha = createHash('sha256');
  const room = (): Buffer => (memory ? memory.next().subarray(0, pieceSize) : Buffer.allocUnsafe(pieceSize));
  const made = (n: number): Buffer => (memory ? memory.got(n) : n === piece.length ? piece : piece.subarray(0, n));
  let piece = room();
  let used = 0;
  function* put(src: Uint8Array, digest = true): Generator<Buffer> {
    if (digest) sha.update(src);
    for (let at = 0; at < src.length; ) {
      const n = Math.min(src.length - at, piece.length - used);
      piece.set(src.subarray(at, at + n), used);
      used += n;
      at += n;
      if (used === piece.length) {
        yield made(used);
        piece = room();
        used = 0;
      }
    }
  }
  const header = headerBytes(map);
  const head = Buffer.alloc(24 + header.length + 4);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(FORMAT_VERSION, 8);
  head.writeUInt32LE(map.chunkSize, 12);
  head.writeUInt32LE(HASH_BYTES, 16);
  head.writeUInt32LE(header.length, 20);
  header.copy(head, 24);
  head.writeUInt32LE(map.files.size, 24 + header.length);
  yield* put(head);
  if (map.files instanceof PackedChunkFiles) for (const r of map.files.records()) yield* put(r);
  else for (const f of map.files.values()) yield* put(encodeRecord(f, map.chunkSize));
  yield* put(sha.digest(), false);
  if (used) yield made(used);
}

/** The whole encoded map in one buffer (small maps, tests; a backup streams it: encodeChunkMapPieces). */
export function encodeChunkMap(map: ChunkMap): Buffer {
  return Buffer.concat([...encodeChunkMapPieces(map)]);
}

/** The map in `buf`, which the result keeps (not a copy): do not reuse `buf` while the map is in use. */
export function decodeChunkMap(buf: Buffer, where = CHUNK_MAP_FILE): ChunkMap {
  if (buf.length < MAGIC.length + 16 + TRAILER || !buf.subarray(0, MAGIC.length).equals(MAGIC)) fail(where, 'not a pgbb chunk map (bad magic or too short)');
  const bodyEnd = buf.length - TRAILER;
  const sum = createHash('sha256').update(buf.subarray(0, bodyEnd)).digest();
  if (!sum.equals(buf.subarray(bodyEnd))) fail(where, 'checksum mismatch (truncated or damaged)');
  let at = MAGIC.length;
  const need = (n: number) => {
    if (at + n > bodyEnd) fail(where, `truncated at byte ${at}`);
  };
  const u32 = () => {
    need(4);
    const v = buf.readUInt32LE(at);
    at += 4;
    return v;
  };
  const version = u32();
  if (version !== FORMAT_VERSION && version !== SHA256_FORMAT) fail(where, `format version ${version} (this pgbb reads ${SHA256_FORMAT} and ${FORMAT_VERSION})`);
  const chunkSize = u32();
  try {
    checkChunkSize(chunkSize);
  } catch {
    fail(where, `invalid chunk size ${chunkSize}`);
  }
  const hashBytes = u32();
  if (hashBytes !== HASH_BYTES) fail(where, `${hashBytes} hash bytes per chunk (expected ${HASH_BYTES})`);
  const headerLength = u32();
  need(headerLength);
  let header: ChunkMapHeader;
  try {
    header = JSON.parse(buf.toString('utf8', at, at + headerLength));
  } catch {
    return fail(where, 'header is not valid JSON');
  }
  at += headerLength;
  if (typeof header?.systemIdentifier !== 'string' || typeof header.startLsn !== 'string') fail(where, 'header lacks system identifier or start LSN');
  if (version === FORMAT_VERSION && !(typeof header.hashKey === 'string' && /^[0-9a-f]{64}$/.test(header.hashKey))) fail(where, 'header lacks a valid hash key');
  const ts = header.tablespaces;
  if (ts !== undefined && (ts === null || typeof ts !== 'object' || Object.entries(ts).some(([oid, loc]) => !/^\d+$/.test(oid) || typeof loc !== 'string' || !loc.startsWith('/')))) {
    fail(where, 'header has invalid tablespace locations');
  }
  const count = u32();
  // Every record holds at least a path length, one path byte and a size: a count the bytes
  // cannot hold is refused before anything is allocated for it.
  if (count > Math.floor((bodyEnd - at) / MIN_RECORD)) fail(where, `claims ${count} files, more than its ${bodyEnd - at} bytes can hold`);
  const records = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    records[i] = at;
    const pathLength = u32();
    if (pathLength === 0 || pathLength > MAX_PATH_BYTES) fail(where, `invalid path length ${pathLength} at byte ${at - 4}`);
    need(pathLength + 8);
    const pathAt = at;
    at += pathLength;
    const size64 = buf.readBigUInt64LE(at);
    at += 8;
    if (size64 > BigInt(Number.MAX_SAFE_INTEGER)) fail(where, `"${pathFromBytes(buf, pathAt, pathAt + pathLength)}" has an impossible size ${size64}`);
    const n = chunkCount(Number(size64), chunkSize);
    need(n * (4 + HASH_BYTES));
    at += n * (4 + HASH_BYTES);
  }
  if (at !== bodyEnd) fail(where, `${bodyEnd - at} unexpected bytes after the last file`);
  // Entries stay in `buf`: memory is the map's size plus a lookup table, not objects per file.
  const files = PackedChunkFiles.decoded(buf, records, chunkSize, HASH_BYTES, bodyEnd);
  const dup = files.duplicate();
  if (dup >= 0) fail(where, `"${files.pathOf(dup)}" is listed twice`);
  return version === SHA256_FORMAT ? { chunkSize, header, files, hashAlgorithm: 'sha256' } : { chunkSize, header, files };
}
