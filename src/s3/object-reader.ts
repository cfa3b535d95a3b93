/**
 * One stored object read back, checked: its bytes counted and CRC32C'd as
 * they stream, against what the backup record says (size, crc32c). More
 * bytes than recorded fail at once (a planted huge object is never read
 * whole); fewer, or a different checksum, fail at the end — before the
 * consumer has seen the end of the object, so a restore never completes on
 * a damaged object. Without a record (an incomplete backup, read by
 * request) only the listed size bounds it.
 */
import { Transform, type Readable } from 'node:stream';
import { s3Sdk } from './sdk';
import { crc32c } from '../codec/crc32c';
import { ChecksumError } from '../errors';
import { crcHex } from './backup-record';
import { s3Error } from './client';
import type { Repository } from './repository';

export interface Expected {
  size: number;
  /** Null: not known (no record). */
  crc32c: string | null;
}

export function checkedObject(repo: Repository, id: string, name: string, expected: Expected): Readable {
  const where = repo.where(id, name);
  let size = 0;
  let crc = 0;
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > expected.size) return cb(new ChecksumError(`${where} holds more than the ${expected.size} bytes recorded for it`));
      crc = crc32c(chunk, crc);
      cb(null, chunk);
    },
    flush(cb) {
      if (size !== expected.size) return cb(new ChecksumError(`${where} is ${size} bytes, the backup recorded ${expected.size}: truncated or replaced`));
      if (expected.crc32c !== null && crcHex(crc) !== expected.crc32c) {
        return cb(new ChecksumError(`${where} has CRC32C ${crcHex(crc)}, the backup recorded ${expected.crc32c}: damaged or replaced`));
      }
      cb();
    },
    highWaterMark: 1 << 20,
  });
  repo.client.send(new (s3Sdk().GetObjectCommand)({ Bucket: repo.loc.bucket, Key: repo.key(id, name) })).then(
    (r) => {
      const body = r.Body as Readable | undefined;
      if (!body) return check.destroy(s3Error(new Error('empty response'), 'read', where));
      body.on('error', (err) => check.destroy(s3Error(err, 'read', where)));
      check.once('close', () => body.destroy());
      body.pipe(check);
    },
    (err) => check.destroy(s3Error(err, 'read', where)),
  );
  return check;
}
