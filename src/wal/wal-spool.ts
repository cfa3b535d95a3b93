/**
 * WAL spool: where streamed WAL is written as it arrives, as segment files.
 *
 * Two places, one layout (pg_receivewal's): `<dir>/<24 hex>.partial` while a
 * segment fills, pre-sized to the segment size (so an unreceived tail reads
 * back as zeros, as pg_basebackup pads it), renamed to `<24 hex>` once
 * complete, with an empty `<dir>/archive_status/<24 hex>.done` beside it.
 *   WalSpool.inPlace(dir)     `dir` is the backup's own `pg_wal/` (created if
 *                             missing; refused if it is not a real directory):
 *                             each WAL byte is written once, where it stays.
 *   WalSpool.create(parent)   a new directory `<parent>/pgbb-wal-<maker>-XXXXXX` (a tar
 *                             target, or a place for `-D -`), read back into
 *                             the archive and removed after.
 * In:  `begin(start, timeline, segmentSize)` with a segment-aligned start,
 *      then `write(dataStart, bytes)` for each XLogData message, in order,
 *      and `writeHistory(name, content)` for a timeline > 1; `finish()` once
 *      streaming stopped: the last, incomplete segment gets its final name
 *      too (restore needs it), without a `.done`.
 * Out: `summary()` lists each segment (final path) and whether it is complete.
 * Files are created O_EXCL|O_NOFOLLOW after unlinking a leftover of the same
 *      name (a killed run's `.partial`). Writes are synchronous positioned
 *      writes, like src/io/file-writer.ts: WAL arrives in ≤ 128 KiB messages,
 *      far slower than base backup data, and a write into the page cache
 *      costs less than a thread-pool round trip. Page-aligned stretches of
 *      zeros are not written (the file is new and pre-sized: they read back
 *      as zero), so a switched segment's padding costs neither writes nor
 *      disk. Nothing is fsynced: the sink syncs the backup.
 * Room: before each segment, its size must be free on the filesystem; a
 *      spool (not in place) on a memory-backed filesystem is also held to
 *      spoolBudget() (src/wal/spool-place.ts), so it fails with a clear
 *      message instead of filling RAM.
 * Cleanup: `remove()` deletes what the spool made — the whole directory of
 *      a spool; in place, every file it created (a name that existed before
 *      and was replaced by the same WAL, streamed further, stays), and the
 *      directories it created if empty. It is synchronous, so that it can
 *      run inside a stream's destroy() and the spool is gone before any
 *      pipeline settles. `keep()` (in place, once the backup has its WAL)
 *      makes remove() a no-op.
 * Errors: ProtocolError when WAL arrives out of order (a gap or overlap
 *      would make a segment silently wrong); IoError naming the file.
 */
import { closeSync, ftruncateSync, mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { ioError, IoError, ProtocolError } from '../errors';
import { formatLsn, walFileName } from '../codec/lsn';
import { checkRoom, defaultSpoolParent, memoryFilesystem, spoolBudget } from './spool-place';
import { OwnFiles } from './own-files';
import { writeAllSync } from '../io/write-all';
import { makeTempDir } from '../io/temp-dirs';

export interface SpoolSegment {
  /** `<timeline><log><seg>`, 24 uppercase hex digits. */
  name: string;
  /** Where the segment is (its final name once finish() ran or it is complete). */
  path: string;
  /** Every byte of the segment was received (it gets a `.done`). */
  complete: boolean;
}

export interface SpoolSummary {
  dir: string;
  /** True when `dir` is the backup's own pg_wal: the files are already in place. */
  inPlace: boolean;
  timeline: number;
  segmentSize: number;
  /** First LSN streamed (a segment boundary). */
  start: bigint;
  /** LSN just past the last byte received. */
  end: bigint;
  segments: SpoolSegment[];
  history: { name: string; path: string } | null;
  /** WAL bytes received. */
  bytes: number;
}

export const STATUS_DIR = 'archive_status';
const EMPTY = Buffer.alloc(0);
/** WAL page size (XLOG_BLCKSZ): the unit in which zero stretches are left unwritten. */
const PAGE = 8192;
const ZERO_PAGE = Buffer.alloc(PAGE);

/**
 * Writes data[from, from+length) at file offset `at`, leaving out the
 * page-aligned stretches that are all zero: a segment file is new and
 * pre-sized, so they already read back as zero. What a switch leaves of a
 * segment (pg_switch_wal, the end of every backup) arrives as up to a whole
 * segment of zeros, which would otherwise be written and allocated on disk.
 */
function writeNonZero(fd: number, data: Buffer, from: number, length: number, at: number): void {
  const end = from + length;
  let runStart = -1;
  let i = from;
  while (i < end) {
    const next = Math.min(end, i + PAGE - ((at + i - from) % PAGE));
    const zero = data.compare(ZERO_PAGE, 0, next - i, i, next) === 0;
    if (!zero && runStart < 0) runStart = i;
    if (zero && runStart >= 0) {
      writeAllSync(fd, data, runStart, i - runStart, at + runStart - from);
      runStart = -1;
    }
    i = next;
  }
  if (runStart >= 0) writeAllSync(fd, data, runStart, end - runStart, at + runStart - from);
}

export class WalSpool {
  private timeline = 0;
  private segmentSize = 0;
  private start = -1n;
  private pos = -1n;
  private fd: number | null = null;
  private current: SpoolSegment | null = null;
  private readonly segments: SpoolSegment[] = [];
  private history: { name: string; path: string } | null = null;
  /** What this spool created, so that remove() takes back exactly that (in place). */
  private readonly files: OwnFiles;
  private removed = false;
  private readonly budget: number;

  private constructor(
    readonly dir: string,
    readonly inPlace: boolean,
    maxBytes?: number,
    groupReadable = false,
  ) {
    this.files = new OwnFiles(groupReadable ? { dir: 0o750, file: 0o640 } : undefined);
    this.budget = maxBytes ?? (inPlace ? Infinity : spoolBudget(dir));
  }

  /** Writes into `walDir`, the backup's own pg_wal/, where the WAL stays: with the cluster's modes (group-readable: 0750/0640, as pg_basebackup). */
  static inPlace(walDir: string, groupReadable = false): WalSpool {
    const s = new WalSpool(path.resolve(walDir), true, undefined, groupReadable);
    s.files.ensureDir(s.dir);
    s.files.ensureDir(path.join(s.dir, STATUS_DIR));
    return s;
  }

  /**
   * A new directory `<parent>/pgbb-wal-XXXXXX` (parent created if missing;
   * default: defaultSpoolParent()). `maxBytes`: the most it may hold
   * (default spoolBudget(): unbounded on disk).
   */
  static create(parent = defaultSpoolParent(), opts: { maxBytes?: number } = {}): WalSpool {
    try {
      mkdirSync(parent, { recursive: true, mode: 0o700 });
      // A spool that a killed run left in the same parent goes first (src/io/temp-dirs.ts).
      const s = new WalSpool(makeTempDir(parent, 'wal'), false, opts.maxBytes);
      mkdirSync(path.join(s.dir, STATUS_DIR), { mode: 0o700 });
      return s;
    } catch (err) {
      throw ioError('could not create WAL spool directory in', parent, err);
    }
  }

  /** 'tmpfs' or 'ramfs' when the spool lives in memory, else null. */
  get memoryBacked(): string | null {
    return memoryFilesystem(this.dir);
  }

  begin(start: bigint, timeline: number, segmentSize: number): void {
    if (start % BigInt(segmentSize) !== 0n) throw new ProtocolError(`WAL streaming must start at a segment boundary, not ${formatLsn(start)}`);
    this.start = this.pos = start;
    this.timeline = timeline;
    this.segmentSize = segmentSize;
  }

  /** LSN just past the last byte written. */
  get position(): bigint {
    return this.pos;
  }

  /** WAL bytes written since begin(). */
  get received(): number {
    return this.pos < 0n ? 0 : Number(this.pos - this.start);
  }

  /** End of the last complete segment (the start before any is complete). */
  get completedUpTo(): bigint {
    return this.pos - (this.pos % BigInt(this.segmentSize));
  }

  /** Writes WAL bytes that start at `dataStart`, which must be where the last write ended. */
  write(dataStart: bigint, data: Buffer): void {
    if (this.removed) return;
    if (this.pos < 0n) throw new ProtocolError('WAL data before streaming began');
    if (dataStart !== this.pos) {
      throw new ProtocolError(`WAL stream jumped: got data at ${formatLsn(dataStart)}, expected ${formatLsn(this.pos)}`);
    }
    const size = BigInt(this.segmentSize);
    let done = 0;
    while (done < data.length) {
      const offset = Number(this.pos % size);
      const take = Math.min(data.length - done, this.segmentSize - offset);
      const fd = this.fd ?? this.openSegment();
      try {
        writeNonZero(fd, data, done, take, offset);
      } catch (err) {
        throw ioError('could not write WAL file', this.current!.path, err);
      }
      done += take;
      this.pos += BigInt(take);
      if (this.pos % size === 0n) this.completeSegment();
    }
  }

  /** Stores a timeline history file (`00000002.history`) as the server sent it, marked done. */
  writeHistory(name: string, content: string): void {
    const p = path.join(this.dir, name);
    this.files.create(p, Buffer.from(content));
    this.files.create(path.join(this.dir, STATUS_DIR, `${name}.done`), EMPTY);
    this.history = { name, path: p };
  }

  /** Streaming is over: closes the open segment and gives it its final name (its tail stays zero). */
  finish(): void {
    this.closeSegment();
    const last = this.current;
    if (last && !last.complete && last.path.endsWith('.partial')) last.path = this.files.rename(last.path, path.join(this.dir, last.name));
  }

  /** What was received so far, in LSN order. */
  summary(): SpoolSummary {
    return {
      dir: this.dir,
      inPlace: this.inPlace,
      timeline: this.timeline,
      segmentSize: this.segmentSize,
      start: this.start,
      end: this.pos,
      segments: this.segments.map((s) => ({ ...s })),
      history: this.history,
      bytes: Number(this.pos - this.start),
    };
  }

  /** In place: the WAL is now part of the backup, remove() leaves it. */
  keep(): void {
    this.closeSegment();
    this.removed = true;
  }

  /**
   * Synchronous, so that it can run inside a stream's destroy(): the spool is
   * gone before any pipeline built on the source settles. Later writes are
   * dropped.
   */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    try {
      this.closeSegment();
    } catch {
      // Removed anyway.
    }
    if (!this.inPlace) {
      rmSync(this.dir, { recursive: true, force: true });
      return;
    }
    this.files.removeAll();
  }

  private openSegment(): number {
    const name = walFileName(this.timeline, this.pos, this.segmentSize);
    const p = path.join(this.dir, `${name}.partial`);
    checkRoom(this.dir, this.segmentSize);
    const held = this.segments.length * this.segmentSize;
    if (held + this.segmentSize > this.budget) {
      const where = this.memoryBacked ? ` is on a memory-backed filesystem (${this.memoryBacked}) and` : '';
      throw new IoError(
        `WAL spool "${this.dir}"${where} would grow past its limit of ${(this.budget / 1048576).toFixed(1)} MiB: ` +
          `put it on disk (--wal-spool DIR with -D -, or a target on disk)`,
      );
    }
    const fd = this.files.create(p, null);
    this.fd = fd;
    this.current = { name, path: p, complete: false };
    this.segments.push(this.current);
    try {
      // Pre-sized (sparse): an unreceived tail reads back as zeros.
      ftruncateSync(fd, this.segmentSize);
    } catch (err) {
      throw ioError('could not create WAL file', p, err);
    }
    return fd;
  }

  private completeSegment(): void {
    const seg = this.current!;
    seg.complete = true;
    this.closeSegment();
    seg.path = this.files.rename(seg.path, path.join(this.dir, seg.name));
    this.files.create(path.join(this.dir, STATUS_DIR, `${seg.name}.done`), EMPTY);
  }

  private closeSegment(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      closeSync(fd);
    } catch (err) {
      throw ioError('could not close WAL file', this.current!.path, err);
    }
  }
}
