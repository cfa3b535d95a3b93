/**
 * One S3 object as a byte Writable: what is written is streamed up as a
 * multipart upload (@aws-sdk/lib-storage), never spooled to disk.
 *
 *   write() ─► [transform] ─► crc32c + size ─► Upload (parts of partSize, queueSize in flight)
 *
 * Memory: at most partSize × (queueSize + 1) + the streams' small buffers —
 * lib-storage assembles each part in memory, and writes wait (backpressure)
 * while the parts in flight are full.
 * The optional `transform` (an encryption, say) sees the bytes before the
 * checksum, so that the recorded CRC32C is of what the store holds and any
 * download can be checked against it before it is decoded.
 * Each part carries a CRC32C (x-amz-checksum-crc32c, composite for the
 * multipart object) that S3 checks on receipt.
 * `finish`: resolves `result` once the upload is complete. A failed request
 * (after the SDK's retries) or `destroy(err)` fails the body stream at
 * once; once lib-storage has settled (no part in flight) the writer sends
 * AbortMultipartUpload itself, and _destroy waits for that, so no upload
 * this writer began is left open by a failure it saw. The error is the
 * first failure, not the abort's.
 */
import { PassThrough, Transform, Writable, pipeline, type Readable } from 'node:stream';
import type { Upload } from '@aws-sdk/lib-storage';
import type { S3Client, StorageClass } from '@aws-sdk/client-s3';
import { s3Sdk, s3Upload } from './sdk';
import { calculate as crc32c } from 'fast-crc32c';
import { crcHex } from './backup-record';
import { s3Error } from './client';
import { PgbbError, UsageError } from '../errors';

/** A per-object byte transform (encryption) on the way up or down. */
export type ObjectTransform = (objectName: string) => Transform;

export interface ObjectWriterOptions {
  client: S3Client;
  bucket: string;
  key: string;
  /** For messages: s3://bucket/key. */
  where: string;
  partSize: number;
  queueSize?: number;
  transform?: Transform | null;
  storageClass?: string;
  sseKmsKeyId?: string;
}

export interface ObjectWritten {
  size: number;
  crc32c: string;
}

export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;

/**
 * Part size for an object of about `expected` bytes: the default, or larger
 * so that it stays under 10,000 parts with a margin (estimates grow while a
 * backup runs). Unknown sizes get the default (80 GB at most per object).
 */
export function partSizeFor(expected: number | null, base = DEFAULT_PART_SIZE): number {
  if (expected === null || !Number.isFinite(expected) || expected <= 0) return base;
  const needed = Math.ceil((expected * 1.5) / (MAX_PARTS - 100));
  const mib = 1024 * 1024;
  return Math.min(MAX_PART_SIZE, Math.max(base, Math.ceil(needed / mib) * mib));
}

/** --s3-part-size: bytes, with an optional k/M/G suffix (powers of 1024); 5 MiB to 5 GiB. */
export function parsePartSize(text: string): number {
  const m = /^\s*(\d+)\s*([kKMG]?)i?B?\s*$/.exec(text);
  if (!m) throw new UsageError(`invalid part size "${text}"`);
  const n = Number(m[1]) * ({ '': 1, k: 1024, K: 1024, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[m[2]];
  if (n < MIN_PART_SIZE || n > MAX_PART_SIZE) throw new UsageError(`part size "${text}" is out of range (5M to 5G)`);
  return n;
}

type Callback = (err?: Error | null) => void;

export class S3ObjectWriter extends Writable {
  private readonly head: Writable;
  private readonly upload: Upload;
  private readonly settled: Promise<ObjectWritten>;
  private size = 0;
  private crc = 0;
  private failure: Error | null = null;
  private done = false;
  result: ObjectWritten | null = null;

  constructor(private readonly o: ObjectWriterOptions) {
    super({ highWaterMark: 1 << 20 });
    const tap = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.size += chunk.length;
        this.crc = crc32c(chunk, this.crc);
        cb(null, chunk);
      },
      highWaterMark: 1 << 20,
    });
    if (o.transform) {
      this.head = o.transform;
      pipeline(o.transform, tap, (err) => {
        if (err) tap.destroy(err);
      });
    } else {
      const pass = new PassThrough({ highWaterMark: 1 << 20 });
      this.head = pass;
      pass.pipe(tap);
      pass.on('error', (err) => tap.destroy(err));
    }
    // lib-storage learns of a failed part only once the body has ended (its other uploaders
    // read on), and an abort that fails replaces the first error: so failures are watched
    // here, stop the body at once, and the upload is aborted by abandon() below.
    const watched = Object.create(o.client) as S3Client;
    watched.send = ((cmd: never, ...rest: never[]) =>
      (o.client.send as (...a: unknown[]) => Promise<unknown>)(cmd, ...rest).catch((err: unknown) => {
        this.failure ??= s3Error(err, 'upload', o.where);
        tap.destroy(this.failure);
        throw err;
      })) as S3Client['send'];
    this.upload = new (s3Upload())({
      client: watched,
      partSize: o.partSize,
      queueSize: o.queueSize ?? 3,
      leavePartsOnError: true,
      params: {
        Bucket: o.bucket,
        Key: o.key,
        Body: tap as Readable,
        ChecksumAlgorithm: 'CRC32C',
        ContentType: 'application/octet-stream',
        ...(o.storageClass ? { StorageClass: o.storageClass as StorageClass } : {}),
        ...(o.sseKmsKeyId ? { ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: o.sseKmsKeyId } : {}),
      },
    });
    this.settled = this.upload.done().then(
      () => {
        this.done = true;
        return (this.result = { size: this.size, crc32c: crcHex(this.crc) });
      },
      async (err) => {
        throw await this.abandon(this.failure ?? s3Error(err, 'upload', o.where));
      },
    );
    this.settled.catch(() => {});
    this.head.on('error', (err) => this.destroy(err));
  }

  /** Aborts the multipart upload, if one was begun; says so in the error when that fails too. */
  private async abandon(err: Error): Promise<Error> {
    const uploadId = (this.upload as unknown as { uploadId?: string }).uploadId;
    if (!uploadId) return err;
    try {
      await this.o.client.send(new (s3Sdk().AbortMultipartUploadCommand)({ Bucket: this.o.bucket, Key: this.o.key, UploadId: uploadId }));
      return err;
    } catch (abortErr) {
      const why = s3Error(abortErr, 'abort the upload of', this.o.where).message;
      return new PgbbError((err as PgbbError).code ?? 's3', `${err.message}; and ${why} (pgbb expire aborts it later)`, { cause: err });
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: Callback): void {
    if (this.head.write(chunk)) return callback();
    this.head.once('drain', () => callback());
  }

  override _final(callback: Callback): void {
    this.head.end();
    this.settled.then(
      () => callback(),
      (err) => callback(err),
    );
  }

  override _destroy(err: Error | null, callback: Callback): void {
    if (this.done) return callback(err);
    // Failing the body makes lib-storage abort the multipart upload; wait until it has.
    this.failure ??= err ?? new Error('upload abandoned');
    this.head.destroy(this.failure);
    this.settled.then(
      () => callback(err),
      () => callback(err),
    );
  }
}
