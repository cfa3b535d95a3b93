/**
 * Tar header codec: pure functions, no streams.
 *
 * In:  one 512-byte header block (ustar, GNU or old v7) at an offset in a Buffer;
 *      or the payload of a pax extended header ('x' / 'g').
 * Out: `decodeHeader` -> a TarHeader, or null for an all-zero block (the
 *      end-of-archive marker); `decodePax` -> the pax records as key/value pairs;
 *      `decodePaxOverrides` -> the path/linkpath/size/mtime a pax header sets;
 *      `decodeLongName` -> a GNU 'L'/'K' payload as a string.
 * Errors: TarFormatError for a checksum mismatch (naming the member as decoded),
 *      an invalid numeric field (naming the field and the member), or a
 *      malformed pax record (naming the record's byte offset).
 *
 * Numeric fields are octal ASCII (leading spaces allowed, ended by NUL or
 * space, an empty field reads as 0) or GNU base-256 (high bit of the first byte
 * set; 0xff first byte = negative two's complement). The checksum is accepted
 * as the unsigned or the signed byte sum, the checksum field counted as spaces.
 * Names, link targets and pax values are decoded losslessly with
 * pathFromBytes (src/codec/path-bytes.ts): UTF-8, each byte of an invalid sequence
 * as one lone surrogate, so a non-UTF-8 file name survives the round trip.
 * `prefix` is joined to `name` only for POSIX ustar ("ustar\0"), since GNU tar
 * ("ustar  ") keeps other data there. (Encoding: ./encode-header.ts.)
 */

import { TarFormatError } from '../../errors';
import { pathFromBytes, showPath } from '../path-bytes';

export const BLOCK_SIZE = 512;

export interface TarHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** The typeflag character; '0' for NUL. */
  type: string;
  linkname: string;
}

const CHKSUM_OFFSET = 148;
const CHKSUM_LENGTH = 8;
const SPACE = 0x20;

/** Decodes a NUL-terminated byte string field (losslessly, see pathFromBytes). */
function decodeString(block: Buffer, start: number, length: number): string {
  let end = start;
  const limit = start + length;
  while (end < limit && block[end] !== 0) end++;
  return pathFromBytes(block, start, end);
}

function isUstarPosix(block: Buffer, offset: number): boolean {
  // "ustar\0" followed by the version "00" (some writers leave the version blank).
  const m = offset + 257;
  return (
    block[m] === 0x75 && block[m + 1] === 0x73 && block[m + 2] === 0x74 &&
    block[m + 3] === 0x61 && block[m + 4] === 0x72 && block[m + 5] === 0
  );
}

/**
 * Parses a numeric field; returns NaN when it is not valid octal or base-256,
 * so the caller can name the field and the member in the error.
 */
export function decodeNumber(block: Buffer, start: number, length: number): number {
  const end = start + length;
  const first = block[start]!;
  if (first & 0x80) {
    // GNU base-256: big-endian, two's complement when the first byte is 0xff.
    const negative = first === 0xff;
    let value = negative ? 0 : first & 0x7f;
    for (let i = start + 1; i < end; i++) {
      const b = negative ? 0xff - block[i]! : block[i]!;
      value = value * 256 + b;
      if (value > Number.MAX_SAFE_INTEGER) return NaN;
    }
    return negative ? -(value + 1) : value;
  }
  let i = start;
  while (i < end && block[i] === SPACE) i++;
  let value = 0;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0 || c === SPACE) break;
    if (c < 0x30 || c > 0x37) return NaN;
    value = value * 8 + (c - 0x30);
  }
  // After the terminator only NULs and spaces may follow.
  for (; i < end; i++) {
    const c = block[i]!;
    if (c !== 0 && c !== SPACE) return NaN;
  }
  return value;
}

/**
 * Decodes the header block at `offset` (512 bytes must be available there).
 * Returns null for an all-zero block.
 */
export function decodeHeader(block: Buffer, offset = 0): TarHeader | null {
  if (block.length - offset < BLOCK_SIZE) {
    throw new TarFormatError(`tar header needs ${BLOCK_SIZE} bytes, got ${block.length - offset}`);
  }
  // One pass over the block: the raw byte sum (zero iff the block is all zeros)
  // and the count of bytes >= 0x80 (for the signed sum); then take the
  // checksum field back out.
  let raw = 0;
  let high = 0;
  for (let i = offset, end = offset + BLOCK_SIZE; i < end; i++) {
    const b = block[i]!;
    raw += b;
    high += b >>> 7;
  }
  if (raw === 0) return null;
  let field = 0;
  for (let i = offset + CHKSUM_OFFSET, end = i + CHKSUM_LENGTH; i < end; i++) {
    const b = block[i]!;
    field += b;
    high -= b >>> 7;
  }
  const unsigned = raw - field + CHKSUM_LENGTH * SPACE;
  const signed = unsigned - 256 * high;

  let name = decodeString(block, offset, 100);
  if (isUstarPosix(block, offset)) {
    const prefix = decodeString(block, offset + 345, 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }

  const stored = decodeNumber(block, offset + CHKSUM_OFFSET, CHKSUM_LENGTH);
  if (stored !== unsigned && stored !== signed) {
    throw new TarFormatError(`tar header checksum mismatch for member "${showPath(name)}"`);
  }

  const number = (fieldName: string, start: number, length: number): number => {
    const v = decodeNumber(block, offset + start, length);
    if (Number.isNaN(v)) {
      throw new TarFormatError(`invalid ${fieldName} field in tar header for member "${showPath(name)}"`);
    }
    return v;
  };
  const size = number('size', 124, 12);
  if (size < 0) throw new TarFormatError(`negative size in tar header for member "${showPath(name)}"`);
  const typeByte = block[offset + 156]!;

  return {
    name,
    mode: number('mode', 100, 8),
    uid: number('uid', 108, 8),
    gid: number('gid', 116, 8),
    size,
    mtime: number('mtime', 136, 12),
    type: typeByte === 0 ? '0' : String.fromCharCode(typeByte),
    linkname: decodeString(block, offset + 157, 100),
  };
}

/**
 * Parses pax extended header records, `"<len> <key>=<value>\n"`, where <len>
 * is the decimal byte length of the whole record. Trailing NUL padding after
 * the last record is tolerated. Later records override earlier ones. Values
 * are decoded losslessly (a `hdrcharset=BINARY` path is raw bytes, which
 * pathFromBytes keeps).
 */
export function decodePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] === 0) {
      for (let i = pos; i < buf.length; i++) {
        if (buf[i] !== 0) throw new TarFormatError(`malformed pax record at byte ${pos}: unexpected NUL`);
      }
      break;
    }
    let i = pos;
    let len = 0;
    while (i < buf.length && buf[i]! >= 0x30 && buf[i]! <= 0x39 && i - pos < 16) {
      len = len * 10 + (buf[i]! - 0x30);
      i++;
    }
    if (i === pos || buf[i] !== SPACE) {
      throw new TarFormatError(`malformed pax record at byte ${pos}: expected "<length> "`);
    }
    const end = pos + len;
    if (len <= i - pos + 1 || end > buf.length) {
      throw new TarFormatError(`malformed pax record at byte ${pos}: length ${len} out of range`);
    }
    if (buf[end - 1] !== 0x0a) {
      throw new TarFormatError(`malformed pax record at byte ${pos}: missing newline`);
    }
    const keyStart = i + 1;
    let eq = keyStart;
    while (eq < end - 1 && buf[eq] !== 0x3d) eq++;
    if (eq === end - 1 || eq === keyStart) {
      throw new TarFormatError(`malformed pax record at byte ${pos}: expected "<key>=<value>"`);
    }
    out[buf.toString('utf8', keyStart, eq)] = pathFromBytes(buf, eq + 1, end - 1);
    pos = end;
  }
  return out;
}

/** A value for a message: shown escaped, and at most 100 characters of it. */
function clip(v: string): string {
  const s = showPath(v);
  return s.length > 100 ? `${s.slice(0, 100)}…` : s;
}

/** What a pax 'x' header changes for the next member. */
export interface PaxOverrides {
  path?: string;
  linkpath?: string;
  size?: number;
  /** Seconds, possibly fractional. */
  mtime?: number;
  /** pax `comment`: ignored by extractors; pgbb keeps its backup descriptor there. */
  comment?: string;
}

/**
 * Decodes a pax payload into the overrides pgbb uses (path, linkpath, size,
 * mtime). An empty value means "no override". Throws TarFormatError for
 * malformed records, a non-numeric size or mtime, or a path or linkpath with
 * a NUL byte (no file name can hold one).
 */
export function decodePaxOverrides(buf: Buffer): PaxOverrides {
  const records = decodePax(buf);
  const out: PaxOverrides = {};
  for (const key of ['path', 'linkpath'] as const) {
    const v = records[key];
    if (v?.includes('\0')) throw new TarFormatError(`pax ${key} "${clip(v)}" contains a NUL byte`);
    if (v) out[key] = v;
  }
  if (records.comment) out.comment = records.comment;
  if (records.size) {
    const size = Number(records.size);
    if (!/^[0-9]+$/.test(records.size) || !Number.isSafeInteger(size)) {
      throw new TarFormatError(`invalid pax size "${clip(records.size)}"`);
    }
    out.size = size;
  }
  if (records.mtime) {
    if (!/^-?[0-9]+(\.[0-9]*)?$/.test(records.mtime)) {
      throw new TarFormatError(`invalid pax mtime "${clip(records.mtime)}"`);
    }
    out.mtime = Number(records.mtime);
  }
  return out;
}

/** Decodes a GNU 'L' / 'K' payload: the name up to its first NUL (GNU tar reads it as a C string). */
export function decodeLongName(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return pathFromBytes(buf, 0, nul < 0 ? buf.length : nul);
}
