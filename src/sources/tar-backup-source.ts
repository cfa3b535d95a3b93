/**
 * Reads backups written as tar back into the member stream:
 *
 * - a tar directory (`pgbb backup -F tar`, optionally `--compress zstd`;
 *   pg_basebackup's also `.gz` and `.lz4`): base.tar[.zst], then each
 *   <oid>.tar[.zst], then pg_wal.tar[.zst], and backup_manifest;
 * - one tar stream (`pgbb backup -D -`, zstd-compressed or not, detected by
 *   its magic): tablespaces under pg_tblspc/<oid>/, then the data directory,
 *   WAL under pg_wal/, backup_manifest last.
 *
 * The `start` event comes from the backup descriptor pgbb puts on the first
 * member of each archive (src/codec/backup-descriptor.ts). In the single stream,
 * each tablespace's members become their own archive again, and base gets
 * its pg_tblspc/<oid> symlinks back (at its end, once pg_tblspc exists).
 * The stream's layout is transforms/tar-unpack.ts's (this file adds the zstd
 * detection, ./archive-bytes.ts the bytes); a directory's archives are parsed one by one (./tar-members.ts).
 * The manifest comes as `manifest` events of at most 256 KiB, never read whole.
 * Everything is pulled: nothing is read ahead of the consumer.
 * Errors: a missing descriptor, a truncated archive or zstd frame, a member
 * outside the expected layout — each names the archive or member.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PassThrough, pipeline, Readable } from 'node:stream';
import type { BackupEvent } from '../events';
import { ioError, PgbbError } from '../errors';
import { LIMITS, readLimitedPieces } from '../io/read-limited';
import { decodeDescriptor, startFromDescriptor, type BackupDescriptor } from '../codec/backup-descriptor';
import { AGE_SUFFIX } from '../codec/age-format';
import type { DecryptKey } from '../crypto/age-keys';
import { ManifestEndScanner, MANIFEST_PIECE_BYTES, tarUnpack } from '../../transforms/tar-unpack';
import { tarMembers } from './tar-members';
import { deriveFromBase, manifestMemberAsManifest, mapLinks } from './pg-basebackup-tar';
import { showPath } from '../codec/path-bytes';
import { isPgBasebackupStream, spooledEvents, SpoolPlace } from './stdin-spool';
import { encryptedManifest, maybeDecompress, openArchive, peek } from './archive-bytes';

/**
 * The names an archive may have: pgbb writes `.tar` and `.tar.zst` (`.age`
 * after either when encrypted, transforms/encrypt.ts), pg_basebackup also
 * `.tar.gz` and `.tar.lz4`.
 */
export const ARCHIVE_SUFFIXES = ['.tar', '.tar.zst', '.tar.gz', '.tar.lz4', `.tar${AGE_SUFFIX}`, `.tar.zst${AGE_SUFFIX}`];

/**
 * Where a set of archives is kept — a directory, or an S3 backup
 * (src/sources/s3-backup-source.ts): the names it holds, each archive's
 * bytes (decompressed: see decompressed()), and backup_manifest in pieces.
 */
export interface ArchiveSet {
  /** For messages: the directory or s3:// location. */
  where: string;
  names: string[];
  /** The tar bytes of archive `name` (one of `names`), decompressed. */
  archive(name: string): AsyncIterable<Buffer>;
  /** backup_manifest in pieces of at most MANIFEST_PIECE_BYTES; nothing when there is none. */
  manifest(): AsyncIterable<Buffer>;
  /** An S3 incremental's archives: members named by src/codec/delta-members.ts, links carried as members, none to add. */
  delta?: boolean;
}

/**
 * A backup directory's backup_manifest in pieces (capped, never whole), for
 * the checks that read it before the files (src/manifest/manifest-preview.ts):
 * decrypted when it is backup_manifest.age and a key is given; nothing when
 * there is none (or no key: opening an archive then says the key is missing).
 */
export async function* directoryManifestPieces(dir: string, key: DecryptKey | undefined): AsyncGenerator<Buffer> {
  const plain = path.join(dir, 'backup_manifest');
  const sealed = path.join(dir, `backup_manifest${AGE_SUFFIX}`);
  const exists = (p: string) => fs.lstat(p).then(() => true, () => false);
  if (await exists(plain)) yield* readLimitedPieces(plain, LIMITS.manifest, MANIFEST_PIECE_BYTES);
  else if (key && (await exists(sealed))) yield* encryptedManifest(sealed, key);
}

function directorySet(root: string, names: string[], key: DecryptKey | undefined): ArchiveSet {
  const encrypted = names.includes(`backup_manifest${AGE_SUFFIX}`);
  return {
    where: root,
    names,
    archive: (name) => openArchive(path.join(root, name), key),
    manifest: () =>
      encrypted
        ? encryptedManifest(path.join(root, `backup_manifest${AGE_SUFFIX}`), key)
        : readLimitedPieces(path.join(root, 'backup_manifest'), LIMITS.manifest, MANIFEST_PIECE_BYTES),
  };
}

/** Pulls the first event of a generator early, to read the descriptor it carries. */
async function* prefetchFirst(gen: AsyncGenerator<BackupEvent>, first: IteratorResult<BackupEvent>): AsyncGenerator<BackupEvent> {
  if (!first.done) yield first.value;
  yield* gen;
}

export async function* tarDirectoryEvents(dir: string, key?: DecryptKey): AsyncGenerator<BackupEvent> {
  const root = path.resolve(dir);
  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch (err) {
    throw ioError('could not read directory', root, err);
  }
  yield* archiveSetEvents(directorySet(root, names, key));
}

/** An archive set's members as the member stream: base first (its descriptor gives `start`), tablespaces, pg_wal, the manifest. */
export async function* archiveSetEvents(set: ArchiveSet): AsyncGenerator<BackupEvent> {
  const root = set.where;
  const names = set.names;
  const openArchive = (name: string) => set.archive(name);
  const find = (base: string) => names.find((n) => ARCHIVE_SUFFIXES.some((s) => n === base + s));
  const baseFile = find('base');
  if (!baseFile) throw new PgbbError('not_a_backup', `"${root}" holds no base.tar (or .tar.zst, .tar.gz, .tar.lz4)`);
  let descriptor: BackupDescriptor | null = null;
  const linked = new Set<string>();
  const base = tarMembers(openArchive(baseFile), baseFile, (m) => {
    descriptor ??= decodeDescriptor(m.comment);
    const link = m.kind === 'symlink' ? /^pg_tblspc\/(\d+)\/?$/.exec(m.path) : null;
    if (link) linked.add(link[1]);
  });
  // The first read of base stays open while base is read again to derive the descriptor, and while
  // start and archive are taken: closed whatever ends this (a truncated archive, a consumer gone).
  try {
    const first = await base.next();
    // pg_basebackup's: what the descriptor would hold comes from base.tar itself (./pg-basebackup-tar.ts).
    const derived = !descriptor;
    descriptor ??= await deriveFromBase(openArchive(baseFile), `${root}/${baseFile}`);
    const d = descriptor as BackupDescriptor;
    yield startFromDescriptor(d);
    yield { type: 'archive', kind: 'base', name: 'base', location: '' };
    const scanner = new ManifestEndScanner();
    // pg_basebackup -D - -Ft saved as base.tar: the manifest is its last member, not a file beside it.
    const memberManifest = derived && !names.includes('backup_manifest');
    yield* !memberManifest ? prefetchFirst(base, first) : manifestMemberAsManifest(prefetchFirst(base, first), (p) => scanner.feed(p), `${root}/${baseFile}`);
    // With tablespace_map instead of links (pg_basebackup -Ft, pgbb -F tar), base gets its links at its end.
    if (!set.delta) yield* mapLinks(d.tablespaces.filter((t) => !linked.has(t.oid)));
    yield { type: 'archive-end' };
    for (const ts of d.tablespaces) {
      const file = find(ts.oid);
      if (!file) throw new PgbbError('not_a_backup', `"${root}" lacks ${ts.oid}.tar for tablespace ${ts.oid} (${ts.location})`);
      yield { type: 'archive', kind: 'tablespace', name: ts.oid, location: ts.location };
      yield* tarMembers(openArchive(file), file);
      yield { type: 'archive-end' };
    }
    const walFile = find('pg_wal');
    if (walFile) {
      yield { type: 'archive', kind: 'wal', name: 'pg_wal', location: '' };
      yield* tarMembers(openArchive(walFile), walFile);
      yield { type: 'archive-end' };
    }
    if (!memberManifest) yield* manifestPieces(set.manifest(), scanner);
    const end = scanner.result();
    yield { type: 'end', endLsn: end.endLsn, timeline: end.timeline || d.timeline };
  } finally {
    await base.return(undefined);
  }
}

/** backup_manifest as `manifest` events of at most MANIFEST_PIECE_BYTES, none when it does not exist (capped, src/io/read-limited.ts). */
async function* manifestPieces(pieces: AsyncIterable<Buffer>, scanner: ManifestEndScanner): AsyncGenerator<BackupEvent> {
  for await (const piece of pieces) {
    scanner.feed(piece);
    yield { type: 'manifest', data: piece };
  }
}

export function tarDirectorySource(dir: string, key?: DecryptKey): Readable {
  return Readable.from(tarDirectoryEvents(dir, key), { objectMode: true, highWaterMark: 16 });
}

/**
 * A `-D -` stream (plain, zstd, gzip or lz4, told by its magic) → the member
 * stream: [decompress] → tarUnpack(), or, for pg_basebackup's stream (see
 * ./stdin-spool.ts), spooled to disk and read as a tar directory.
 */
export function tarStreamSource(input: Readable, name = 'standard input', key?: DecryptKey): Readable {
  const place = new SpoolPlace();
  const out = new PassThrough({
    objectMode: true,
    highWaterMark: 16,
    // The spool goes now, not when the generator gets round to its finally: the CLI exits as soon as the pipeline rejects.
    destroy: (err, cb) => {
      place.discard();
      cb(err);
    },
  });
  const begin = async () => {
    const { head, all } = await peek(maybeDecompress(input, name, key), 512);
    if (out.destroyed) return;
    if (isPgBasebackupStream(head)) {
      const events = spooledEvents(all, name, (dir) => archiveSetEvents(spooledSet(dir, name)), place);
      pipeline(Readable.from(events, { objectMode: true, highWaterMark: 16 }), out, () => {});
    } else {
      pipeline(Readable.from(all, { objectMode: false }), tarUnpack({ name }), out, () => {});
    }
  };
  begin().catch((err) => out.destroy(err));
  // Destroying the source (an abort, SIGTERM) must end a wait on input that never comes, an
  // idle pipe say: the generator cannot return while it awaits, so the input goes too.
  out.once('close', () => input.destroy());
  return out;
}

/** The spooled base.tar as an archive set, named in messages as the stream it came from. */
function spooledSet(dir: string, name: string): ArchiveSet {
  return {
    where: name,
    names: ['base.tar'],
    archive: () => openArchive(path.join(dir, 'base.tar'), undefined),
    manifest: () => (async function* () {})(),
  };
}

export { MANIFEST_PIECE_BYTES };
