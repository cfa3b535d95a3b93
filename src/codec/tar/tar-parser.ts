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
 * Paths and members: see tar-member.ts ("./" and trailing "/" stripped, ""
 *      and "." skipped, names decoded losslessly, no security checks).
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
import { BLOCK_SIZE, TarHeader, decodeHeader } from './header';
import { ExtendedHeaders, MAX_META_SIZE, isExtendedType } from './tar-extended-headers';
import { display, resolveMember, type TarMember } from './tar-member';
import { pathFromBytes } from '../path-bytes';

// Moved out with their jobs; still exported here, where callers import them from.
export type { TarMember };
export { MAX_META_SIZE } from './tar-extended-headers';

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

const HEADER = 0;
const DATA = 1;
const META = 2;
const PADDING = 3;
const END = 4;

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

  /** Pax / GNU long-name headers waiting for their member. */
  private readonly extended = new ExtendedHeaders();

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
      if (this.extended.pending) {
        throw new TarFormatError(`${this.archive}: extended header "${this.member}" is not followed by a member`);
      }
      this.sawEnd = true;
      this.state = END;
      return;
    }
    const type = h.type;
    if (isExtendedType(type)) {
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
    const { shown, size, member } = resolveMember(h, this.extended.take(), this.archive);
    this.member = shown;
    if (member === null) {
      this.startData(size, false);
      return;
    }
    this.handler.entry(member);
    if (member.kind === 'file') {
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
    const records = this.extended.absorb(this.metaType, payload, this.member, this.archive);
    if (records !== undefined) this.handler.globalHeader?.(records);
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
    if (this.extended.pending) {
      return new TarFormatError(`${truncated}: extended header "${this.member}" is not followed by a member`);
    }
    if (this.requireEndMarker) {
      return new TarFormatError(`${this.archive} ends without the end-of-archive marker`);
    }
    return null;
  }
}
