/**
 * An S3 backup as a source, for restore and verify: s3://bucket/prefix (the
 * newest complete backup) or s3://bucket/prefix/<id>. A backup without its
 * record (backup.json) is incomplete: refused, unless asked for by id with
 * `allowIncomplete`, when its objects are read as they are.
 *
 * Every object is checked against the record as it streams (size and
 * CRC32C, src/s3/object-reader.ts), then passed through the optional
 * per-object `transform` (a decryption), then decompressed; its archives
 * become the member stream exactly as a tar directory's do
 * (tar-backup-source.ts's archiveSetEvents), so every check downstream is
 * the same.
 */
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { IncompleteBackupError, PgbbError, UsageError } from '../errors';
import { makeS3Client } from '../s3/client';
import { Repository } from '../s3/repository';
import { OBJECT_NAME, type BackupRecord } from '../s3/backup-record';
import { parseS3Url, splitBackupId } from '../s3/s3-url';
import { CHUNK_MAP_OBJECT } from '../s3/chain';
import { checkedObject, type Expected } from '../s3/object-reader';
import type { ObjectTransform } from '../s3/object-writer';
import type { DecryptKey } from '../crypto/age-keys';
import { decrypt } from '../../transforms/decrypt';
import { archiveSetEvents, type ArchiveSet } from './tar-backup-source';
import { cappedPieces, decompressed } from './archive-bytes';

export interface S3SourceOptions {
  /** Read a backup that has no record (only by id). */
  allowIncomplete?: boolean;
  /** The inverse of the transform the backup's objects were written through. */
  transform?: ObjectTransform;
  /** The key of a backup written through age (its record says "age"), when no `transform` is given. */
  decrypt?: DecryptKey;
  client?: S3Client;
  /** Read an incremental backup as it is stored, one link of its chain (src/pipeline/s3-chain.ts rebuilds it). */
  link?: boolean;
  /** Only the objects' metadata will be read (verify --objects-only): no key is asked for. */
  metadataOnly?: boolean;
}

export interface ResolvedS3Backup {
  repo: Repository;
  id: string;
  record: BackupRecord | null;
  /** Object name → expected size and CRC32C. */
  objects: Map<string, Expected>;
}

/** Which backup `url` means, and what it holds; refuses incomplete ones unless allowed. */
export async function resolveS3Backup(url: string, o: S3SourceOptions = {}): Promise<ResolvedS3Backup> {
  const { repo: loc, id: given } = splitBackupId(parseS3Url(url));
  const repo = new Repository(o.client ?? makeS3Client(), loc);
  let id = given;
  let record: BackupRecord | null = null;
  if (id === null) {
    if (o.allowIncomplete) throw new UsageError('--allow-incomplete needs a backup id: s3://bucket/prefix/<id> (see pgbb list)');
    const complete = (await repo.list()).filter((b) => b.record);
    if (complete.length === 0) throw new PgbbError('not_a_backup', `${repo.where()} holds no complete backup`);
    const newest = complete[complete.length - 1];
    id = newest.id;
    record = newest.record;
  } else {
    record = await repo.record(id);
  }
  const listed = await repo.objects(id);
  if (listed.size === 0) throw new PgbbError('not_a_backup', `${repo.where(id)} does not exist`);
  const objects = new Map<string, Expected>();
  if (record) {
    for (const obj of record.objects) {
      const size = listed.get(obj.name);
      if (size === undefined) throw new PgbbError('not_a_backup', `${repo.where(id, obj.name)} is missing (the backup's record lists it)`);
      if (size !== obj.size) throw new PgbbError('checksum', `${repo.where(id, obj.name)} is ${size} bytes, the backup recorded ${obj.size}`);
      objects.set(obj.name, { size: obj.size, crc32c: obj.crc32c });
    }
    if (record.kind !== 'full' && !o.link) throw new PgbbError('not_a_backup', `${repo.where(id)} is an incremental backup: it is read through its chain (pgbb restore / verify)`);
    if (record.transform !== null && !o.transform && !o.metadataOnly && !(record.transform === 'age' && o.decrypt)) {
      const how = record.transform === 'age' ? ' (--encrypt-passphrase-file, PGBB_ENCRYPT_PASSPHRASE or --encrypt-identity-file)' : '';
      throw new UsageError(`${repo.where(id)} was written through "${record.transform}": give the matching key to read it${how}`);
    }
  } else {
    if (!o.allowIncomplete) {
      throw new IncompleteBackupError(`${repo.where(id)} is incomplete (it has no backup.json): pass --allow-incomplete to read what it holds anyway`);
    }
    // Its archives hold only changed chunks, and without a record nothing says what it stands on.
    if (id.endsWith('-I')) throw new IncompleteBackupError(`${repo.where(id)} is an incomplete incremental backup (it has no backup.json): it cannot be read`);
    for (const [name, size] of listed) if (OBJECT_NAME.test(name)) objects.set(name, { size, crc32c: null });
  }
  return { repo, id, record, objects };
}

function s3Set(b: ResolvedS3Backup, transform: ObjectTransform | undefined): ArchiveSet {
  const open = (name: string): Readable => {
    const checked = checkedObject(b.repo, b.id, name, b.objects.get(name)!);
    if (!transform) return checked;
    const t = transform(name);
    checked.on('error', (err) => t.destroy(err));
    return checked.pipe(t);
  };
  return {
    where: b.repo.where(b.id),
    names: [...b.objects.keys()].filter((n) => n !== 'backup_manifest' && n !== CHUNK_MAP_OBJECT),
    archive: (name) => decompressed(open(name), name, b.repo.where(b.id, name), (e) => e as Error),
    manifest: () => manifestPieces(b, open),
    delta: b.record?.kind === 'incremental',
  };
}

/** backup_manifest in pieces, capped as a local one is. */
function manifestPieces(b: ResolvedS3Backup, open: (name: string) => Readable): AsyncIterable<Buffer> {
  return b.objects.has('backup_manifest') ? cappedPieces(open('backup_manifest'), b.repo.where(b.id, 'backup_manifest')) : (async function* () {})();
}

/**
 * How the objects of backup `id` are read back: the given `transform`, or
 * age decryption with `decrypt` when its record says "age" (or it has
 * none), or nothing.
 */
export function objectDecoder(b: Pick<ResolvedS3Backup, 'repo' | 'id' | 'record'>, o: S3SourceOptions = {}): ObjectTransform | undefined {
  const key = o.decrypt;
  const age = key && (b.record === null || b.record.transform === 'age') ? (name: string) => decrypt({ key, name: b.repo.where(b.id, name) }) : undefined;
  return o.transform ?? age;
}

/** The member stream of an S3 backup (resolve it first with resolveS3Backup). */
export function s3BackupSource(b: ResolvedS3Backup, o: S3SourceOptions = {}): Readable {
  return Readable.from(archiveSetEvents(s3Set(b, objectDecoder(b, o))), { objectMode: true, highWaterMark: 16 });
}
