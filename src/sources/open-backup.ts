/**
 * An existing backup as a source, whatever pgbb (or pg_basebackup) wrote it
 * as: `-` (a tar stream on stdin), a tar directory (base.tar[.zst|.gz]), a plain directory
 * (PG_VERSION + backup_label), or s3://bucket/prefix[/<id>].
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { PgbbError } from '../errors';
import { incompleteRefresh, REFRESH_MARKER } from '../io/refresh-marker';
import { plainBackupSource } from './plain-backup-source';
import { ARCHIVE_SUFFIXES, tarDirectorySource, tarStreamSource } from './tar-backup-source';
import { resolveS3Backup, s3BackupSource, type S3SourceOptions } from './s3-backup-source';
import { isS3Url } from '../s3/s3-url';
import { AGE_SUFFIX } from '../codec/age-format';
import type { DecryptKey } from '../crypto/age-keys';

export type BackupFormat = 'stream' | 'tar' | 'plain' | 's3';

export async function detectBackupFormat(source: string): Promise<BackupFormat> {
  if (source === '-') return 'stream';
  let names: string[];
  try {
    names = await fs.readdir(source);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PgbbError('not_a_backup', `could not open backup "${source}": ${code === 'ENOENT' ? 'no such directory' : (err as Error).message}`);
  }
  if (ARCHIVE_SUFFIXES.some((s) => names.includes(`base${s}`))) return 'tar';
  // A directory a refresh was interrupted in is a mix of old and new: never read it as a backup.
  if (names.includes(REFRESH_MARKER)) throw incompleteRefresh(source);
  if (names.includes('PG_VERSION')) return 'plain';
  if (names.includes('backup_manifest') && !names.includes('backup_label')) {
    throw new PgbbError('not_a_backup', `"${path.resolve(source)}" has a backup_manifest but no base.tar or data files`);
  }
  throw new PgbbError('not_a_backup', `"${path.resolve(source)}" is not a pgbb backup (no base.tar[.zst][.age] or PG_VERSION)`);
}

export async function openBackupSource(
  source: string,
  stdin: Readable = process.stdin,
  s3: S3SourceOptions = {},
  key?: DecryptKey,
): Promise<{ format: BackupFormat; stream: Readable; location?: string }> {
  if (isS3Url(source)) {
    const o: S3SourceOptions = key ? { ...s3, decrypt: key } : s3;
    const b = await resolveS3Backup(source, o);
    return { format: 's3', stream: s3BackupSource(b, o), location: b.repo.where(b.id) };
  }
  const format = await detectBackupFormat(source);
  const stream =
    format === 'stream' ? tarStreamSource(stdin, undefined, key) : format === 'tar' ? tarDirectorySource(source, key) : plainBackupSource(source);
  return { format, stream };
}
