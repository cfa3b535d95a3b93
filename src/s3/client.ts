/**
 * The S3 client pgbb uses: credentials, region and endpoint from the AWS
 * SDK's standard chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN, AWS_PROFILE and the shared files, web identity,
 * container and instance roles; AWS_REGION; AWS_ENDPOINT_URL[_S3]). With an
 * endpoint set (an S3-compatible server) addressing is path-style, which
 * every such server understands; AWS_S3_FORCE_PATH_STYLE=false turns it off.
 *
 * Retries: the SDK's standard mode with backoff and jitter on 5xx,
 * throttling (SlowDown, 503) and connection resets, up to `maxAttempts`.
 *
 * The SDK's NodeVersionSupportWarning (process.emitWarning on Node < 22) is
 * switched off through the SDK's own variable, before the first client: it
 * would break --json's one-object-per-line stderr.
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { s3Sdk } from './sdk';
import { crc32c } from '../codec/crc32c';
import { PgbbError } from '../errors';

/**
 * The SDK's CRC32C is JavaScript (about a quarter of the CPU an upload
 * took in bench/s3-upload.ts); this is the same checksum through
 * native code (@node-rs/crc32, as everywhere in pgbb), in the SDK's Checksum shape.
 */
export class NativeCrc32c {
  private crc = 0;
  update(data: Uint8Array): void {
    this.crc = crc32c(data, this.crc);
  }
  async digest(): Promise<Uint8Array> {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.crc >>> 0);
    return out;
  }
  reset(): void {
    this.crc = 0;
  }
}

export const DEFAULT_MAX_ATTEMPTS = 6;

export interface S3ClientOptions {
  env?: NodeJS.ProcessEnv;
  maxAttempts?: number;
}

export function makeS3Client(o: S3ClientOptions = {}): S3Client {
  const env = o.env ?? process.env;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  const config: S3ClientConfig = {
    maxAttempts: o.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    retryMode: 'standard',
    checksumAlgorithms: { CRC32C: NativeCrc32c },
    // Without a region the SDK refuses to start; an S3-compatible server rarely cares which.
    ...(env.AWS_REGION || env.AWS_DEFAULT_REGION ? {} : { region: 'us-east-1' }),
    ...(endpoint ? { endpoint, forcePathStyle: env.AWS_S3_FORCE_PATH_STYLE !== 'false' } : {}),
  };
  return new (s3Sdk().S3Client)(config);
}

interface SdkError extends Error {
  $metadata?: { httpStatusCode?: number };
  Code?: string;
  code?: string;
}

/**
 * An SDK failure as one line naming the operation and object. The message
 * is built from the error's name, status and the server's message; S3 never
 * echoes a secret key, and a message that holds any credential value from
 * the environment is dropped rather than shown.
 */
export function s3Error(err: unknown, what: string, where: string): PgbbError {
  if (err instanceof PgbbError) return err;
  const e = err as SdkError;
  const status = e?.$metadata?.httpStatusCode;
  const name = e?.name && e.name !== 'Error' ? e.name : e?.code ?? e?.Code ?? 'error';
  let msg = typeof e?.message === 'string' ? e.message.split('\n')[0].slice(0, 300) : '';
  if (mentionsCredential(msg)) msg = '';
  const code = name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'CredentialsProviderError' ? 'auth' : 's3';
  const detail = [name, status ? `HTTP ${status}` : '', msg && msg !== name ? msg : ''].filter(Boolean).join(', ');
  return new PgbbError(code, `could not ${what} ${where}: ${detail}`, { cause: err });
}

function mentionsCredential(msg: string): boolean {
  for (const k of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ACCESS_KEY_ID']) {
    const v = process.env[k];
    if (v && v.length >= 4 && msg.includes(v)) return true;
  }
  return false;
}

/** True for "no such key" answers (GetObject, HeadObject). */
export function isNotFound(err: unknown): boolean {
  const e = err as SdkError;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}
