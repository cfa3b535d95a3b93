/**
 * The AWS SDK, loaded on first use: requiring @aws-sdk/client-s3 (with
 * @aws-sdk/lib-storage, as it once was) took ~130 ms at every start (a third of `pgbb
 * --version`), paid by every command whether it touches S3 or not.
 * Everything else imports only their types.
 */
import type * as ClientS3 from '@aws-sdk/client-s3';

let clientS3: typeof ClientS3 | null = null;

export function s3Sdk(): typeof ClientS3 {
  return (clientS3 ??= require('@aws-sdk/client-s3') as typeof ClientS3);
}

