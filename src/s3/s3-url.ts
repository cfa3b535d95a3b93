/**
 * `s3://bucket/prefix[/<backup-id>]`: where a repository of backups lives.
 * Pure: no I/O. The bucket follows S3's naming rules (3–63 of a-z 0-9 . -);
 * the prefix is '/'-separated segments, none empty, `.` or `..`, so that a
 * key pgbb builds never escapes the prefix it was given.
 */
import { UsageError } from '../errors';

export interface S3Location {
  bucket: string;
  /** '' or segments joined with '/', no leading or trailing '/'. */
  prefix: string;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** Backup ids pgbb makes: UTC time of the start, to the millisecond, and the kind. */
export const BACKUP_ID = /^\d{8}T\d{6}\.\d{3}Z-[FI]$/;

export function isS3Url(s: string): boolean {
  return typeof s === 'string' && s.startsWith('s3://');
}

export function parseS3Url(s: string): S3Location {
  if (!isS3Url(s)) throw new UsageError(`"${s}" is not an s3:// URL`);
  const rest = s.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  if (!BUCKET.test(bucket) || bucket.includes('..')) throw new UsageError(`invalid S3 bucket name "${bucket}" in "${s}"`);
  const segs = slash < 0 ? [] : rest.slice(slash + 1).split('/');
  while (segs.length && segs[segs.length - 1] === '') segs.pop();
  for (const seg of segs) {
    if (seg === '' || seg === '.' || seg === '..' || /[\u0000-\u001f\u007f\\]/.test(seg)) {
      throw new UsageError(`invalid S3 prefix in "${s}": empty, "." or ".." segment, or a control character`);
    }
  }
  const prefix = segs.join('/');
  if (Buffer.byteLength(prefix) > 900) throw new UsageError(`S3 prefix in "${s}" is too long (at most 900 bytes)`);
  return { bucket, prefix };
}

/**
 * A repository location, or one backup in it when the last segment is a
 * backup id (restore and verify take either).
 */
export function splitBackupId(loc: S3Location): { repo: S3Location; id: string | null } {
  const segs = loc.prefix === '' ? [] : loc.prefix.split('/');
  const last = segs[segs.length - 1];
  if (last !== undefined && BACKUP_ID.test(last)) return { repo: { bucket: loc.bucket, prefix: segs.slice(0, -1).join('/') }, id: last };
  return { repo: loc, id: null };
}

/** The key of `name` in backup `id` of `repo`. */
export function backupKey(repo: S3Location, id: string, name = ''): string {
  return [repo.prefix, id, name].filter((p, i) => p !== '' || i === 2).join('/');
}

/** The key prefix under which the repository's backups are listed ('' or ending in '/'). */
export function repoKeyPrefix(repo: S3Location): string {
  return repo.prefix === '' ? '' : `${repo.prefix}/`;
}

export function showS3(repo: S3Location, id?: string): string {
  return `s3://${repo.bucket}/${[repo.prefix, id ?? ''].filter(Boolean).join('/')}`;
}

/** A new backup id for a backup starting at `at`. */
export function newBackupId(at: Date, kind: 'F' | 'I' = 'F'): string {
  const iso = at.toISOString(); // 2026-12-02T09:15:00.123Z
  return `${iso.slice(0, 10).replace(/-/g, '')}T${iso.slice(11, 19).replace(/:/g, '')}${iso.slice(19, 24)}-${kind}`;
}

/** When a backup with this id started (ids are made by newBackupId). */
export function backupIdTime(id: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z/.exec(id);
  if (!m) return new Date(NaN);
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], +m[7]));
}
