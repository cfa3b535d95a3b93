/**
 * PostgreSQL data pages: the page checksum, the page header, and which files
 * of a data directory hold checksummed pages. Pure functions, no streams.
 *
 *   pageChecksum(buf, blockNo[, offset, blockSize]) → 1…65535
 *   pageHeader(buf[, offset]) / pageUpper / pageLsnHigh / pageLsnLow / isNewPage
 *   isRelationFile(path, serverVersion) → { segno } | null
 *   blockNumber(segno, index, segmentBlocks) → the block number mixed into the checksum
 *
 * Facts (PostgreSQL src/include/storage/checksum_impl.h, identical 13–18;
 * bufpage.h; backup/basebackup.c; storage/file/reinit.c; see PROTOCOL.md §6):
 * the page is read as host-order uint32 words with pd_checksum (bytes 8–9)
 * taken as zero; 32 FNV-1a-like lanes, lane j takes words j, j+32, j+64, …;
 * two extra rounds of zeroes; the lanes are XORed, the absolute block number
 * XORed in, and the result reduced to (x mod 65535) + 1, never 0.
 * Pages are decoded as little-endian: the server's host order on every
 * platform pgbb supports (big-endian servers are not supported).
 *
 * Speed: no allocation per page. Aligned input is read through an Int32Array
 * over the whole ArrayBuffer (cached for the last ArrayBuffer seen, which
 * that one view keeps alive until another comes), so a caller that reuses its
 * buffers allocates nothing at all; unaligned input
 * (or a big-endian client) assembles words from bytes, about half as fast.
 * Lanes are walked column by column, four at a time in locals: that keeps the
 * four dependency chains of imul in registers and beat both the literal
 * row-by-row loop with a sums array and a 32-local unrolled version (see the
 * measurements in bench/page-checksum.ts).
 *
 * Errors: RangeError when the page does not fit the buffer or the block size
 * is not a multiple of 128 bytes (32 lanes × 4 bytes) — a caller's bug.
 */

import { strictRelationFileNames } from './server-version';

const N_SUMS = 32;
const FNV_PRIME = 16777619;
/** The 32 lane seeds (checksumBaseOffsets), as int32 bit patterns. */
const SEEDS = new Int32Array(
  new Uint32Array([
    0x5b1f36e9, 0xb8525960, 0x02ab50aa, 0x1de66d2a, 0x79ff467a, 0x9bb9f8a3, 0x217e7cd2, 0x83e13d2c,
    0xf8d4474f, 0xe39eb970, 0x42c6ae16, 0x993216fa, 0x7b093b5d, 0x98daff3c, 0xf718902a, 0x0b1c9cdb,
    0xe58f764b, 0x187636bc, 0x5d7b3bb1, 0xe73de7de, 0x92bec979, 0xcca6c0b2, 0x304a0979, 0x85aa43d4,
    0x783125bb, 0x6ca8eaa2, 0xe407eac6, 0x4b5cfc3e, 0x9fbf8c76, 0x15ca20be, 0xf2ca9fd3, 0x959bd756,
  ]).buffer,
);

/** Word 2 holds pd_checksum in its low half (bytes 8–9, little-endian): masked out. */
const WORD2_MASK = 0xffff0000 | 0;

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Default BLCKSZ and RELSEG_SIZE (1 GiB segments of 8 KiB pages). */
export const DEFAULT_BLOCK_SIZE = 8192;
export const DEFAULT_SEGMENT_BLOCKS = 131072;
/** The page header is 24 bytes; a page shorter than that has no header. */
export const PAGE_HEADER_SIZE = 24;

let cachedBuffer: ArrayBufferLike | null = null;
let cachedWords: Int32Array | null = null;

function wordsOf(ab: ArrayBufferLike): Int32Array {
  if (ab !== cachedBuffer) {
    cachedWords = new Int32Array(ab, 0, ab.byteLength >>> 2);
    cachedBuffer = ab;
  }
  return cachedWords!;
}

/**
 * pg_checksum_page: the checksum PostgreSQL stores in pd_checksum for block
 * `blockNo` (absolute: segno × segmentBlocks + index in the segment file).
 * The page is `buf[offset, offset + blockSize)`; by default all of `buf`.
 * Meaningless for new pages (pd_upper == 0), which carry no checksum.
 */
export function pageChecksum(buf: Uint8Array, blockNo: number, offset = 0, blockSize = buf.length - offset): number {
  if (blockSize <= 0 || blockSize % (N_SUMS * 4) !== 0 || offset < 0 || offset + blockSize > buf.length) {
    throw new RangeError(`page checksum: ${blockSize} bytes at offset ${offset} of a ${buf.length}-byte buffer is not a page`);
  }
  const at = buf.byteOffset + offset;
  const folded =
    HOST_LITTLE_ENDIAN && (at & 3) === 0
      ? foldWords(wordsOf(buf.buffer), at >>> 2, blockSize >>> 2)
      : foldBytes(buf, offset, blockSize);
  return (((folded ^ blockNo) >>> 0) % 65535) + 1;
}

/** The XOR of the 32 lanes, reading words from an Int32Array (host order = little-endian). */
function foldWords(w: Int32Array, base: number, nWords: number): number {
  const end = base + nWords;
  const P = FNV_PRIME;
  let result = 0;
  for (let j = 0; j < N_SUMS; j += 4) {
    const row0 = base + j;
    // The first row is peeled so that word 2 (pd_checksum) can be masked without a test per row.
    let t = SEEDS[j] ^ w[row0];
    let a = Math.imul(t, P) ^ (t >>> 17);
    t = SEEDS[j + 1] ^ w[row0 + 1];
    let b = Math.imul(t, P) ^ (t >>> 17);
    t = SEEDS[j + 2] ^ (j === 0 ? w[row0 + 2] & WORD2_MASK : w[row0 + 2]);
    let c = Math.imul(t, P) ^ (t >>> 17);
    t = SEEDS[j + 3] ^ w[row0 + 3];
    let d = Math.imul(t, P) ^ (t >>> 17);
    for (let i = row0 + N_SUMS; i < end; i += N_SUMS) {
      t = a ^ w[i];
      a = Math.imul(t, P) ^ (t >>> 17);
      t = b ^ w[i + 1];
      b = Math.imul(t, P) ^ (t >>> 17);
      t = c ^ w[i + 2];
      c = Math.imul(t, P) ^ (t >>> 17);
      t = d ^ w[i + 3];
      d = Math.imul(t, P) ^ (t >>> 17);
    }
    result ^= finish(a) ^ finish(b) ^ finish(c) ^ finish(d);
  }
  return result;
}

/** The same over bytes, for unaligned pages and big-endian clients. */
function foldBytes(p: Uint8Array, offset: number, blockSize: number): number {
  const end = offset + blockSize;
  const P = FNV_PRIME;
  let result = 0;
  for (let j = 0; j < N_SUMS; j += 4) {
    const row0 = offset + j * 4;
    let t = SEEDS[j] ^ le32(p, row0);
    let a = Math.imul(t, P) ^ (t >>> 17);
    t = SEEDS[j + 1] ^ le32(p, row0 + 4);
    let b = Math.imul(t, P) ^ (t >>> 17);
    t = SEEDS[j + 2] ^ (j === 0 ? le32(p, row0 + 8) & WORD2_MASK : le32(p, row0 + 8));
    let c = Math.imul(t, P) ^ (t >>> 17);
    t = SEEDS[j + 3] ^ le32(p, row0 + 12);
    let d = Math.imul(t, P) ^ (t >>> 17);
    for (let i = row0 + N_SUMS * 4; i < end; i += N_SUMS * 4) {
      t = a ^ le32(p, i);
      a = Math.imul(t, P) ^ (t >>> 17);
      t = b ^ le32(p, i + 4);
      b = Math.imul(t, P) ^ (t >>> 17);
      t = c ^ le32(p, i + 8);
      c = Math.imul(t, P) ^ (t >>> 17);
      t = d ^ le32(p, i + 12);
      d = Math.imul(t, P) ^ (t >>> 17);
    }
    result ^= finish(a) ^ finish(b) ^ finish(c) ^ finish(d);
  }
  return result;
}

/** Two rounds with a zero word: the final mixing of each lane. */
function finish(s: number): number {
  s = Math.imul(s, FNV_PRIME) ^ (s >>> 17);
  return Math.imul(s, FNV_PRIME) ^ (s >>> 17);
}

function le32(p: Uint8Array, i: number): number {
  return p[i] | (p[i + 1] << 8) | (p[i + 2] << 16) | (p[i + 3] << 24);
}

function le16(p: Uint8Array, i: number): number {
  return p[i] | (p[i + 1] << 8);
}

/** pd_lsn.xlogid: the high 32 bits of the page LSN. */
export function pageLsnHigh(p: Uint8Array, offset = 0): number {
  return le32(p, offset) >>> 0;
}

/** pd_lsn.xrecoff: the low 32 bits of the page LSN. */
export function pageLsnLow(p: Uint8Array, offset = 0): number {
  return le32(p, offset + 4) >>> 0;
}

/** pd_checksum as stored on the page. */
export function pageChecksumField(p: Uint8Array, offset = 0): number {
  return le16(p, offset + 8);
}

/** pd_upper: 0 only on a page never initialized (PageIsNew). */
export function pageUpper(p: Uint8Array, offset = 0): number {
  return le16(p, offset + 14);
}

/**
 * PageIsNew: pd_upper == 0. Such pages have no checksum; PostgreSQL's base
 * backup and pg_checksums skip them without checking that they are all
 * zeroes (only the buffer manager's read path does that), and so do we.
 */
export function isNewPage(p: Uint8Array, offset = 0): boolean {
  return le16(p, offset + 14) === 0;
}

export interface PageHeader {
  /** pd_lsn: LSN of the last WAL record that changed the page. */
  lsn: bigint;
  checksum: number;
  flags: number;
  lower: number;
  upper: number;
  special: number;
  /** Page size in bytes, from pd_pagesize_version. */
  pageSize: number;
  /** Page layout version (4 since PostgreSQL 8.3). */
  layoutVersion: number;
  pruneXid: number;
}

/** The 24-byte page header, decoded (for diagnostics and tests; the hot path uses the scalar helpers). */
export function pageHeader(p: Uint8Array, offset = 0): PageHeader {
  if (offset < 0 || offset + PAGE_HEADER_SIZE > p.length) throw new RangeError(`page header: no 24 bytes at offset ${offset}`);
  const sizeVersion = le16(p, offset + 18);
  return {
    lsn: (BigInt(pageLsnHigh(p, offset)) << 32n) | BigInt(pageLsnLow(p, offset)),
    checksum: pageChecksumField(p, offset),
    flags: le16(p, offset + 10),
    lower: le16(p, offset + 12),
    upper: pageUpper(p, offset),
    special: le16(p, offset + 16),
    pageSize: sizeVersion & 0xff00,
    layoutVersion: sizeVersion & 0x00ff,
    pruneXid: le32(p, offset + 20) >>> 0,
  };
}

/** Block number mixed into the checksum: segno × RELSEG_SIZE + index within the segment file. */
export function blockNumber(segno: number, index: number, segmentBlocks = DEFAULT_SEGMENT_BLOCKS): number {
  return segno * segmentBlocks + index;
}

/** Files whose name the server leaves out of checksum checks on 13–16 (noChecksumFiles). */
const NOT_CHECKSUMMED = new Set(['pg_control', 'pg_filenode.map', 'PG_VERSION']);
const NOT_CHECKSUMMED_PREFIX = 'pg_internal.init';

/** 17+: parse_filename_for_nontemp_relation: `<relfilenumber>[_fsm|_vm|_init][.<segno>]`, no leading zeroes. */
const RELATION_FILE_NAME = /^([1-9][0-9]*)(?:_(?:fsm|vm|init))?(?:\.([1-9][0-9]*))?$/;
const UINT32_MAX = 0xffffffff;

/**
 * Does the server check page checksums in this file, and with which segment
 * number? `path` is relative to the data directory, '/'-separated, as in the
 * manifest: `base/5/16384.1`, `global/1262`, tablespace files as
 * `pg_tblspc/<oid>/PG_15_202209061/5/16385`. A leading `./` is ignored.
 *
 * 13–16 (basebackup.c is_checksummed_file): any file under `global/`,
 *   `base/` or a tablespace, except `pg_control`, `pg_filenode.map`,
 *   `PG_VERSION` and `pg_internal.init*`; segno = the digits after the first
 *   '.' of the name. Where the server raises "invalid segment number" (a '.'
 *   not followed by a positive number) we answer null: we can't number the
 *   blocks, and refusing a backup is the server's call, not a verifier's.
 * 17+ (parse_filename_for_nontemp_relation): only names that parse as
 *   relation files, directly in `global/`, `base/<dboid>/` or
 *   `pg_tblspc/<oid>/PG_…/<dboid>/`.
 * One difference we accept: on 13–16 the server checks tablespace files by
 * their absolute path, so in-place tablespaces (inside pg_tblspc, PG 15+
 * developer option) escape its check; here they are checked like others.
 */
export function isRelationFile(path: string, serverVersion: number): { segno: number } | null {
  const parts = (path.startsWith('./') ? path.slice(2) : path).split('/');
  const name = parts[parts.length - 1];
  if (strictRelationFileNames(serverVersion)) {
    const inRelationDir =
      (parts.length === 2 && parts[0] === 'global') ||
      (parts.length === 3 && parts[0] === 'base' && /^[0-9]+$/.test(parts[1])) ||
      (parts.length === 5 && parts[0] === 'pg_tblspc' && /^[0-9]+$/.test(parts[1]) && parts[2].startsWith('PG_') && /^[0-9]+$/.test(parts[3]));
    if (!inRelationDir) return null;
    const m = RELATION_FILE_NAME.exec(name);
    if (!m || Number(m[1]) > UINT32_MAX) return null;
    const segno = m[2] === undefined ? 0 : Number(m[2]);
    return segno > UINT32_MAX ? null : { segno };
  }
  const inTablespace =
    (parts.length >= 2 && (parts[0] === 'global' || parts[0] === 'base')) ||
    (parts.length >= 3 && parts[0] === 'pg_tblspc' && /^[0-9]+$/.test(parts[1]));
  if (!inTablespace || name === '' || NOT_CHECKSUMMED.has(name) || name.startsWith(NOT_CHECKSUMMED_PREFIX)) return null;
  const dot = name.indexOf('.');
  if (dot < 0) return { segno: 0 };
  // atoi(): the leading digits; 0 or none is the server's "invalid segment number".
  const digits = /^[0-9]+/.exec(name.slice(dot + 1));
  const segno = digits ? Number(digits[0]) : 0;
  return segno > 0 && segno <= UINT32_MAX ? { segno } : null;
}
