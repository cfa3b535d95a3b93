/**
 * WAL spool: where streamed WAL waits, as segment files, until the base
 * backup is over and the WAL archive can follow it in the member stream.
 *
 * In:  `begin(start, timeline, segmentSize)` with a segment-aligned start,
 *      then `write(dataStart, bytes)` for each XLogData message, in order,
 *      and `writeHistory(name, content)` for a timeline > 1.
 * Out: files `<dir>/<24 hex>` pre-sized to the segment size (so the tail of
 *      the last segment reads back as zeros, as pg_basebackup pads it), and a
 *      `summary()` listing each segment and whether it is complete.
 * Writes are synchronous positioned writes, like src/io/file-writer.ts: a
 *      ≤ 128 KiB write into the page cache costs less than a thread-pool
 *      round trip. Nothing is fsynced: the sink syncs the final copy.
 * Errors: ProtocolError when WAL arrives out of order (a gap or overlap
 *      would make a segment silently wrong); IoError naming the file.
 *      `remove()` deletes the spool directory and everything in it.
 */
import { closeSync, ftruncateSync, openSync, promises as fs, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ioError, ProtocolError } from '../errors';
import { formatLsn, walFileName } from '../lsn';

export interface SpoolSegment {
  /** `<timeline><log><seg>`, 24 uppercase hex digits. */
  name: string;
  path: string;
  /** Every byte of the segment was received (it gets a `.done`). */
  complete: boolean;
}

export interface SpoolSummary {
  dir: string;
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

export class WalSpool {
  private timeline = 0;
  private segmentSize = 0;
  private start = -1n;
  private pos = -1n;
  private fd: number | null = null;
  private current: SpoolSegment | null = null;
  private readonly segments: SpoolSegment[] = [];
  private history: { name: string; path: string } | null = null;
  private removed = false;

  private constructor(readonly dir: string) {}

  /** A new directory: mkdtemp `pgbb-wal-*` under `parent` (default os.tmpdir()). */
  static async create(parent?: string): Promise<WalSpool> {
    const base = parent ?? tmpdir();
    try {
      await fs.mkdir(base, { recursive: true, mode: 0o700 });
      return new WalSpool(await fs.mkdtemp(path.join(base, 'pgbb-wal-')));
    } catch (err) {
      throw ioError('could not create WAL spool directory in', base, err);
    }
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
        let written = 0;
        while (written < take) written += writeSync(fd, data, done + written, take - written, offset + written);
      } catch (err) {
        throw ioError('could not write WAL file', this.current!.path, err);
      }
      done += take;
      this.pos += BigInt(take);
      if (this.pos % size === 0n) {
        this.current!.complete = true;
        this.closeSegment();
      }
    }
  }

  /** Stores a timeline history file (`00000002.history`) as the server sent it. */
  async writeHistory(name: string, content: string): Promise<void> {
    const p = path.join(this.dir, name);
    try {
      await fs.writeFile(p, content, { mode: 0o600 });
    } catch (err) {
      throw ioError('could not write timeline history file', p, err);
    }
    this.history = { name, path: p };
  }

  /** Closes the open segment; what was received so far, in LSN order. */
  summary(): SpoolSummary {
    this.closeSegment();
    return {
      dir: this.dir,
      timeline: this.timeline,
      segmentSize: this.segmentSize,
      start: this.start,
      end: this.pos,
      segments: this.segments.map((s) => ({ ...s })),
      history: this.history,
      bytes: Number(this.pos - this.start),
    };
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    this.closeSegment();
    await fs.rm(this.dir, { recursive: true, force: true });
  }

  private openSegment(): number {
    const name = walFileName(this.timeline, this.pos, this.segmentSize);
    const p = path.join(this.dir, name);
    try {
      const fd = openSync(p, 'wx', 0o600);
      // Pre-sized (sparse): an unreceived tail reads back as zeros.
      ftruncateSync(fd, this.segmentSize);
      this.fd = fd;
    } catch (err) {
      throw ioError('could not create WAL file', p, err);
    }
    this.current = { name, path: p, complete: false };
    this.segments.push(this.current);
    return this.fd;
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
