/**
 * Writes members as tar bytes into a byte pipeline (e.g. [coalesce(),
 * process.stdout] or [zstdCompress(), file]).
 *
 *   add(header, cb?)      a member's header (./encode-header.ts: ustar, pax
 *                         for names or link targets over 100 bytes, raw bytes
 *                         of non-UTF-8 names kept); directories and symlinks
 *                         are complete at once
 *   write(chunk, cb)      the current file member's bytes, by reference
 *   endEntry(cb?)         its padding; the byte count must match the header
 *   finalize()            the end-of-archive marker (two zero blocks), then
 *                         waits until the last stage has everything
 *   destroy(err?)         tears the pipeline down
 *
 * Backpressure: bytes go into a Readable at the head of the pipeline; a
 * callback is called only once the Readable is under its highWaterMark
 * (immediately when it is), or with the pipeline's error if it fails first,
 * so nothing hangs on a dead stream. Callback style: the hot path (`write`)
 * costs no promise per chunk.
 * Errors: TarFormatError for a member whose data is longer or shorter than
 * its header says, data outside a member, a member added while another is
 * open; the pipeline's error (a file that cannot be written, …) as is.
 */
import { pipeline, Readable } from 'node:stream';
import type { Duplex, Writable } from 'node:stream';
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

type Callback = (err?: Error | null) => void;

const TYPES = { file: '0', symlink: '2', directory: '5' } as const;
const ZEROS = Buffer.alloc(2 * BLOCK_SIZE);
/** As tar-stream's pack: enough to keep the next stage busy, small enough not to matter. */
const HIGH_WATER_MARK = 64 * 1024;

export class TarWriter {
  private readonly out: Readable;
  private error: Error | null = null;
  /** A callback waiting for the Readable to drain. */
  private waiting: Callback | null = null;
  /** The open file member. */
  private member: { name: string; size: number; written: number } | null = null;
  /** A pax comment for the next member (the backup descriptor, see src/codec/backup-descriptor.ts). */
  private comment: string | null = null;
  private finalized = false;
  private readonly finished: Promise<void>;

  constructor(...outs: [...Duplex[], Writable]) {
    this.out = new Readable({ highWaterMark: HIGH_WATER_MARK, read: () => this.drained() });
    this.finished = new Promise((resolve, reject) => {
      pipeline([this.out, ...outs], (err: Error | null) => {
        if (err) {
          this.error ??= err;
          reject(err);
        } else resolve();
        this.drained();
      });
    });
    // Rejection is observed through finalize(); keep Node from reporting it early.
    this.finished.catch(() => {});
  }

  /** Attaches `comment` (a pax record extractors ignore) to the next member added. */
  commentNext(comment: string): void {
    this.comment = comment;
  }

  /** Starts a member; directories and symlinks are complete at once. */
  add(h: TarMemberHeader, callback: Callback = this.keep): void {
    if (this.error) return callback(this.error);
    if (this.member) return void this.fail(new TarFormatError(`tar member "${showPath(h.name)}" added before "${showPath(this.member.name)}" ended`), callback);
    let header: Buffer;
    try {
      header = encodeHeader({
        name: h.name,
        type: TYPES[h.kind],
        size: h.kind === 'file' ? h.size : 0,
        mode: h.mode,
        mtime: h.mtime,
        linkname: h.kind === 'symlink' ? (h.linkTarget ?? '') : undefined,
        pax: this.comment !== null ? { comment: this.comment } : undefined,
      });
    } catch (err) {
      return void this.fail(err as Error, callback);
    }
    this.comment = null;
    if (h.kind === 'file') this.member = { name: h.name, size: h.size, written: 0 };
    this.push(header, callback);
  }

  /** Writes member bytes (kept by reference); calls back once the pipeline can take more. */
  write(chunk: Buffer, callback: Callback): void {
    const m = this.member;
    if (this.error) return callback(this.error);
    if (!m) return void this.fail(new TarFormatError('tar data outside a member'), callback);
    m.written += chunk.length;
    if (m.written > m.size) {
      return void this.fail(new TarFormatError(`tar member "${showPath(m.name)}" got ${m.written} bytes but its header says ${m.size}`), callback);
    }
    this.push(chunk, callback);
  }

  /** Ends the open file member (no-op for directories and symlinks). */
  endEntry(callback: Callback = this.keep): void {
    const m = this.member;
    if (this.error) return callback(this.error);
    if (!m) return callback();
    this.member = null;
    if (m.written !== m.size) {
      return void this.fail(new TarFormatError(`tar member "${showPath(m.name)}" ended after ${m.written} of the ${m.size} bytes its header says`), callback);
    }
    const pad = (BLOCK_SIZE - (m.size % BLOCK_SIZE)) % BLOCK_SIZE;
    if (pad) this.push(ZEROS.subarray(0, pad), callback);
    else callback();
  }

  /** Writes the end-of-archive marker and waits until the last stage has everything. */
  async finalize(): Promise<void> {
    if (this.error) throw this.error;
    if (this.member) {
      const err = new TarFormatError(`tar archive finalized inside member "${showPath(this.member.name)}"`);
      this.fail(err, this.keep);
      throw err;
    }
    if (!this.finalized) {
      this.finalized = true;
      this.out.push(ZEROS);
      this.out.push(null);
    }
    await this.finished;
    if (this.error) throw this.error;
  }

  destroy(err?: Error): void {
    this.out.destroy(err);
  }

  /** Without a callback, an error waits for the next call (or finalize). */
  private readonly keep: Callback = () => {};

  private fail(err: Error, callback: Callback): void {
    this.error ??= err;
    this.out.destroy(err);
    callback(err);
  }

  private push(buf: Buffer, callback: Callback): void {
    if (this.out.push(buf)) return callback();
    // Only one caller waits at a time (the sink calls back before its next event).
    const prev = this.waiting;
    this.waiting = prev ? (e) => (prev(e), callback(e)) : callback;
  }

  private drained(): void {
    const cb = this.waiting;
    if (!cb) return;
    this.waiting = null;
    cb(this.error);
  }
}
