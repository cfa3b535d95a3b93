/**
 * ScratchFile: a temporary file for bytes that would otherwise make memory
 * grow with a backup's file count (the chunk map's per-file records). It is
 * created on the first append in os.tmpdir() (O_EXCL|O_NOFOLLOW, mode 0600)
 * and unlinked as soon as it is open, so nothing is left behind even by a
 * killed process. Calls are synchronous because its callers are synchronous
 * codecs; each moves a whole block (hundreds of KiB), a few dozen times per
 * 100,000 files.
 *
 *   append(bytes) → offset     written at the end; refused past maxBytes
 *   read(offset, length)       a new buffer; only what was appended
 *   overwrite(offset, bytes)   rewrites what was appended (a page changed)
 *   close()                    idempotent; later calls fail with a clear error
 */
import { closeSync, constants, openSync, readSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { IoError, ioError } from '../errors';
import { writeAllSync } from './write-all';

const FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export class ScratchFile {
  private fd = -1;
  private end = 0;
  private closed = false;

  /** `what` names the contents in messages; `maxBytes` bounds the file (disk is finite too). */
  constructor(
    private readonly what: string,
    private readonly maxBytes = 16 * 1024 ** 3,
    private readonly dir = tmpdir(),
  ) {}

  /** Bytes appended so far. */
  get size(): number {
    return this.end;
  }

  append(bytes: Uint8Array): number {
    this.check();
    if (this.end + bytes.length > this.maxBytes) throw new IoError(`the temporary file for ${this.what} would grow past ${this.maxBytes} bytes`);
    if (this.fd < 0) this.open();
    const at = this.end;
    try {
      writeAllSync(this.fd, bytes, 0, bytes.length, at);
    } catch (err) {
      throw ioError(`could not write the temporary file for ${this.what}`, this.dir, err);
    }
    this.end += bytes.length;
    return at;
  }

  /** Rewrites bytes appended before (a page read back and changed). */
  overwrite(offset: number, bytes: Uint8Array): void {
    this.check();
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + bytes.length > this.end) {
      throw new IoError(`write of ${bytes.length} bytes at ${offset} is outside the temporary file for ${this.what} (${this.end} bytes)`);
    }
    try {
      writeAllSync(this.fd, bytes, 0, bytes.length, offset);
    } catch (err) {
      throw ioError(`could not write the temporary file for ${this.what}`, this.dir, err);
    }
  }

  /** `length` bytes at `offset`: into `into` when given (its first `length` bytes; the same buffer back), else a new buffer. */
  read(offset: number, length: number, into?: Buffer): Buffer {
    this.check();
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.end) {
      throw new IoError(`read of ${length} bytes at ${offset} is outside the temporary file for ${this.what} (${this.end} bytes)`);
    }
    if (into && into.length < length) throw new IoError(`read of ${length} bytes into a buffer of ${into.length}`);
    const buf = into ?? Buffer.allocUnsafe(length);
    let done = 0;
    try {
      while (done < length) {
        const n = readSync(this.fd, buf, done, length - done, offset + done);
        if (n === 0) throw new Error('unexpected end of file');
        done += n;
      }
    } catch (err) {
      throw ioError(`could not read the temporary file for ${this.what}`, this.dir, err);
    }
    return buf;
  }

  close(): void {
    this.closed = true;
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    closeSync(fd);
  }

  private check(): void {
    if (this.closed) throw new IoError(`the temporary file for ${this.what} was already released`);
  }

  private open(): void {
    const path = join(this.dir, `pgbb-scratch-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      this.fd = openSync(path, FLAGS, 0o600);
    } catch (err) {
      throw ioError(`could not create a temporary file for ${this.what}`, path, err);
    }
    try {
      unlinkSync(path);
    } catch (err) {
      this.close();
      throw ioError(`could not unlink the temporary file for ${this.what}`, path, err);
    }
  }
}
