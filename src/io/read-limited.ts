/**
 * Reading files pgbb did not write (a backup's backup_label, manifest, chunk
 * map, a lock file, PG_VERSION, postgresql.auto.conf, a password file) as if
 * each could be hostile or a mistake: a symlink planted in its place, a FIFO
 * (an ordinary open would block forever, and SIGTERM with it), a device
 * (/dev/zero never ends), or a file far larger than such a file can be.
 *
 *   readLimited(file, { maxBytes, what })   → Buffer, or null when missing
 *   readLimitedSync(...)                    the same, for the password file
 *   openRegular(file, what)                 → a FileHandle on a regular file
 *   openRegularSync(file, what)             → a descriptor, the same checks
 *
 * Every open is O_NOFOLLOW (a link in the last component fails with ELOOP)
 * and O_NONBLOCK (a FIFO opens at once instead of waiting for a writer); the
 * handle is then fstat'ed and refused unless it is a regular file. Reads stop
 * at `maxBytes + 1`: a file that grows while read (or whose size lied) is
 * refused just the same, and memory never exceeds the cap.
 *
 * Errors: IoError naming the file and, for the cap, the limit; ENOENT is
 * null for readLimited (callers decide whether the file was required).
 */
import { closeSync, constants, fstatSync, openSync, promises as fs, readSync } from 'node:fs';
import { IoError, ioError } from '../errors';
import { fsPath, showPath } from '../codec/path-bytes';

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export interface ReadLimits {
  /** Refuse the file when it holds more than this many bytes. */
  maxBytes: number;
  /** What the file is, for messages: "backup_label", "chunk map", … */
  what: string;
}

function kindName(st: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function notRegular(file: string, what: string, st: Parameters<typeof kindName>[0]): IoError {
  return new IoError(`${what} "${showPath(file)}" is ${kindName(st)}, not a regular file`);
}

function tooLarge(file: string, what: string, maxBytes: number): IoError {
  return new IoError(`${what} "${showPath(file)}" is larger than ${maxBytes} bytes, the most it can hold: refusing to read it`);
}

function openError(file: string, what: string, err: unknown): IoError {
  // O_NOFOLLOW on a symlink: ELOOP. Say what it means.
  if ((err as NodeJS.ErrnoException).code === 'ELOOP') return new IoError(`${what} "${showPath(file)}" is a symbolic link: refusing to follow it`, { cause: err });
  return ioError(`could not open ${what}`, showPath(file), err);
}

/** Opens `file` for reading without following a link or blocking; only a regular file is accepted. */
export async function openRegular(file: string, what: string): Promise<fs.FileHandle> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(fsPath(file), OPEN_FLAGS);
  } catch (err) {
    throw openError(file, what, err);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegular(file, what, st);
  } catch (err) {
    await fh.close().catch(() => {});
    throw err instanceof IoError ? err : ioError(`could not stat ${what}`, showPath(file), err);
  }
  return fh;
}

/**
 * openRegular, synchronously, as a bare descriptor (the caller closes it with
 * closeSync): for many small files, where a FileHandle and a promise per call
 * are native memory left for a full GC to free.
 */
export function openRegularSync(file: string, what: string): number {
  let fd: number;
  try {
    fd = openSync(fsPath(file), OPEN_FLAGS);
  } catch (err) {
    throw openError(file, what, err);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notRegular(file, what, st);
  } catch (err) {
    closeSync(fd);
    throw err instanceof IoError ? err : ioError(`could not stat ${what}`, showPath(file), err);
  }
  return fd;
}

/** The whole of a small file, or null when it does not exist. */
export async function readLimited(file: string, limits: ReadLimits): Promise<Buffer | null> {
  let fh: fs.FileHandle;
  try {
    fh = await openRegular(file, limits.what);
  } catch (err) {
    if (((err as IoError).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return null;
    throw err;
  }
  try {
    return await readOpened(fh, file, limits);
  } finally {
    await fh.close().catch(() => {});
  }
}

/**
 * The whole of a file opened by openRegular (the caller keeps and closes the
 * handle), capped by fstat and by what is read: a file growing past the cap
 * while read is refused too.
 */
export async function readOpened(fh: fs.FileHandle, file: string, limits: ReadLimits): Promise<Buffer> {
  try {
    const st = await fh.stat();
    if (st.size > limits.maxBytes) throw tooLarge(file, limits.what, limits.maxBytes);
    // Sized by what fstat says, grown only up to the cap: a lying size costs nothing.
    let buf = Buffer.allocUnsafe(Math.min(limits.maxBytes + 1, Math.max(st.size + 1, 4096)));
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        if (len > limits.maxBytes) throw tooLarge(file, limits.what, limits.maxBytes);
        const bigger = Buffer.allocUnsafe(Math.min(limits.maxBytes + 1, buf.length * 2));
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, len, buf.length - len, len);
      if (bytesRead === 0) break;
      len += bytesRead;
    }
    if (len > limits.maxBytes) throw tooLarge(file, limits.what, limits.maxBytes);
    return len === buf.length ? buf : Buffer.from(buf.subarray(0, len));
  } catch (err) {
    throw err instanceof IoError ? err : ioError(`could not read ${limits.what}`, showPath(file), err);
  }
}

/**
 * A file read in pieces of at most `pieceBytes` (the consumer's pace, never
 * whole), nothing when it does not exist; opened and capped as readLimited
 * opens and caps (by fstat, and by what is read: a file growing past the
 * cap while read is refused too).
 */
export async function* readLimitedPieces(file: string, limits: ReadLimits, pieceBytes: number): AsyncGenerator<Buffer> {
  let fh: fs.FileHandle;
  try {
    fh = await openRegular(file, limits.what);
  } catch (err) {
    if (((err as IoError).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return;
    throw err;
  }
  try {
    if ((await fh.stat()).size > limits.maxBytes) throw tooLarge(file, limits.what, limits.maxBytes);
    for (let at = 0; ; ) {
      const buf = Buffer.allocUnsafe(pieceBytes);
      let got: number;
      try {
        got = (await fh.read(buf, 0, buf.length, at)).bytesRead;
      } catch (err) {
        throw ioError(`could not read ${limits.what}`, showPath(file), err);
      }
      if (got === 0) return;
      at += got;
      if (at > limits.maxBytes) throw tooLarge(file, limits.what, limits.maxBytes);
      yield got === buf.length ? buf : buf.subarray(0, got);
    }
  } finally {
    await fh.close().catch(() => {});
  }
}

/** readLimited, synchronously (for the password and certificate files, read while a connection is set up). */
export function readLimitedSync(file: string, limits: ReadLimits): Buffer | null {
  let fd: number;
  try {
    fd = openRegularSync(file, limits.what);
  } catch (err) {
    if (((err as IoError).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return null;
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (st.size > limits.maxBytes) throw tooLarge(file, limits.what, limits.maxBytes);
    let buf = Buffer.allocUnsafe(Math.min(limits.maxBytes + 1, Math.max(st.size + 1, 4096)));
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        const bigger = Buffer.allocUnsafe(Math.min(limits.maxBytes + 1, buf.length * 2));
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const n = readSync(fd, buf, len, buf.length - len, len);
      if (n === 0) break;
      len += n;
      if (len > limits.maxBytes) throw tooLarge(file, limits.what, limits.maxBytes);
    }
    return Buffer.from(buf.subarray(0, len));
  } catch (err) {
    throw err instanceof IoError ? err : ioError(`could not read ${limits.what}`, showPath(file), err);
  } finally {
    closeSync(fd);
  }
}

/** Caps for the small files a backup holds: far above anything PostgreSQL or pgbb writes, far below what hurts. */
export const LIMITS = {
  backupLabel: { maxBytes: 64 * 1024, what: 'backup_label' },
  pgVersion: { maxBytes: 64, what: 'PG_VERSION' },
  pgControl: { maxBytes: 64 * 1024, what: 'pg_control' },
  tablespaceMap: { maxBytes: 16 * 1024 * 1024, what: 'tablespace_map' },
  lockFile: { maxBytes: 4096, what: 'lock file' },
  autoConf: { maxBytes: 16 * 1024 * 1024, what: 'postgresql.auto.conf' },
  passfile: { maxBytes: 16 * 1024 * 1024, what: 'password file' },
  refreshJournal: { maxBytes: 1024 * 1024 * 1024, what: 'refresh journal' },
  /**
   * A manifest line is ~150 bytes per file: 500 MiB is over three million
   * files. Below V8's longest string (~512 MiB), which the manifest parser
   * makes of it.
   */
  manifest: { maxBytes: 500 * 1024 * 1024, what: 'backup_manifest' },
  /** 20 bytes per 1 MiB chunk (more at 64 KiB): 1 GiB maps petabytes. */
  chunkMap: { maxBytes: 1024 * 1024 * 1024, what: 'chunk map' },
} as const satisfies Record<string, ReadLimits>;
