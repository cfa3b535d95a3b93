/**
 * The backup_manifest held until its size is known (a tar header needs it
 * before the bytes): the pieces as they came, by reference, up to
 * IN_MEMORY_BYTES; past that everything goes to a temporary file in
 * os.tmpdir() (created O_EXCL|O_NOFOLLOW, mode 0600) and is read back in
 * READ_BYTES pieces. The file is unlinked as soon as it is open, so nothing
 * is left behind even by a killed process; its handle is closed by
 * release() (at the end, and on destroy). A manifest past `maxBytes`
 * (LIMITS.manifest: what pgbb reads back) is refused as it grows.
 */
import { constants, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { IoError, ioError } from '../src/errors';
import { LIMITS } from '../src/io/read-limited';

export const IN_MEMORY_BYTES = 8 * 1024 * 1024;
const READ_BYTES = 256 * 1024;
const FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export class HeldManifest {
  private pieces: Buffer[] = [];
  private bytes = 0;
  private file: { fh: fs.FileHandle; path: string } | null = null;
  private released = false;

  constructor(private readonly maxBytes: number = LIMITS.manifest.maxBytes) {}

  get size(): number {
    return this.bytes;
  }

  /** Adds a piece; a promise only once the manifest has gone to disk. */
  add(piece: Buffer): Promise<void> | void {
    if (this.released) throw new Error('manifest already released');
    if (this.bytes + piece.length > this.maxBytes) {
      throw new IoError(`backup_manifest grows past ${this.maxBytes} bytes, the most a manifest can hold: refusing to write it`);
    }
    this.bytes += piece.length;
    if (!this.file && this.bytes <= IN_MEMORY_BYTES) {
      this.pieces.push(piece);
      return;
    }
    return this.spill(piece);
  }

  private async spill(piece: Buffer): Promise<void> {
    const at = this.bytes - piece.length;
    if (!this.file) {
      const path = join(tmpdir(), `pgbb-manifest-${process.pid}-${randomBytes(6).toString('hex')}`);
      let fh: fs.FileHandle;
      try {
        fh = await fs.open(path, FLAGS, 0o600);
      } catch (err) {
        throw ioError('could not create a temporary file for the manifest', path, err);
      }
      this.file = { fh, path };
      await fs.unlink(path).catch(() => {});
      if (this.released) return this.release();
      const held = this.pieces;
      this.pieces = [];
      await this.writeAt(Buffer.concat(held), 0);
    }
    await this.writeAt(piece, at);
  }

  private async writeAt(buf: Buffer, position: number): Promise<void> {
    const f = this.file!;
    try {
      let done = 0;
      while (done < buf.length) done += (await f.fh.write(buf, done, buf.length - done, position + done)).bytesWritten;
    } catch (err) {
      throw ioError('could not write the manifest to a temporary file', f.path, err);
    }
  }

  /** The manifest's bytes in order: the pieces, or the file in READ_BYTES pieces. */
  async *read(): AsyncGenerator<Buffer> {
    if (!this.file) {
      yield* this.pieces;
      return;
    }
    const f = this.file;
    for (let at = 0; at < this.bytes; ) {
      const buf = Buffer.allocUnsafe(Math.min(READ_BYTES, this.bytes - at));
      let got: number;
      try {
        got = (await f.fh.read(buf, 0, buf.length, at)).bytesRead;
      } catch (err) {
        throw ioError('could not read the manifest back from a temporary file', f.path, err);
      }
      if (got === 0) throw ioError('could not read the manifest back from a temporary file', f.path, new Error('it is shorter than written'));
      at += got;
      yield got === buf.length ? buf : buf.subarray(0, got);
    }
  }

  /** Drops the pieces and closes the file (already unlinked). */
  async release(): Promise<void> {
    this.released = true;
    this.pieces = [];
    const f = this.file;
    this.file = null;
    if (f) await f.fh.close().catch(() => {});
  }
}
