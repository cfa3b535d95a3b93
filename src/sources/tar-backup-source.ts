/**
 * Reads backups written as tar back into the member stream:
 *
 * - a tar directory (`pgbb backup -F tar`, optionally `--compress zstd`):
 *   base.tar[.zst], then each <oid>.tar[.zst], then pg_wal.tar[.zst], and
 *   backup_manifest;
 * - one tar stream (`pgbb backup -D -`, zstd-compressed or not, detected by
 *   its magic): tablespaces under pg_tblspc/<oid>/, then the data directory,
 *   WAL under pg_wal/, backup_manifest last.
 *
 * The `start` event comes from the backup descriptor pgbb puts on the first
 * member of each archive (src/codec/backup-descriptor.ts). In the single stream,
 * each tablespace's members become their own archive again, and base gets
 * its pg_tblspc/<oid> symlinks back (at its end, once pg_tblspc exists).
 * Everything is pulled: nothing is read ahead of the consumer.
 * Errors: a missing descriptor, a truncated archive or zstd frame, a member
 * outside the expected layout — each names the archive or member.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import type { BackupEvent, EntryEvent } from '../events';
import { IoError, ioError, PgbbError } from '../errors';
import { LIMITS, openRegular, readLimited } from '../io/read-limited';
import { decodeDescriptor, startFromDescriptor, type BackupDescriptor } from '../codec/backup-descriptor';
import { zstdDecompress } from '../../transforms/zstd-decompress';
import { tarMembers } from './tar-members';
import { manifestEnd } from '../codec/backup-label';
import { showPath } from '../codec/path-bytes';

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

function notPgbb(what: string): PgbbError {
  return new PgbbError('not_a_backup', `${what} carries no pgbb backup descriptor (not written by pgbb?)`);
}

/**
 * Opens one archive file, decompressing `.zst`. Opened without following a
 * link or blocking (a FIFO named base.tar would hang the open), and only a
 * regular file is read.
 */
async function* openArchive(file: string): AsyncGenerator<Buffer> {
  const fh = await openRegular(file, 'archive');
  const raw = fh.createReadStream({ highWaterMark: 256 * 1024 });
  try {
    if (!file.endsWith('.zst')) {
      yield* raw;
      return;
    }
    const z: Duplex = zstdDecompress();
    raw.on('error', (err) => z.destroy(ioError('could not read file', file, err)));
    yield* raw.pipe(z) as AsyncIterable<Buffer>;
  } finally {
    raw.destroy(); // closes the handle, also when the consumer stops early
  }
}

/** Pulls the first event of a generator early, to read the descriptor it carries. */
async function* prefetchFirst(gen: AsyncGenerator<BackupEvent>, first: IteratorResult<BackupEvent>): AsyncGenerator<BackupEvent> {
  if (!first.done) yield first.value;
  yield* gen;
}

export async function* tarDirectoryEvents(dir: string): AsyncGenerator<BackupEvent> {
  const root = path.resolve(dir);
  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch (err) {
    throw ioError('could not read directory', root, err);
  }
  const find = (base: string) => names.find((n) => n === `${base}.tar` || n === `${base}.tar.zst`);
  const baseFile = find('base');
  if (!baseFile) throw new PgbbError('not_a_backup', `"${root}" holds no base.tar or base.tar.zst`);
  let descriptor: BackupDescriptor | null = null;
  const base = tarMembers(openArchive(path.join(root, baseFile)), baseFile, (m) => {
    descriptor ??= decodeDescriptor(m.comment);
  });
  const first = await base.next();
  if (!descriptor) throw notPgbb(path.join(root, baseFile));
  const d = descriptor as BackupDescriptor;
  yield startFromDescriptor(d);
  yield { type: 'archive', kind: 'base', name: 'base', location: '' };
  yield* prefetchFirst(base, first);
  yield { type: 'archive-end' };
  for (const ts of d.tablespaces) {
    const file = find(ts.oid);
    if (!file) throw new PgbbError('not_a_backup', `"${root}" lacks ${ts.oid}.tar for tablespace ${ts.oid} (${ts.location})`);
    yield { type: 'archive', kind: 'tablespace', name: ts.oid, location: ts.location };
    yield* tarMembers(openArchive(path.join(root, file)), file);
    yield { type: 'archive-end' };
  }
  const walFile = find('pg_wal');
  if (walFile) {
    yield { type: 'archive', kind: 'wal', name: 'pg_wal', location: '' };
    yield* tarMembers(openArchive(path.join(root, walFile)), walFile);
    yield { type: 'archive-end' };
  }
  const manifest = await readLimited(path.join(root, 'backup_manifest'), LIMITS.manifest);
  if (manifest) yield { type: 'manifest', data: manifest };
  const end = manifestEnd(manifest);
  yield { type: 'end', endLsn: end.endLsn, timeline: end.timeline || d.timeline };
}

/** Peeks at the first bytes to choose between plain tar and zstd. */
async function* maybeDecompress(input: Readable): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  if (first.done) return;
  const rest = (async function* () {
    yield first.value;
    while (true) {
      const n = await it.next();
      if (n.done) return;
      yield n.value;
    }
  })();
  if (first.value.length >= 4 && first.value.subarray(0, 4).equals(ZSTD_MAGIC)) {
    yield* Readable.from(rest, { objectMode: false }).pipe(zstdDecompress()) as AsyncIterable<Buffer>;
  } else {
    yield* rest;
  }
}

export async function* tarStreamEvents(input: Readable, name = 'standard input'): AsyncGenerator<BackupEvent> {
  let descriptor: BackupDescriptor | null = null;
  const members = tarMembers(maybeDecompress(input), name, (m) => {
    descriptor ??= decodeDescriptor(m.comment);
  });
  const first = await members.next();
  if (first.done) throw new PgbbError('not_a_backup', `${name} is empty`);
  if (!descriptor) throw notPgbb(name);
  const d = descriptor as BackupDescriptor;
  yield startFromDescriptor(d);
  const locations = new Map(d.tablespaces.map((t) => [t.oid, t.location]));
  let current: string | null = null; // archive name now open
  let prefixLen = 0;
  let manifest: Buffer | null = null;
  let manifestBytes = 0;
  let inManifest = false;
  /** The member being left out (a tablespace's own directory): its entry-end goes too. */
  let skipping = false;
  for await (const ev of prefetchFirst(members, first)) {
    if (ev.type === 'entry') {
      if (inManifest) throw new PgbbError('tar_format', `member "${showPath(ev.path)}" after backup_manifest in ${name}`);
      const ts = /^pg_tblspc\/(\d+)(?:\/(.*))?$/.exec(ev.path);
      let target: string;
      if (ev.path === 'backup_manifest') {
        // Held in memory until the end: refuse at its header what no manifest can be. Within
        // the cap, one buffer of the member's size, filled as its bytes come: the pages
        // never written cost nothing, and there is no second copy (chunks, then a concat).
        if (ev.size > LIMITS.manifest.maxBytes) throw manifestTooLarge(name, ev.size);
        if (current) yield* closeArchive(current);
        current = null;
        inManifest = true;
        manifest = Buffer.allocUnsafe(ev.size);
        continue;
      } else if (ts && locations.has(ts[1])) {
        target = ts[1];
        if (ts[2] === undefined) {
          // The tablespace's own directory entry opens its archive.
          if (current !== target) {
            if (current) yield* closeArchive(current);
            current = target;
            yield { type: 'archive', kind: 'tablespace', name: target, location: locations.get(target)! };
          }
          skipping = true;
          continue;
        }
        prefixLen = `pg_tblspc/${target}/`.length;
      } else {
        target = 'base';
        prefixLen = 0;
      }
      if (current !== target) {
        if (current) yield* closeArchive(current);
        current = target;
        yield target === 'base'
          ? { type: 'archive', kind: 'base', name: 'base', location: '' }
          : { type: 'archive', kind: 'tablespace', name: target, location: locations.get(target)! };
      }
      yield prefixLen ? ({ ...ev, path: ev.path.slice(prefixLen) } as EntryEvent) : ev;
    } else if (inManifest) {
      if (ev.type === 'data') {
        // The parser gives a member exactly its header's size; checked anyway, it is cheap.
        if (manifestBytes + ev.chunk.length > manifest!.length) throw manifestTooLarge(name, manifestBytes + ev.chunk.length);
        manifestBytes += ev.chunk.copy(manifest!, manifestBytes);
      }
      else if (ev.type === 'entry-end') inManifest = false;
    } else if (skipping) {
      // Entry events come as entry, data*, entry-end; the skipped one may be a file in a damaged stream.
      if (ev.type === 'entry-end') skipping = false;
    } else {
      yield ev;
    }
  }
  if (current) yield* closeArchive(current);
  const m = manifest ? manifest.subarray(0, manifestBytes) : null;
  if (m) yield { type: 'manifest', data: m };
  const end = manifestEnd(m);
  yield { type: 'end', endLsn: end.endLsn, timeline: end.timeline || d.timeline };

  /** Ends an archive; base gets its tablespace links back first, whichever archive follows it. */
  function* closeArchive(archive: string): Generator<BackupEvent> {
    if (archive === 'base') {
      for (const t of d.tablespaces) {
        yield { type: 'entry', path: `pg_tblspc/${t.oid}`, kind: 'symlink', size: 0, mode: 0o777, mtime: new Date(), linkTarget: t.location };
        yield { type: 'entry-end' };
      }
    }
    yield { type: 'archive-end' };
  }
}

function manifestTooLarge(name: string, size: number): IoError {
  return new IoError(`backup_manifest member of ${name} holds ${size} bytes, more than ${LIMITS.manifest.maxBytes}, the most a manifest can: refusing to read it`);
}

export function tarDirectorySource(dir: string): Readable {
  return Readable.from(tarDirectoryEvents(dir), { objectMode: true, highWaterMark: 16 });
}

export function tarStreamSource(input: Readable, name?: string): Readable {
  const out = Readable.from(tarStreamEvents(input, name), { objectMode: true, highWaterMark: 16 });
  // Destroying the source (an abort, SIGTERM) must end a wait on input that never comes, an
  // idle pipe say: the generator cannot return while it awaits, and the destroy would never finish.
  const destroy = out._destroy;
  out._destroy = function (err, cb) {
    input.destroy();
    destroy.call(this, err, cb);
  };
  return out;
}
