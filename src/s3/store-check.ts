/**
 * `pgbb verify s3://… --objects-only`: each object a backup's record lists
 * (every link of its chain) asked of the store with HeadObject — never
 * downloaded — and held against the record: present, of the recorded size,
 * and, where both know it, with the x-amz-checksum-crc32c pgbb uploaded
 * (the store checked every part's CRC32C when it received it, and keeps the
 * object's). A store that keeps no checksum (s3rver, some S3-compatible
 * servers) or a record older than storeCrc32c leaves that object checked
 * by size only, and the report says how many.
 *
 * What it cannot see: bytes damaged at rest behind an unchanged checksum
 * header. The full `verify` reads every byte.
 */
import { s3Sdk } from './sdk';
import { isNotFound, s3Error } from './client';
import type { ChainLink } from './chain';
import type { Repository } from './repository';

export interface StoreCheckReport {
  objects: number;
  bytes: number;
  /** Objects whose store checksum matched the record's. */
  checksummed: number;
  /** Objects checked by size only (the store keeps no checksum, or the record has none). */
  sizeOnly: number;
  problems: string[];
}

export async function checkStoredObjects(repo: Repository, links: ChainLink[], signal?: AbortSignal): Promise<StoreCheckReport> {
  const r: StoreCheckReport = { objects: 0, bytes: 0, checksummed: 0, sizeOnly: 0, problems: [] };
  for (const { id, record } of links) {
    for (const obj of record.objects) {
      signal?.throwIfAborted();
      const where = repo.where(id, obj.name);
      let head;
      try {
        head = await repo.client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: repo.loc.bucket, Key: repo.key(id, obj.name), ChecksumMode: 'ENABLED' }), { abortSignal: signal });
      } catch (err) {
        if (!isNotFound(err)) throw s3Error(err, 'read', where);
        r.problems.push(`${where} is missing (the backup's record lists it)`);
        continue;
      }
      r.objects++;
      r.bytes += obj.size;
      if (head.ContentLength !== obj.size) {
        const size = head.ContentLength === undefined ? 'of no size the store will say' : `${head.ContentLength} bytes`;
        r.problems.push(`${where} is ${size}, the backup recorded ${obj.size} bytes: truncated or replaced`);
      } else if (head.ChecksumCRC32C && obj.storeCrc32c) {
        if (head.ChecksumCRC32C === obj.storeCrc32c) r.checksummed++;
        else r.problems.push(`${where} has store checksum ${head.ChecksumCRC32C}, the backup uploaded ${obj.storeCrc32c}: replaced`);
      } else {
        r.sizeOnly++;
      }
    }
  }
  return r;
}
