/**
 * The tar encoder: member headers, data and padding as bytes, with the
 * bookkeeping that keeps an archive well formed. Pure: no streams, no I/O.
 * transforms/tar-pack.ts (and the stream wrapper ./tar-writer.ts) put its
 * output on a byte stream.
 *
 *   add(header)      the member's header bytes (./encode-header.ts: ustar,
 *                    pax for long names and link targets, raw bytes of
 *                    non-UTF-8 names kept); directories and symlinks are
 *                    complete at once
 *   data(chunk)      checks the count and returns `chunk` itself (no copy)
 *   endEntry()       the member's padding (null when none is due)
 *   end()            the end-of-archive marker (two zero blocks)
 *
 * Errors: TarFormatError for data longer or shorter than its header says,
 * data outside a member, a member added while another is open, an archive
 * ended inside a member; encodeHeader's own (a NUL in a name, …).
 */
import type { EntryKind } from '../../events';
import { TarFormatError } from '../../errors';
import { showPath } from '../path-bytes';
import { BLOCK_SIZE } from './header';
import { encodeHeader } from './encode-header';

export interface TarMemberHeader {
  name: string;
  kind: EntryKind;
  size: number;
  mode: number;
  mtime: Date;
  linkTarget?: string;
}

const TYPES = { file: '0', symlink: '2', directory: '5' } as const;
const ZEROS = Buffer.alloc(2 * BLOCK_SIZE);

export class TarEncoder {
  /** The open file member. */
  private member: { name: string; size: number; written: number } | null = null;
  /** A pax comment for the next member (the backup descriptor, see src/codec/backup-descriptor.ts). */
  private comment: string | null = null;

  /** Attaches `comment` (a pax record extractors ignore) to the next member added. */
  commentNext(comment: string): void {
    this.comment = comment;
  }

  /** True while a file member's data is due. */
  get inMember(): boolean {
    return this.member !== null;
  }

  add(h: TarMemberHeader): Buffer {
    if (this.member) throw new TarFormatError(`tar member "${showPath(h.name)}" added before "${showPath(this.member.name)}" ended`);
    const header = encodeHeader({
      name: h.name,
      type: TYPES[h.kind],
      size: h.kind === 'file' ? h.size : 0,
      mode: h.mode,
      mtime: h.mtime,
      linkname: h.kind === 'symlink' ? (h.linkTarget ?? '') : undefined,
      pax: this.comment !== null ? { comment: this.comment } : undefined,
    });
    this.comment = null;
    if (h.kind === 'file') this.member = { name: h.name, size: h.size, written: 0 };
    return header;
  }

  data(chunk: Buffer): Buffer {
    const m = this.member;
    if (!m) throw new TarFormatError('tar data outside a member');
    m.written += chunk.length;
    if (m.written > m.size) throw new TarFormatError(`tar member "${showPath(m.name)}" got ${m.written} bytes but its header says ${m.size}`);
    return chunk;
  }

  /** Ends the open file member (null for directories and symlinks, and when no padding is due). */
  endEntry(): Buffer | null {
    const m = this.member;
    if (!m) return null;
    this.member = null;
    if (m.written !== m.size) {
      throw new TarFormatError(`tar member "${showPath(m.name)}" ended after ${m.written} of the ${m.size} bytes its header says`);
    }
    const pad = (BLOCK_SIZE - (m.size % BLOCK_SIZE)) % BLOCK_SIZE;
    return pad ? ZEROS.subarray(0, pad) : null;
  }

  end(): Buffer {
    if (this.member) throw new TarFormatError(`tar archive finalized inside member "${showPath(this.member.name)}"`);
    return ZEROS;
  }
}
