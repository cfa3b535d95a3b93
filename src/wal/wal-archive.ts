/**
 * The `pg_wal` archive of a streamed backup, read back from the WAL spool as
 * member events — what `pg_basebackup -X stream` puts in `pg_wal/` (plain)
 * or `pg_wal.tar` (tar).
 *
 * In:  a SpoolSummary (src/wal/wal-spool.ts), after the spool's finish().
 * Out: an async generator of events, pulled one at a time so the consumer's
 *      pace sets the reads (backpressure without buffering):
 *        archive {kind: 'wal', name: 'pg_wal', paced?, writtenIn?}
 *                                              writtenIn: the spool was the
 *                                              target's pg_wal/ (in place)
 *        archive_status/                       directory
 *        <segment>                             whole segment, zero-padded
 *        archive_status/<segment>.done         only for complete segments
 *        <tli>.history, archive_status/<tli>.history.done   timeline > 1
 *        archive-end
 *      Files are read `readSize` bytes at a time into fresh buffers (sinks may
 *      hold chunks until they batch a write) and handed out as `data` events
 *      of at most `chunkSize` bytes, subarrays of those buffers; with
 *      `recycle`, into recycled slabs instead, a read at a time.
 * Errors: IoError naming the spool file that could not be read, or that
 *      came back shorter than its segment.
 */
import { constants, promises as fs } from 'node:fs';
import type { BackupEvent, EntryEvent } from '../events';
import { ioError, IoError } from '../errors';
import type { SpoolSummary } from './wal-spool';
import { retain, SlabReader } from '../io/slab-pool';

export interface WalArchiveOptions {
  /** Largest data event, bytes (default 32 KiB, as the server sends archives). */
  chunkSize?: number;
  /** Bytes per file read (default 1 MiB). */
  readSize?: number;
  /** mtime of every member (default now). */
  mtime?: Date;
  /** The WAL drew from the backup's rate limiter as it arrived (ArchiveEvent.paced). */
  paced?: boolean;
  /**
   * Read into recycled slabs (src/io/slab-pool.ts) instead of fresh buffers:
   * each chunk is handed out retained, for the stage that writes it to give
   * back. Only where every stage is pgbb's (ReplicationSourceOptions.recycleBuffers).
   */
  recycle?: boolean;
}

export async function* walArchiveEvents(spool: SpoolSummary, opts: WalArchiveOptions = {}): AsyncGenerator<BackupEvent> {
  const slabs = opts.recycle ? new SlabReader() : null;
  try {
    yield* archiveEvents(spool, opts, slabs);
  } finally {
    slabs?.finish();
  }
}

async function* archiveEvents(spool: SpoolSummary, opts: WalArchiveOptions, slabs: SlabReader | null): AsyncGenerator<BackupEvent> {
  const chunkSize = opts.chunkSize ?? 32 * 1024;
  const readSize = Math.max(chunkSize, opts.readSize ?? 1024 * 1024);
  const mtime = opts.mtime ?? new Date();
  const file = (p: string, size: number): EntryEvent => ({ type: 'entry', path: p, kind: 'file', size, mode: 0o600, mtime });

  // In place (a plain target's pg_wal/), the files are read back for observers only: see ArchiveEvent.writtenIn.
  yield {
    type: 'archive',
    kind: 'wal',
    name: 'pg_wal',
    location: '',
    ...(opts.paced ? { paced: true } : {}),
    ...(spool.inPlace ? { writtenIn: spool.dir } : {}),
  };
  yield { type: 'entry', path: 'archive_status', kind: 'directory', size: 0, mode: 0o700, mtime };
  yield { type: 'entry-end' };
  for (const seg of spool.segments) {
    yield file(seg.name, spool.segmentSize);
    yield* fileData(seg.path, spool.segmentSize, chunkSize, readSize, slabs);
    yield { type: 'entry-end' };
    if (seg.complete) {
      yield file(`archive_status/${seg.name}.done`, 0);
      yield { type: 'entry-end' };
    }
  }
  if (spool.history) {
    const size = await fileSize(spool.history.path);
    yield file(spool.history.name, size);
    yield* fileData(spool.history.path, size, chunkSize, readSize, slabs);
    yield { type: 'entry-end' };
    yield file(`archive_status/${spool.history.name}.done`, 0);
    yield { type: 'entry-end' };
  }
  yield { type: 'archive-end' };
}

async function fileSize(p: string): Promise<number> {
  try {
    return (await fs.stat(p)).size;
  } catch (err) {
    throw ioError('could not stat WAL spool file', p, err);
  }
}

/**
 * A spool file's bytes. Opened without following links: the spool's files are
 * pgbb's own, and a link in their place was not made by pgbb. Read
 * asynchronously, one read per pull: reading synchronously (tried, 2026-12-07)
 * saved ~15 ms of a backup's tail but let a stage that throws inside its
 * _transform escape the pipeline from Node's own flow() instead of failing it.
 */
async function* fileData(p: string, size: number, chunkSize: number, readSize: number, slabs: SlabReader | null): AsyncGenerator<BackupEvent> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(p, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw ioError('could not open WAL spool file', p, err);
  }
  try {
    let offset = 0;
    while (slabs && offset < size) {
      const into = slabs.next();
      const n = await readAt(fh, p, into, 0, Math.min(into.length, size - offset), offset);
      if (n === 0) throw new IoError(`WAL spool file "${p}" ended at ${offset} bytes, expected ${size}`);
      const got = slabs.got(n);
      for (let at = 0; at < n; at += chunkSize) {
        const chunk = got.subarray(at, Math.min(at + chunkSize, n));
        // Held before it is handed on: the next read may move to a new slab.
        retain(chunk);
        yield { type: 'data', offset: offset + at, chunk };
      }
      offset += n;
    }
    while (offset < size) {
      const buf = Buffer.allocUnsafe(Math.min(readSize, size - offset));
      let got = 0;
      while (got < buf.length) {
        const n = await readAt(fh, p, buf, got, buf.length - got, offset + got);
        if (n === 0) throw new IoError(`WAL spool file "${p}" ended at ${offset + got} bytes, expected ${size}`);
        got += n;
      }
      for (let at = 0; at < buf.length; at += chunkSize) {
        yield { type: 'data', offset: offset + at, chunk: buf.subarray(at, Math.min(at + chunkSize, buf.length)) };
      }
      offset += buf.length;
    }
  } finally {
    await fh.close().catch(() => {});
  }
}

async function readAt(fh: fs.FileHandle, p: string, into: Uint8Array, at: number, length: number, position: number): Promise<number> {
  try {
    return (await fh.read(into, at, length, position)).bytesRead;
  } catch (err) {
    throw ioError('could not read WAL spool file', p, err);
  }
}
