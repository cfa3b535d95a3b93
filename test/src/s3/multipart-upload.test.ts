/**
 * MultipartUpload against a real S3 API server (s3rver on loopback): objects
 * of every shape around the part size (empty, under one part, exactly one,
 * an exact multiple, a short last part) written in uneven pieces come back
 * byte for byte, with the size and CRC32C of what was written (and the
 * checksum S3 keeps, composite for multipart, as verify --objects-only compares it); one
 * abandoned mid-way sends AbortMultipartUpload (s3rver refuses it, so the
 * error says the upload is left for expire).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { calculate as crc32c } from 'fast-crc32c';
import { startS3Server, type S3TestServer } from '../../support/s3-server';
import { MultipartUpload } from '../../../src/s3/multipart-upload';
import { MIN_PART_SIZE } from '../../../src/s3/object-writer';

let s3: S3TestServer;
before(async () => (s3 = await startS3Server()));
after(() => s3.stop());

const part = MIN_PART_SIZE;

function upload(key: string, queueSize = 2): MultipartUpload {
  return new MultipartUpload({ client: s3.client(), bucket: s3.bucket, key, where: `s3://${s3.bucket}/${key}`, partSize: part, queueSize });
}

async function write(w: MultipartUpload, data: Buffer, piece: number): Promise<void> {
  for (let off = 0; off < data.length; off += piece) {
    if (!w.write(data.subarray(off, off + piece))) await new Promise((r) => w.once('drain', r));
  }
  await new Promise<void>((resolve, reject) => {
    w.once('error', reject);
    w.end(() => resolve());
  });
}

/** As S3 documents its CRC32C: the object's for one PutObject; for a multipart upload the CRC32C of the parts' (4 bytes each), then "-N". */
function s3Checksum(data: Buffer): string {
  const b64 = (crc: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(crc >>> 0);
    return b.toString('base64');
  };
  if (data.length < part) return b64(crc32c(data));
  const crcs: Buffer[] = [];
  for (let off = 0; off < data.length; off += part) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc32c(data.subarray(off, off + part)) >>> 0);
    crcs.push(c);
  }
  return `${b64(crc32c(Buffer.concat(crcs)))}-${crcs.length}`;
}

test('objects around the part size round trip exactly, with the size and CRC32C written', async () => {
  for (const size of [0, 1000, part, 2 * part, 2 * part + 3]) {
    const key = `shapes/${size}`;
    const data = randomBytes(size);
    const w = upload(key);
    await write(w, data, 100_003);
    assert.equal(w.size, size);
    assert.equal(w.crc >>> 0, crc32c(data) >>> 0);
    assert.equal(w.storeChecksum, s3Checksum(data), `${size} bytes: the checksum S3 keeps`);
    const got = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(data), `${size} bytes come back as written`);
  }
  assert.deepEqual(await s3.openUploads(), []);
});

test('an upload abandoned mid-way is aborted, and says so when the store refuses the abort', async () => {
  const w = upload('abandoned/x', 1);
  const failed = new Promise<Error>((resolve) => w.once('error', resolve));
  w.write(randomBytes(part + 10));
  // A full part was sent at once, so the upload has begun (its Create may still be in flight: abandon waits for it).
  w.destroy(new Error('the backup failed'));
  const err = await failed;
  assert.match(err.message, /^the backup failed; and could not abort the upload of s3:\/\/\S+\/abandoned\/x: .*\(pgbb expire aborts it later\)$/);
  await assert.rejects(s3.client().send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'abandoned/x' })), 'no object was made');
});
