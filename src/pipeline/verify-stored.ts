/**
 * `pgbb verify s3://…[/<id>] --objects-only`: the backup (the newest
 * complete one without an id) and, for an incremental, every backup of its
 * chain, checked object by object against their records without
 * downloading (src/s3/store-check.ts).
 */
import { PgbbError, UsageError } from '../errors';
import { backupChain } from '../s3/chain';
import { checkStoredObjects, type StoreCheckReport } from '../s3/store-check';
import { resolveS3Backup, type S3SourceOptions } from '../sources/s3-backup-source';

export interface StoredVerifyReport extends StoreCheckReport {
  /** The backup checked, s3://bucket/prefix/<id>, and how many backups its chain holds. */
  location: string;
  backups: number;
}

export async function verifyStored(source: string, o: S3SourceOptions & { signal?: AbortSignal } = {}): Promise<StoredVerifyReport> {
  if (o.allowIncomplete) throw new UsageError('--objects-only checks objects against the backup record, which an incomplete backup has not: leave out --allow-incomplete');
  const b = await resolveS3Backup(source, { ...o, link: true, metadataOnly: true });
  try {
    if (!b.record) throw new PgbbError('not_a_backup', `${b.repo.where(b.id)} has no backup record: it is incomplete`);
    const links = await backupChain(b.repo, { id: b.id, record: b.record });
    const r = await checkStoredObjects(b.repo, links, o.signal);
    return { ...r, location: b.repo.where(b.id), backups: links.length };
  } finally {
    if (!o.client) b.repo.client.destroy();
  }
}
