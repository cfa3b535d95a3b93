/**
 * One S3 object as a byte Writable: what is written is streamed up as a
 * multipart upload (src/s3/multipart-upload.ts), never spooled to disk.
 *
 *   write() ─► [transform] ─► multipart upload (parts of partSize, queueSize in flight; size, CRC32C)
 *
 * Memory: at most partSize × (queueSize + 1) + the streams' small buffers.
 * The optional `transform` (an encryption, say) sees the bytes before the
 * checksum, so that the recorded CRC32C is of what the store holds and any
 * download can be checked against it before it is decoded.
 * `finish`: `result` is set once the upload is complete; `partsSent`
 * resolves before that, once the store has every byte (the part buffers are
 * free for the next object while the store assembles this one). A failed request
 * (after the SDK's retries) or `destroy(err)` fails the upload, which
 * aborts itself once no part is in flight; _destroy waits for that, so no
 * upload this writer began is left open by a failure it saw. The error is
 * the first failure, not the abort's.
 */
import { pipeline, Writable, type Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { crcHex } from './backup-record';
import { MAX_PARTS, MultipartUpload, type PartBuffers } from './multipart-upload';
import { UsageError } from '../errors';

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
  /** Shared with the backup's other objects (src/s3/multipart-upload.ts). */
  buffers?: PartBuffers;
}

export interface ObjectWritten {
  size: number;
  crc32c: string;
  /** The checksum the store keeps for it (src/s3/multipart-upload.ts: storeChecksumOf). */
  storeCrc32c: string;
}

export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
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
  private readonly upload: MultipartUpload;
  result: ObjectWritten | null = null;
  /** Every byte is with the store and the part buffers are free; the Complete may still be on its way. */
  readonly partsSent: Promise<void>;

  constructor(o: ObjectWriterOptions) {
    super({ highWaterMark: 1 << 20 });
    this.upload = new MultipartUpload({ ...o, queueSize: o.queueSize ?? 3 });
    this.upload.on('error', (err) => this.destroy(err));
    this.partsSent = this.upload.partsSent;
    if (o.transform) {
      this.head = o.transform;
      o.transform.on('error', (err) => this.destroy(err));
      pipeline(o.transform, this.upload, () => {});
    } else {
      this.head = this.upload;
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: Callback): void {
    if (this.head.write(chunk)) return callback();
    this.head.once('drain', () => callback());
  }

  override _final(callback: Callback): void {
    this.head.end();
    finished(this.upload).then(() => {
      this.result = { size: this.upload.size, crc32c: crcHex(this.upload.crc), storeCrc32c: this.upload.storeChecksum };
      callback();
    }, callback);
  }

  override _destroy(err: Error | null, callback: Callback): void {
    if (this.result) return callback(err);
    const failure = err ?? new Error('upload abandoned');
    // The upload aborts itself once its parts have settled: wait for that.
    const done = () => callback(err);
    if (this.upload.closed) return done();
    this.upload.once('close', done);
    if (this.head !== this.upload) this.head.destroy(failure);
    this.upload.destroy(failure);
  }
}
