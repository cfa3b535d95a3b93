/**
 * Tar header encoder: pure functions, no streams (the decoder is ./header.ts).
 *
 * In:  a member's name, type, size, mode, mtime, link target, and extra pax
 *      records (pgbb's backup descriptor rides in a pax `comment`).
 * Out: the bytes that go before the member's data: a POSIX ustar header
 *      block, preceded when needed by a pax 'x' header block and its padded
 *      records. One Buffer.
 *
 * Names and link targets are pgbb path strings (src/codec/path-bytes.ts): their
 * bytes go into the header exactly, so a non-UTF-8 file name survives.
 *   - name ≤ 100 bytes: the name field; else split at a '/' into prefix
 *     (≤ 155) and name (≤ 100) when possible (plain ustar, what every tar
 *     reads); else a pax `path` record.
 *   - link target ≤ 100 bytes: the linkname field; else a pax `linkpath`
 *     and an empty linkname field (never a cut-off target).
 *   - a pax path or linkpath that is not valid UTF-8 gets `hdrcharset=BINARY`
 *     (POSIX: the values are bytes, not UTF-8), as GNU tar writes it.
 *   - directories get a trailing '/' (as tar and PostgreSQL write them).
 *   - size and mtime that do not fit their octal fields use GNU base-256
 *     (PostgreSQL's tar.c does the same); an invalid mtime is written as 0.
 * Errors: TarFormatError for a name or link target with a NUL byte, an empty
 *   name, a negative or non-integer size, or an extra pax key that is not
 *   `key=`-safe.
 */
import { TarFormatError } from '../../errors';
import { isRawPath, pathToBytes, showPath } from '../path-bytes';
import { BLOCK_SIZE } from './header';

export type TarType = '0' | '2' | '5';

export interface TarHeaderInput {
  /** Member path (pgbb path string). */
  name: string;
  type: TarType;
  /** Data bytes that follow (0 for directories and symlinks). */
  size: number;
  /** Permission bits. */
  mode: number;
  mtime: Date;
  linkname?: string;
  /** Extra pax records, e.g. { comment: '…' }. */
  pax?: Record<string, string>;
}

const NAME = 100;
const PREFIX = 155;
const ZEROS = Buffer.alloc(BLOCK_SIZE);

/** `"<len> <key>=<value>\n"`, where <len> counts the whole record, its own digits included. */
export function paxRecord(key: string, value: Buffer): Buffer {
  const body = 3 + Buffer.byteLength(key) + value.length; // ' ', '=', '\n'
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) len = body + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

/** Writes `value` as octal digits + NUL in `length` bytes, or base-256 when it does not fit. */
function writeNumber(block: Buffer, offset: number, length: number, value: number): void {
  if (value >= 0 && value < 8 ** (length - 1)) {
    block.write(value.toString(8).padStart(length - 1, '0'), offset, 'latin1');
    block[offset + length - 1] = 0;
    return;
  }
  // GNU base-256: big-endian two's complement, the first byte's high bit set (0xff when negative).
  let v = BigInt(value);
  for (let i = offset + length - 1; i > offset; i--) {
    block[i] = Number(BigInt.asUintN(8, v));
    v >>= 8n;
  }
  block[offset] = value < 0 ? 0xff : 0x80;
}

/** Where to cut a too-long name into ustar prefix and name, or -1. */
function splitAt(name: Buffer): number {
  for (let i = Math.max(1, name.length - NAME - 1); i <= Math.min(PREFIX, name.length - 2); i++) {
    if (name[i] === 0x2f) return i;
  }
  return -1;
}

function block(fields: {
  name: Buffer;
  prefix?: Buffer;
  mode: number;
  size: number;
  mtime: number;
  type: string;
  linkname?: Buffer;
}): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  fields.name.copy(b, 0);
  writeNumber(b, 100, 8, fields.mode & 0o7777);
  writeNumber(b, 108, 8, 0); // uid
  writeNumber(b, 116, 8, 0); // gid
  writeNumber(b, 124, 12, fields.size);
  writeNumber(b, 136, 12, fields.mtime);
  b[156] = fields.type.charCodeAt(0);
  fields.linkname?.copy(b, 157);
  b.write('ustar\x0000', 257, 'latin1');
  writeNumber(b, 329, 8, 0); // devmajor
  writeNumber(b, 337, 8, 0); // devminor
  fields.prefix?.copy(b, 345);
  // Checksum: the byte sum with the field itself counted as spaces; "%06o\0 ".
  let sum = 8 * 0x20;
  for (let i = 0; i < BLOCK_SIZE; i++) if (i < 148 || i >= 156) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0'), 148, 'latin1');
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

/** The header bytes (pax header and records when needed, then the ustar block) for one member. */
export function encodeHeader(h: TarHeaderInput): Buffer {
  const shown = showPath(h.name);
  if (!h.name) throw new TarFormatError('tar member with an empty name');
  if (h.name.includes('\0') || h.linkname?.includes('\0')) throw new TarFormatError(`tar member "${shown.replace(/\0/g, '\\0')}" has a NUL byte in its name or link target`);
  if (!Number.isSafeInteger(h.size) || h.size < 0) throw new TarFormatError(`tar member "${shown}" has invalid size ${h.size}`);
  const ms = h.mtime.getTime();
  const mtime = Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);

  let name = pathToBytes(h.type === '5' && !h.name.endsWith('/') ? `${h.name}/` : h.name);
  let prefix: Buffer | undefined;
  const records: Buffer[] = [];
  let binary = false;
  if (name.length > NAME) {
    const at = splitAt(name);
    if (at > 0) {
      prefix = name.subarray(0, at);
      name = name.subarray(at + 1);
    } else {
      records.push(paxRecord('path', name));
      binary ||= isRawPath(h.name);
      name = name.subarray(0, NAME);
    }
  }
  let linkname = h.linkname === undefined ? undefined : pathToBytes(h.linkname);
  if (linkname && linkname.length > NAME) {
    records.push(paxRecord('linkpath', linkname));
    binary ||= isRawPath(h.linkname!);
    // Left empty, not cut: a reader that ignores pax would otherwise make a link to the
    // cut-off prefix, an existing directory maybe; an empty target it refuses.
    linkname = undefined;
  }
  if (binary) records.unshift(paxRecord('hdrcharset', Buffer.from('BINARY')));
  for (const [key, value] of Object.entries(h.pax ?? {})) {
    if (!/^[A-Za-z0-9._-]+$/.test(key)) throw new TarFormatError(`invalid pax record name "${key}"`);
    records.push(paxRecord(key, Buffer.from(value, 'utf8')));
  }
  const header = block({ name, prefix, mode: h.mode, size: h.size, mtime, type: h.type, linkname });
  if (!records.length) return header;
  const payload = Buffer.concat(records);
  const pad = (BLOCK_SIZE - (payload.length % BLOCK_SIZE)) % BLOCK_SIZE;
  const paxHeader = block({ name: Buffer.from('PaxHeader'), mode: h.mode, size: payload.length, mtime, type: 'x' });
  return Buffer.concat([paxHeader, payload, ZEROS.subarray(0, pad), header]);
}
