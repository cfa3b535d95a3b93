/**
 * One S3 object as a byte Writable, uploaded in parts as it is written.
 *
 *   write() ─► copied into a part buffer ─► full: UploadPart (its CRC32C) ─► buffer free again
 *   final   ─► the last part, CompleteMultipartUpload with every part's CRC32C
 *              (an object smaller than one part: one PutObject)
 *
 * At most `queueSize` parts are in flight; a write waits (backpressure)
 * while every buffer is taken. Buffers are made as needed, at most
 * queueSize + 1, and reused once their part is acknowledged: memory is
 * partSize × (queueSize + 1) and the upload makes no garbage. (lib-storage's
 * chunker concatenates each part anew and leaves its pieces to the
 * collector, which lets ~60 MB of dead buffers pile up before V8 frees
 * them: bench/s3-upload.ts.)
 * Each request is retried by the SDK (standard mode: 5xx, SlowDown,
 * resets); a part that still fails fails the stream at once.
 * `size` and `crc32c` are of every byte written; `storeChecksum` is the
 * x-amz-checksum-crc32c the store keeps for the object (for a multipart
 * upload S3's composite form: the CRC32C of the parts' CRC32Cs, "-N"), so
 * `pgbb verify --objects-only` can compare without downloading.
 * `partsSent` resolves once every byte is with the store and the part
 * buffers are back in the pool, before CompleteMultipartUpload: the next
 * object can begin while the store assembles this one (s3rver took 0.4–0.7 s
 * for a 73 MB archive, bench/README.md).
 * destroy (any failure, or abandoned): waits for the parts in flight, then
 * sends AbortMultipartUpload, so no upload this writer began is left open
 * by a failure it saw; if the abort fails too, the error says so.
 */
import { Writable } from 'node:stream';
import type { CompletedPart, S3Client, StorageClass } from '@aws-sdk/client-s3';
import { crc32c } from '../codec/crc32c';
import { s3Sdk } from './sdk';
import { s3Error } from './client';
import { PgbbError } from '../errors';
import { crc32cCombine } from '../codec/chunkmap/crc32c-combine';

export interface MultipartOptions {
  client: S3Client;
  bucket: string;
  key: string;
  /** For messages: s3://bucket/key. */
  where: string;
  partSize: number;
  queueSize: number;
  storageClass?: string;
  sseKmsKeyId?: string;
  /** Part buffers shared with the other objects of one backup (default: this upload's own). */
  buffers?: PartBuffers;
}

/**
 * Part buffers handed from one object's upload to the next (a backup's
 * archives are uploaded one after another): without it each archive made
 * its own while the last one's waited for the collector.
 */
export class PartBuffers {
  private readonly spare: Buffer[] = [];
  constructor(private readonly keep: number) {}

  take(size: number): Buffer {
    const i = this.spare.findIndex((b) => b.length === size);
    return i < 0 ? Buffer.allocUnsafe(size) : this.spare.splice(i, 1)[0];
  }

  give(bufs: Buffer[]): void {
    for (const b of bufs) if (this.spare.length < this.keep) this.spare.push(b);
  }
}

export const MAX_PARTS = 10_000;

type Callback = (err?: Error | null) => void;

/**
 * What S3 keeps as an object's x-amz-checksum-crc32c: one PutObject's is the
 * object's CRC32C; a multipart upload's is composite, the CRC32C of its
 * parts' CRC32Cs (4 bytes each, big-endian, in order) followed by "-N".
 */
export function storeChecksumOf(partCrcs: number[], objectCrc: number): string {
  if (partCrcs.length === 0) return crcBase64(objectCrc);
  const joined = Buffer.alloc(4 * partCrcs.length);
  partCrcs.forEach((c, i) => joined.writeUInt32BE(c >>> 0, 4 * i));
  return `${crcBase64(crc32c(joined))}-${partCrcs.length}`;
}

function crcBase64(crc: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc >>> 0);
  return b.toString('base64');
}

/**
 * The body goes unsigned (x-amz-content-sha256: UNSIGNED-PAYLOAD, as the SDK
 * itself does for stream bodies): its CRC32C header is signed and checked by
 * the store, and SHA-256 of every byte was two thirds of an upload's CPU
 * (bench/s3-upload.ts against a discarding server). TLS covers the rest.
 */
function unsignedPayload<C extends { middlewareStack: { add: (...a: never[]) => void } }>(cmd: C): C {
  type Args = { request: { headers: Record<string, string> } };
  const add = cmd.middlewareStack.add as unknown as (mw: (next: (a: Args) => unknown) => (a: Args) => unknown, o: { step: string; name: string }) => void;
  add(
    (next) => (args) => {
      args.request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'pgbbUnsignedPayload' },
  );
  return cmd;
}

export class MultipartUpload extends Writable {
  size = 0;
  /** Of the object: the parts' CRCs combined, so each byte is checksummed once. */
  private objectCrc = 0;
  private partCrc = 0;
  /** Every sent part's CRC32C, in order (4 bytes a part, 10,000 at most). */
  private readonly partCrcs: number[] = [];
  private readonly free: Buffer[] = [];
  private made = 0;
  private current: Buffer | null = null;
  private fill = 0;
  private begun: Promise<string> | null = null;
  private uploadId: string | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly parts: CompletedPart[] = [];
  private partNumber = 0;
  private failure: Error | null = null;
  /** A write waiting for a buffer to come free. */
  private waiting: (() => void) | null = null;
  private completed = false;

  private readonly pool: PartBuffers;
  /** Resolves once every part is acknowledged and the buffers are released (never on failure: `finished` reports that). */
  readonly partsSent: Promise<void>;
  private onPartsSent: () => void = () => {};

  constructor(private readonly o: MultipartOptions) {
    super({ highWaterMark: 1 << 20 });
    this.pool = o.buffers ?? new PartBuffers(0);
    this.partsSent = new Promise((resolve) => (this.onPartsSent = resolve));
  }

  /** Once no part is in flight: every buffer back to the pool. */
  private release(): void {
    if (this.current) this.free.push(this.current);
    this.current = null;
    this.pool.give(this.free.splice(0));
  }

  private get objectParams() {
    return {
      Bucket: this.o.bucket,
      Key: this.o.key,
      ContentType: 'application/octet-stream',
      ...(this.o.storageClass ? { StorageClass: this.o.storageClass as StorageClass } : {}),
      ...(this.o.sseKmsKeyId ? { ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: this.o.sseKmsKeyId } : {}),
    };
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: Callback): void {
    this.size += chunk.length;
    this.copyIn(chunk, 0, callback);
  }

  private copyIn(chunk: Buffer, off: number, callback: Callback): void {
    while (off < chunk.length) {
      if (this.failure) return callback(this.failure);
      if (!this.current) {
        const b = this.free.pop() ?? (this.made <= this.o.queueSize ? (this.made++, this.pool.take(this.o.partSize)) : null);
        if (!b) {
          this.waiting = () => this.copyIn(chunk, off, callback);
          return;
        }
        this.current = b;
        this.fill = 0;
      }
      const n = chunk.copy(this.current, this.fill, off);
      this.partCrc = crc32c(this.current.subarray(this.fill, this.fill + n), this.partCrc);
      off += n;
      this.fill += n;
      if (this.fill === this.o.partSize) this.sendPart();
    }
    callback();
  }

  private begin(): Promise<string> {
    this.begun ??= this.o.client
      .send(new (s3Sdk().CreateMultipartUploadCommand)({ ...this.objectParams, ChecksumAlgorithm: 'CRC32C' }))
      .then((r) => {
        if (!r.UploadId) throw new PgbbError('s3', `could not upload ${this.o.where}: the store began no multipart upload (no UploadId)`);
        return (this.uploadId = r.UploadId);
      });
    return this.begun;
  }

  private sendPart(): void {
    const buf = this.current!;
    const body = buf.subarray(0, this.fill);
    this.current = null;
    this.fill = 0;
    const number = ++this.partNumber;
    if (number > MAX_PARTS) return this.fail(new PgbbError('s3', `could not upload ${this.o.where}: it takes more than ${MAX_PARTS} parts of ${this.o.partSize} bytes (give a larger --s3-part-size)`));
    const checksum = crcBase64(this.partCrc);
    this.objectCrc = crc32cCombine(this.objectCrc, this.partCrc, body.length);
    this.partCrcs.push(this.partCrc);
    this.partCrc = 0;
    const sent: Promise<void> = this.begin()
      .then((UploadId) =>
        this.o.client.send(
          unsignedPayload(
            new (s3Sdk().UploadPartCommand)({ Bucket: this.o.bucket, Key: this.o.key, UploadId, PartNumber: number, Body: body, ChecksumAlgorithm: 'CRC32C', ChecksumCRC32C: checksum }),
          ),
        ),
      )
      .then((r) => {
        this.parts[number - 1] = { PartNumber: number, ETag: r.ETag, ChecksumCRC32C: checksum };
      })
      .catch((err) => this.fail(s3Error(err, 'upload', this.o.where)))
      .finally(() => {
        this.inFlight.delete(sent);
        this.free.push(buf);
        const w = this.waiting;
        this.waiting = null;
        w?.();
      });
    this.inFlight.add(sent);
  }

  /** CRC32C of every byte written (once finished). */
  get crc(): number {
    return this.objectCrc;
  }

  /** The checksum the store reports for the finished object (HeadObject with ChecksumMode ENABLED). */
  get storeChecksum(): string {
    return storeChecksumOf(this.partCrcs, this.objectCrc);
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.destroy(err);
  }

  override _final(callback: Callback): void {
    this.complete().then(
      () => callback(),
      (err) => callback(this.failure ?? s3Error(err, 'upload', this.o.where)),
    );
  }

  private async complete(): Promise<void> {
    const sdk = s3Sdk();
    if (this.partNumber === 0) {
      const body = this.current ? this.current.subarray(0, this.fill) : Buffer.alloc(0);
      this.objectCrc = this.partCrc;
      await this.o.client.send(unsignedPayload(new sdk.PutObjectCommand({ ...this.objectParams, Body: body, ChecksumAlgorithm: 'CRC32C', ChecksumCRC32C: crcBase64(this.objectCrc) })));
      this.completed = true;
      this.release();
      this.onPartsSent();
    } else {
      if (this.fill > 0) this.sendPart();
      while (this.inFlight.size) await Promise.all(this.inFlight);
      if (this.failure) throw this.failure;
      const UploadId = await this.begin();
      // The buffers hold nothing the Complete needs (it names parts by number, ETag and CRC).
      this.release();
      this.onPartsSent();
      await this.o.client.send(new sdk.CompleteMultipartUploadCommand({ Bucket: this.o.bucket, Key: this.o.key, UploadId, MultipartUpload: { Parts: this.parts } }));
      this.completed = true;
    }
  }

  override _destroy(err: Error | null, callback: Callback): void {
    this.failure ??= err ?? new Error('upload abandoned');
    const w = this.waiting;
    this.waiting = null;
    w?.();
    if (this.completed) return callback(err);
    this.abandon(err).then(callback, callback);
  }

  /** Once no part is in flight: AbortMultipartUpload, if one was begun; says so in the error when that fails too. */
  private async abandon(err: Error | null): Promise<Error | null> {
    while (this.inFlight.size) await Promise.all(this.inFlight);
    this.release();
    const id = this.uploadId ?? (this.begun ? await this.begun.catch(() => null) : null);
    if (!id) return err;
    try {
      await this.o.client.send(new (s3Sdk().AbortMultipartUploadCommand)({ Bucket: this.o.bucket, Key: this.o.key, UploadId: id }));
      return err;
    } catch (abortErr) {
      const why = s3Error(abortErr, 'abort the upload of', this.o.where).message;
      const first = err ?? new PgbbError('s3', `the upload of ${this.o.where} was abandoned`);
      return new PgbbError((first as PgbbError).code ?? 's3', `${first.message}; and ${why} (pgbb expire aborts it later)`, { cause: first });
    }
  }
}
