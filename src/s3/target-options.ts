/** What an s3:// backup target takes beyond the URL (the CLI's --s3-* options, or a script's). */
import type { S3Client } from '@aws-sdk/client-s3';
import type { ObjectTransform } from './object-writer';
import type { DecryptKey } from '../crypto/age-keys';

export interface S3TargetOptions {
  /** STANDARD, STANDARD_IA, GLACIER_IR, … passed through to every object. */
  storageClass?: string;
  /** SSE-KMS: the key id or ARN; objects are written with ServerSideEncryption aws:kms. */
  sseKmsKeyId?: string;
  /**
   * A per-object byte transform applied before upload (an encryption,
   * transforms/encrypt*), recorded by `transformName`; a restore or verify
   * is given the inverse.
   */
  transform?: ObjectTransform;
  transformName?: string;
  /** Smallest part size in bytes (default 8 MiB, at least 5 MiB). */
  partSize?: number;
  /** Parts in flight per object (default 3; peak RSS 120 MB for a 2 GiB upload with 8 MiB parts: bench/s3-upload.ts). */
  queueSize?: number;
  /** Default: one made from the standard AWS chain. */
  client?: S3Client;
  /** --incremental-from: `latest`, a backup id, or s3://…/<id> (or …/latest) in the same repository; upload only what changed since it. */
  incrementalFrom?: string;
  /** --max-chain: incrementals a chain may hold on top of its full backup (default 7, src/s3/chain.ts). */
  maxChain?: number;
  /**
   * With incrementalFrom, of an encrypted parent: the key that reads its chunk
   * map (the passphrase the backup encrypts with, or the identity of one of
   * its recipients).
   */
  parentKey?: DecryptKey;
}
