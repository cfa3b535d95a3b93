/**
 * Reads a plain backup directory (what `pgbb backup -F plain` and
 * `pg_basebackup -Fp` write) back into the member stream, so that restore
 * and verify work on it like on a live backup:
 *
 *   start (pg_control, backup_label, PG_VERSION) → base archive (the tree,
 *   pg_tblspc/<oid> as symlinks) → one archive per tablespace (the symlink's
 *   target) → manifest (backup_manifest) → end (the manifest's end LSN)
 *
 * An async generator under Readable.from: one file chunk is read only when the
 * consumer wants it. Files are read in 256 KiB pieces into fresh buffers
 * (events may be held downstream); one of a piece or less with synchronous
 * calls (readSmallFile), larger ones through a FileHandle. Errors name the file.
 *
 * Names are read as bytes and carried as pgbb path strings
 * (src/codec/path-bytes.ts), so a file whose name is not UTF-8 (an admin's stray
 * file, say) is read, restored and listed in the manifest under its own bytes.
 */
import { closeSync, promises as fs, readSync } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { BackupEvent, StartEvent } from '../events';
import { ioError, PgbbError } from '../errors';
import { LIMITS, openRegular, openRegularSync, readLimited, readLimitedPieces, type ReadLimits } from '../io/read-limited';
import { walkTree } from '../io/walk-tree';
import { parseWalRanges } from '../codec/wal-ranges';
import { formatLsn } from '../codec/lsn';
import { parseControlFile } from '../codec/pg-control';
import { fsPath, pathFromBytes, showPath } from '../codec/path-bytes';
import { parseBackupLabel } from '../codec/backup-label';
import { versionOfMajor } from '../codec/server-version';

const CHUNK = 256 * 1024;

/** Files in a backup that are not part of the data directory's content. */
const NOT_DATA = new Set(['backup_manifest']);

export async function readPlainStart(dir: string): Promise<{ start: StartEvent }> {
  // Capped, not following links, not blocking on a FIFO: a backup directory may be anyone's.
  const need = async (rel: string, limits: ReadLimits) => {
    const b = await readLimited(path.join(dir, rel), limits);
    if (!b) throw new PgbbError('not_a_backup', `"${dir}" is not a backup: ${rel} is missing`);
    return b;
  };
  const control = parseControlFile(await need('global/pg_control', LIMITS.pgControl), path.join(dir, 'global/pg_control'));
  const label = parseBackupLabel((await need('backup_label', LIMITS.backupLabel)).toString('utf8'), path.join(dir, 'backup_label'));
  const major = parseInt((await need('PG_VERSION', LIMITS.pgVersion)).toString('utf8'), 10);
  const tablespaces = [];
  let links: string[] = [];
  try {
    links = (await fs.readdir(path.join(dir, 'pg_tblspc'))).filter((n) => /^\d+$/.test(n)).sort();
  } catch {
    links = [];
  }
  for (const oid of links) {
    const link = path.join(dir, 'pg_tblspc', oid);
    const st = await fs.lstat(link);
    if (st.isSymbolicLink()) tablespaces.push({ oid, location: pathFromBytes(await fs.readlink(link, { encoding: 'buffer' })), size: null });
  }
  tablespaces.push({ oid: null, location: '', size: null });
  return {
    start: {
      type: 'start',
      serverVersion: versionOfMajor(major),
      systemIdentifier: control.systemIdentifier,
      timeline: label.timeline,
      startLsn: label.startLsn,
      tablespaces,
      walSegmentSize: control.walSegmentSize,
      blockSize: control.blockSize,
      segmentBlocks: control.segmentBlocks,
      dataChecksums: control.dataChecksums,
      label: label.label,
      totalBytes: null,
    },
  };
}

/** Walks `root` (src/io/walk-tree.ts: links are entries, never followed); `skip(rel)` leaves out an entry (and what is under it). */
async function* walk(root: string, skip: (rel: string) => boolean): AsyncGenerator<BackupEvent> {
  for await (const e of walkTree(root, { skip: (e) => skip(e.rel) })) {
    const st = e.stats!;
    const base = { path: e.rel, mode: Number(st.mode) & 0o7777, mtime: st.mtime };
    if (e.kind === 'symlink') {
      yield { type: 'entry', kind: 'symlink', size: 0, linkTarget: pathFromBytes(await fs.readlink(fsPath(e.abs), { encoding: 'buffer' })), ...base };
      yield { type: 'entry-end' };
    } else if (e.kind === 'directory') {
      yield { type: 'entry', kind: 'directory', size: 0, ...base };
      yield { type: 'entry-end' };
    } else if (e.kind === 'file') {
      const size = Number(st.size);
      yield { type: 'entry', kind: 'file', size, ...base };
      yield* readFile(e.abs, size);
      yield { type: 'entry-end' };
    }
    // FIFOs, sockets, devices: not data, never opened.
  }
}

async function* readFile(file: string, size: number): AsyncGenerator<BackupEvent> {
  if (size <= CHUNK) {
    const chunk = readSmallFile(file, size);
    if (size) yield { type: 'data', offset: 0, chunk };
    return;
  }
  // Opened without following a link or blocking: what was a file at lstat may be a FIFO now.
  const fh = await openRegular(file, 'file');
  try {
    let offset = 0;
    while (offset < size) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - offset));
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      if (bytesRead === 0) throw new PgbbError('io', `file "${showPath(file)}" is shorter than its size ${size} (changed while reading?)`);
      yield { type: 'data', offset, chunk: bytesRead === buf.length ? buf : buf.subarray(0, bytesRead) };
      offset += bytesRead;
    }
  } catch (err) {
    if (err instanceof PgbbError) throw err;
    throw ioError('could not read file', showPath(file), err);
  } finally {
    await fh.close();
  }
}

/**
 * A file of one piece or less, read with synchronous calls on a bare
 * descriptor: no FileHandle, request or promise per file, whose native
 * halves would wait for a full GC (memory would grow with a backup's file
 * count). Opened as openRegular opens; `size` bytes at most.
 */
function readSmallFile(file: string, size: number): Buffer {
  const fd = openRegularSync(file, 'file');
  try {
    const buf = Buffer.allocUnsafe(size);
    for (let got = 0; got < size; ) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) throw new PgbbError('io', `file "${showPath(file)}" is shorter than its size ${size} (changed while reading?)`);
      got += n;
    }
    return buf;
  } catch (err) {
    if (err instanceof PgbbError) throw err;
    throw ioError('could not read file', showPath(file), err);
  } finally {
    closeSync(fd);
  }
}

/**
 * backup_manifest as `manifest` events of 256 KiB, read as the consumer
 * wants them (never whole); returns where its WAL ends, read from its last
 * pieces, where WAL-Ranges are (0/0 when it has none, or no manifest).
 * Opened as readLimited opens what a backup directory holds, and capped the same.
 */
async function* readManifest(file: string): AsyncGenerator<BackupEvent, { endLsn: string; timeline: number }> {
  const none = { endLsn: '0/0', timeline: 0 };
  const tail: Buffer[] = [];
  for await (const data of readLimitedPieces(file, LIMITS.manifest, CHUNK)) {
    tail.push(data);
    if (tail.length > 2) tail.shift();
    yield { type: 'manifest', data };
  }
  if (!tail.length) return none;
  try {
    const [last] = parseWalRanges(Buffer.concat(tail));
    return { endLsn: formatLsn(last.end), timeline: last.timeline };
  } catch {
    return none; // a manifest that does not say: manifest-verify names what is wrong with it
  }
}

export async function* plainBackupEvents(dir: string): AsyncGenerator<BackupEvent> {
  const root = path.resolve(dir);
  const { start } = await readPlainStart(root);
  yield start;
  yield { type: 'archive', kind: 'base', name: 'base', location: '' };
  yield* walk(root, (rel) => NOT_DATA.has(rel));
  yield { type: 'archive-end' };
  for (const ts of start.tablespaces) {
    if (ts.oid === null) continue;
    const location = path.resolve(root, 'pg_tblspc', ts.location);
    yield { type: 'archive', kind: 'tablespace', name: ts.oid, location: ts.location };
    yield* walk(location, () => false);
    yield { type: 'archive-end' };
  }
  const end = yield* readManifest(path.join(root, 'backup_manifest'));
  yield { type: 'end', endLsn: end.endLsn, timeline: end.timeline || start.timeline };
}

export function plainBackupSource(dir: string): Readable {
  return Readable.from(plainBackupEvents(dir), { objectMode: true, highWaterMark: 16 });
}
