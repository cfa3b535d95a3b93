/**
 * An incremental, synchronous, zero-copy tar reader. No streams.
 *
 * In:  `write(chunk)` with the archive bytes split anywhere (PostgreSQL sends
 *      each tablespace as CopyData messages of up to 32 KiB, not aligned to
 *      members), then `end()`.
 * Out: calls on the handler, synchronously and in order:
 *      `entry(member)`, `data(chunk, offset)`*, `entryEnd()` for each member.
 *      `data` gets subarrays of the written chunks (never copies); `offset` is
 *      the position of the piece within the member's file. Directories,
 *      symlinks and empty files get `entry` then `entryEnd` at once.
 * Paths: a leading "./" and trailing "/" are stripped (PostgreSQL writes
 *      "./pg_wal/archive_status/" and ends directory and symlink names with
 *      "/"); entries whose path becomes "" or "." are skipped. Names and
 *      link targets are decoded losslessly (src/codec/path-bytes.ts: bytes that
 *      are not UTF-8 as lone surrogates). No security checks here: absolute
 *      paths and ".." are reported as they are.
 * Members: `mode` is the permission bits (& 0o7777); `size` is 0 for
 *      directories and symlinks; `mtime` keeps pax fractional seconds (one
 *      beyond what a Date holds is an error).
 * Types: '0', NUL, '7' file; '5' directory; '2' symlink; 'x' pax (path,
 *      linkpath, size, mtime for the next member); 'g' records go to
 *      `globalHeader`; GNU 'L'/'K'
 *      long name / link name for the next member. Anything else is an error.
 * Result: `ended` is true once the end-of-archive marker (a zero block) was
 *      seen; after it only zero bytes may follow.
 * Errors: TarFormatError (naming the archive and the member, shown with
 *      showPath on one line) for bad headers,
 *      unsupported types, pax/long-name payloads over 1 MiB, data after the
 *      end marker; from `end()` for a truncated archive, or a missing end
 *      marker when `requireEndMarker`. After an error the parser stays failed.
 * Cost: in the steady state of a large member, `write()` does O(1) work plus
 *      the handler call; only header and pax bytes split across writes are copied.
 */

import { TarFormatError } from '../../errors';
import { BLOCK_SIZE, PaxOverrides, TarHeader, decodeHeader, decodeLongName, decodePax, decodePaxOverrides } from './header';
import { pathFromBytes, showPath } from '../path-bytes';

export interface TarMember {
  path: string;
  kind: 'file' | 'directory' | 'symlink';
  size: number;
  mode: number;
  mtime: Date;
  linkTarget?: string;
  /** A pax `comment` record on this member. */
  comment?: string;
}

export interface TarParserHandler {
  entry(member: TarMember): void;
  /** `chunk` is a subarray of the input (zero-copy); `offset` is within the member's file. */
  data(chunk: Buffer, offset: number): void;
  entryEnd(): void;
  /** Records of a pax global header ('g'); pgbb keeps its backup descriptor there. */
  globalHeader?(records: Record<string, string>): void;
}

export interface TarParserOptions {
  /** Names the archive in error messages, e.g. "base.tar". */
  archiveName?: string;
  /** Fail in `end()` without the end-of-archive marker. Default false: PostgreSQL 13/14 omit it. */
  requireEndMarker?: boolean;
}

/** Upper bound for pax and GNU long-name payloads. */
export const MAX_META_SIZE = 1024 * 1024;

const HEADER = 0;
const DATA = 1;
const META = 2;
const PADDING = 3;
const END = 4;

const UNSUPPORTED: Record<string, string> = {
  '1': 'hard link', '3': 'character device', '4': 'block device', '6': 'FIFO',
};

/** A member name for messages: escaped bytes as \xNN, at most 200 characters. */
function display(name: string): string {
  const s = showPath(name);
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function normalisePath(name: string): string {
  let p = name;
  while (p.startsWith('./')) p = p.slice(2);
  let end = p.length;
  while (end > 0 && p.charCodeAt(end - 1) === 0x2f) end--;
  return end === p.length ? p : p.slice(0, end);
}

export class TarParser {
  private readonly handler: TarParserHandler;
  private readonly archive: string;
  private readonly requireEndMarker: boolean;

  private state = HEADER;
  /** Archive offset of the next byte to consume. */
  private position = 0;
  private readonly hdr = Buffer.allocUnsafe(BLOCK_SIZE);
  private hdrFill = 0;

  /** The member being read (or last read), for messages. */
  private member = '';
  private size = 0;
  private remaining = 0;
  private fileOffset = 0;
  /** Data goes to the handler (false: skipped payload, e.g. of a 'g' header). */
  private emit = false;
  private padding = 0;

  private metaType = '';
  private metaBuf: Buffer | null = null;
  private metaFill = 0;

  private pax: PaxOverrides | null = null;
  private longName: string | undefined;
  private longLink: string | undefined;

  private sawEnd = false;
  private finished = false;
  private failure: unknown = null;

  constructor(handler: TarParserHandler, options: TarParserOptions = {}) {
    this.handler = handler;
    this.archive = options.archiveName === undefined ? 'tar archive' : `tar archive "${options.archiveName}"`;
    this.requireEndMarker = options.requireEndMarker ?? false;
  }

  /** True once the end-of-archive marker was seen. */
  get ended(): boolean {
    return this.sawEnd;
  }

  write(chunk: Buffer): void {
    if (this.failure !== null) throw this.failure;
    if (this.finished) throw new Error('TarParser.write() after end()');
    try {
      this.consume(chunk);
    } catch (err) {
      this.failure = err;
      throw err;
    }
  }

  end(): void {
    if (this.failure !== null) throw this.failure;
    if (this.finished) return;
    this.finished = true;
    const err = this.checkComplete();
    if (err) {
      this.failure = err;
      throw err;
    }
  }

  private consume(chunk: Buffer): void {
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      switch (this.state) {
        case DATA: {
          const n = Math.min(this.remaining, len - pos);
          const offset = this.fileOffset;
          this.remaining -= n;
          this.fileOffset += n;
          this.position += n;
          if (this.emit) this.handler.data(n === len ? chunk : chunk.subarray(pos, pos + n), offset);
          pos += n;
          if (this.remaining === 0) this.finishData();
          break;
        }
        case HEADER: {
          if (this.hdrFill === 0 && len - pos >= BLOCK_SIZE) {
            this.position += BLOCK_SIZE;
            pos += BLOCK_SIZE;
            this.onHeader(chunk, pos - BLOCK_SIZE);
          } else {
            const n = Math.min(BLOCK_SIZE - this.hdrFill, len - pos);
            chunk.copy(this.hdr, this.hdrFill, pos, pos + n);
            this.hdrFill += n;
            this.position += n;
            pos += n;
            if (this.hdrFill === BLOCK_SIZE) {
              this.hdrFill = 0;
              this.onHeader(this.hdr, 0);
            }
          }
          break;
        }
        case PADDING: {
          const n = Math.min(this.padding, len - pos);
          this.padding -= n;
          this.position += n;
          pos += n;
          if (this.padding === 0) this.state = HEADER;
          break;
        }
        case META: {
          // Small (bounded) payloads: copied, so they may span writes.
          const n = Math.min(this.size - this.metaFill, len - pos);
          if (this.metaBuf === null) this.metaBuf = Buffer.allocUnsafe(this.size);
          chunk.copy(this.metaBuf, this.metaFill, pos, pos + n);
          this.metaFill += n;
          this.position += n;
          pos += n;
          if (this.metaFill === this.size) this.finishMeta(this.metaBuf);
          break;
        }
        default: {
          // END: tar pads the archive to its record size with zeros.
          for (let i = pos; i < len; i++) {
            if (chunk[i] !== 0) {
              throw new TarFormatError(
                `unexpected data at offset ${this.position + i - pos} after the end-of-archive marker of ${this.archive}`,
              );
            }
          }
          this.position += len - pos;
          pos = len;
        }
      }
    }
  }

  private onHeader(block: Buffer, offset: number): void {
    const start = this.position - BLOCK_SIZE;
    let h: TarHeader | null;
    try {
      h = decodeHeader(block, offset);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new TarFormatError(`${message} at offset ${start} of ${this.archive}`, { cause: err });
    }
    if (h === null) {
      if (this.hasPending()) {
        throw new TarFormatError(`${this.archive}: extended header "${this.member}" is not followed by a member`);
      }
      this.sawEnd = true;
      this.state = END;
      return;
    }
    const type = h.type;
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (h.size > MAX_META_SIZE) {
        throw new TarFormatError(
          `extended header "${display(h.name)}" (type '${type}') of ${h.size} bytes exceeds ${MAX_META_SIZE} bytes in ${this.archive}`,
        );
      }
      this.member = display(h.name);
      this.metaType = type;
      this.size = h.size;
      this.metaBuf = null;
      this.metaFill = 0;
      this.state = META;
      if (h.size === 0) this.finishMeta(Buffer.alloc(0));
      return;
    }
    const pax = this.pax ?? {};
    const rawPath = pax.path ?? this.longName ?? h.name;
    const path = normalisePath(rawPath);
    const size = pax.size ?? h.size;
    const mtime = pax.mtime ?? h.mtime;
    const linkTarget = pax.linkpath ?? this.longLink ?? h.linkname;
    const comment = pax.comment;
    this.pax = null;
    this.longName = this.longLink = undefined;
    this.member = display(path === '' || path === '.' ? rawPath : path);

    let kind: TarMember['kind'];
    if (type === '0' || type === '7') kind = 'file';
    else if (type === '5') kind = 'directory';
    else if (type === '2') kind = 'symlink';
    else {
      const code = type.charCodeAt(0);
      const what = UNSUPPORTED[type] ?? (code > 0x20 && code < 0x7f ? `type '${type}'` : `type 0x${code.toString(16).padStart(2, '0')}`);
      throw new TarFormatError(`unsupported tar member "${this.member}" in ${this.archive}: ${what}`);
    }

    // Seconds beyond what a Date holds (±8.64e12 s: a base-256 or pax mtime can say more).
    const date = new Date(mtime * 1000);
    if (Number.isNaN(date.getTime())) {
      throw new TarFormatError(`mtime ${mtime} of member "${this.member}" in ${this.archive} is out of range`);
    }
    if (path === '' || path === '.') {
      this.startData(size, false);
      return;
    }
    const member: TarMember = {
      path,
      kind,
      size: kind === 'file' ? size : 0,
      mode: h.mode & 0o7777,
      mtime: date,
    };
    if (kind === 'symlink') member.linkTarget = linkTarget;
    if (comment !== undefined) member.comment = comment;
    this.handler.entry(member);
    if (kind === 'file') {
      this.startData(size, true);
    } else {
      this.handler.entryEnd();
      this.startData(size, false);
    }
  }

  /** Reads `size` payload bytes (to the handler when `emit`), then the padding. */
  private startData(size: number, emit: boolean): void {
    this.size = size;
    this.remaining = size;
    this.fileOffset = 0;
    this.emit = emit;
    this.state = DATA;
    if (size === 0) this.finishData();
  }

  private finishData(): void {
    const emitted = this.emit;
    this.emit = false;
    this.startPadding();
    if (emitted) this.handler.entryEnd();
  }

  private startPadding(): void {
    this.padding = (BLOCK_SIZE - (this.size % BLOCK_SIZE)) % BLOCK_SIZE;
    this.state = this.padding === 0 ? HEADER : PADDING;
  }

  private finishMeta(payload: Buffer): void {
    this.metaBuf = null;
    this.startPadding();
    if (this.metaType === 'L') {
      this.longName = decodeLongName(payload);
    } else if (this.metaType === 'K') {
      this.longLink = decodeLongName(payload);
    } else if (this.metaType === 'g') {
      let records: Record<string, string>;
      try {
        records = decodePax(payload);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new TarFormatError(`${message} in pax global header "${this.member}" of ${this.archive}`, { cause: err });
      }
      this.handler.globalHeader?.(records);
    } else {
      try {
        this.pax = decodePaxOverrides(payload);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new TarFormatError(`${message} in pax header "${this.member}" of ${this.archive}`, { cause: err });
      }
    }
  }

  private hasPending(): boolean {
    return this.pax !== null || this.longName !== undefined || this.longLink !== undefined;
  }

  private checkComplete(): TarFormatError | null {
    const truncated = `truncated ${this.archive}`;
    switch (this.state) {
      case END:
        return null;
      case DATA:
        return new TarFormatError(`${truncated}: member "${this.member}" has ${this.size - this.remaining} of ${this.size} bytes`);
      case META:
        return new TarFormatError(
          `${truncated}: extended header "${this.member}" (type '${this.metaType}') has ${this.metaFill} of ${this.size} bytes`,
        );
      case PADDING:
        return new TarFormatError(`${truncated}: member "${this.member}" lacks ${this.padding} bytes of padding`);
    }
    if (this.hdrFill > 0) {
      let nameEnd = this.hdr.subarray(0, Math.min(100, this.hdrFill)).indexOf(0);
      if (nameEnd < 0 && this.hdrFill >= 100) nameEnd = 100;
      const which = nameEnd > 0
        ? `the header of member "${display(pathFromBytes(this.hdr, 0, nameEnd))}"`
        : this.member === '' ? 'the first header' : `the header after member "${this.member}"`;
      return new TarFormatError(`${truncated}: ${which} has ${this.hdrFill} of ${BLOCK_SIZE} bytes`);
    }
    if (this.hasPending()) {
      return new TarFormatError(`${truncated}: extended header "${this.member}" is not followed by a member`);
    }
    if (this.requireEndMarker) {
      return new TarFormatError(`${this.archive} ends without the end-of-archive marker`);
    }
    return null;
  }
}
