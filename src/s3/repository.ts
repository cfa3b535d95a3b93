/**
 * A repository of backups under s3://bucket/prefix: listing them, reading
 * their records, removing them. Every listing is paged and capped, and
 * every object read is size-checked first: the bucket may hold anything.
 *
 *   <prefix>/<id>/backup.started   written first (the backup began)
 *   <prefix>/<id>/base.tar.zst …   the archives, backup_manifest
 *   <prefix>/<id>/backup.json      written last: the backup is complete
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { s3Sdk } from './sdk';
import { PgbbError } from '../errors';
import { isNotFound, s3Error } from './client';
import { decodeRecord, RECORD_MAX_BYTES, RECORD_NAME, type BackupRecord } from './backup-record';
import { BACKUP_ID, backupIdTime, backupKey, repoKeyPrefix, showS3, type S3Location } from './s3-url';

/** More than this many backups (or objects in one) is not a repository pgbb made. */
export const MAX_LISTED = 100_000;

export interface ListedBackup {
  id: string;
  /** Its record, when the backup is complete. */
  record: BackupRecord | null;
  /** A record that exists but does not parse (named in list's output). */
  damaged: string | null;
  /** When it started (from its id). */
  started: Date;
}

export class Repository {
  constructor(readonly client: S3Client, readonly loc: S3Location) {}

  where(id?: string, name?: string): string {
    return showS3(this.loc, id === undefined ? undefined : name ? `${id}/${name}` : id);
  }

  key(id: string, name: string): string {
    return backupKey(this.loc, id, name);
  }

  /** Every backup id under the prefix (ids only: anything else there is not pgbb's and ignored). */
  async ids(): Promise<string[]> {
    const out: string[] = [];
    const prefix = repoKeyPrefix(this.loc);
    let token: string | undefined;
    do {
      const r = await this.client
        .send(new (s3Sdk().ListObjectsV2Command)({ Bucket: this.loc.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }))
        .catch((e) => Promise.reject(s3Error(e, 'list', this.where())));
      for (const p of r.CommonPrefixes ?? []) {
        const id = p.Prefix?.slice(prefix.length, -1);
        if (id && BACKUP_ID.test(id)) out.push(id);
      }
      if (out.length > MAX_LISTED) throw new PgbbError('s3', `${this.where()} holds more than ${MAX_LISTED} backups: refusing to go on`);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  /** Names and sizes of the objects of backup `id` (one level: pgbb writes no deeper). */
  async objects(id: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const prefix = this.key(id, '');
    let token: string | undefined;
    do {
      const r = await this.client
        .send(new (s3Sdk().ListObjectsV2Command)({ Bucket: this.loc.bucket, Prefix: prefix, ContinuationToken: token }))
        .catch((e) => Promise.reject(s3Error(e, 'list', this.where(id))));
      for (const o of r.Contents ?? []) if (o.Key) out.set(o.Key.slice(prefix.length), o.Size ?? 0);
      if (out.size > MAX_LISTED) throw new PgbbError('s3', `${this.where(id)} holds more than ${MAX_LISTED} objects: not a pgbb backup`);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /** The backup's record, or null when there is none (an incomplete backup). */
  async record(id: string): Promise<BackupRecord | null> {
    const key = this.key(id, RECORD_NAME);
    let body: Buffer;
    try {
      const head = await this.client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: this.loc.bucket, Key: key }));
      if ((head.ContentLength ?? 0) > RECORD_MAX_BYTES) throw new PgbbError('not_a_backup', `${this.where(id, RECORD_NAME)} is larger than ${RECORD_MAX_BYTES} bytes`);
      const r = await this.client.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.loc.bucket, Key: key, Range: `bytes=0-${RECORD_MAX_BYTES}` }));
      body = Buffer.from(await r.Body!.transformToByteArray());
    } catch (err) {
      if (isNotFound(err)) return null;
      throw s3Error(err, 'read', this.where(id, RECORD_NAME));
    }
    const rec = decodeRecord(body, this.where(id, RECORD_NAME));
    if (rec.id !== id) throw new PgbbError('not_a_backup', `${this.where(id, RECORD_NAME)} records backup ${rec.id}, not ${id}`);
    return rec;
  }

  /** Every backup, oldest first, complete or not. */
  async list(): Promise<ListedBackup[]> {
    const out: ListedBackup[] = [];
    for (const id of await this.ids()) {
      let record: BackupRecord | null = null;
      let damaged: string | null = null;
      try {
        record = await this.record(id);
      } catch (err) {
        if (!(err instanceof PgbbError) || err.code !== 'not_a_backup') throw err;
        damaged = err.message;
      }
      out.push({ id, record, damaged, started: backupIdTime(id) });
    }
    return out;
  }

  /** Removes every object of backup `id`, the record first (so that a half-removed backup is never complete). */
  async remove(id: string): Promise<void> {
    const names = [...(await this.objects(id)).keys()];
    const ordered = [RECORD_NAME, ...names.filter((n) => n !== RECORD_NAME)].filter((n) => names.includes(n));
    await this.deleteKeys(ordered.map((n) => this.key(id, n)), this.where(id));
  }

  async deleteKeys(keys: string[], where: string): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const r = await this.client
        .send(new (s3Sdk().DeleteObjectsCommand)({ Bucket: this.loc.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }))
        .catch((e) => Promise.reject(s3Error(e, 'delete objects of', where)));
      if (r.Errors?.length) {
        const e = r.Errors[0];
        throw new PgbbError('s3', `could not delete ${showS3({ bucket: this.loc.bucket, prefix: '' }, e.Key ?? '')}: ${e.Code ?? 'error'}`);
      }
    }
  }

  /**
   * Aborts multipart uploads under the prefix begun before `before` (a
   * killed backup's). Null when the server cannot list them (s3rver answers
   * NotImplemented): the caller says so.
   */
  async abortStaleUploads(before: Date, dryRun: boolean): Promise<string[] | null> {
    const out: string[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    do {
      let r;
      try {
        r = await this.client.send(
          new (s3Sdk().ListMultipartUploadsCommand)({ Bucket: this.loc.bucket, Prefix: repoKeyPrefix(this.loc), KeyMarker: keyMarker, UploadIdMarker: idMarker }),
        );
      } catch (err) {
        const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
        if (e?.name === 'NotImplemented' || e?.$metadata?.httpStatusCode === 501) return null;
        throw s3Error(err, 'list multipart uploads under', this.where());
      }
      for (const u of r.Uploads ?? []) {
        if (!u.Key || !u.UploadId || !u.Initiated || u.Initiated >= before) continue;
        out.push(u.Key);
        if (!dryRun) {
          await this.client
            .send(new (s3Sdk().AbortMultipartUploadCommand)({ Bucket: this.loc.bucket, Key: u.Key, UploadId: u.UploadId }))
            .catch((e) => Promise.reject(s3Error(e, 'abort the upload of', `s3://${this.loc.bucket}/${u.Key}`)));
        }
      }
      if (out.length > MAX_LISTED) break;
      keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
      idMarker = r.IsTruncated ? r.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return out;
  }

  /** True when nothing exists under backup `id`'s prefix. */
  async isEmpty(id: string): Promise<boolean> {
    const r = await this.client
      .send(new (s3Sdk().ListObjectsV2Command)({ Bucket: this.loc.bucket, Prefix: this.key(id, ''), MaxKeys: 1 }))
      .catch((e) => Promise.reject(s3Error(e, 'list', this.where(id))));
    return (r.KeyCount ?? r.Contents?.length ?? 0) === 0;
  }
}
