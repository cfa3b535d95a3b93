/**
 * A real S3 API server for tests: s3rver (a filesystem-backed implementation
 * of the S3 REST API) in this process, on a free loopback port, storing in a
 * temp directory; stopped (and its directory removed) by stop().
 *
 * What s3rver does not do (DESIGN.md, "Facts measured for the S3 work"): it
 * accepts CRC32C checksums but neither checks nor stores them, and answers
 * ListMultipartUploads with NotImplemented. Tests prove checksums against
 * the bytes they download, and aborted uploads by looking for leftover parts
 * in `dir` (openUploads()) — s3rver has no AbortMultipartUpload either, so
 * the fault proxy answers and records aborts (test/support/s3-fault-proxy.ts).
 */
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import * as path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { makeTempDir } from './run';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const S3rver = require('s3rver');

export interface S3TestServer {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  port: number;
  /** Where s3rver keeps buckets and pending uploads. */
  dir: string;
  bucket: string;
  /** The environment a pgbb child needs to reach it (endpoint, region, credentials). */
  env: NodeJS.ProcessEnv;
  /** An independent client, configured as a user's script would be. */
  client(): S3Client;
  /** Upload ids of multipart uploads not completed (s3rver cannot abort them: see s3-fault-proxy's record of aborts). */
  openUploads(): Promise<string[]>;
  stop(): Promise<void>;
}

/** s3rver's own test credentials: the only pair it accepts. */
export const S3_TEST_KEY = { id: 'S3RVER', secret: 'S3RVER' };

export async function startS3Server(opts: { bucket?: string } = {}): Promise<S3TestServer> {
  // The SDK's Node-version notice would land in the test's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const dir = await makeTempDir('pgbb-s3rver-');
  const bucket = opts.bucket ?? 'pgbb-test';
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket }] });
  const port = ((await server.run()) as AddressInfo).port;
  const http: Server = server.httpServer;
  const endpoint = `http://127.0.0.1:${port}`;
  const env = {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: S3_TEST_KEY.id,
    AWS_SECRET_ACCESS_KEY: S3_TEST_KEY.secret,
    // The test's own profile files must not leak in.
    AWS_CONFIG_FILE: path.join(dir, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-credentials'),
  };
  const clients: S3Client[] = [];
  return {
    endpoint,
    port,
    dir,
    bucket,
    env,
    client() {
      const c = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: S3_TEST_KEY.id, secretAccessKey: S3_TEST_KEY.secret },
      });
      clients.push(c);
      return c;
    },
    openUploads: () => pendingUploads(dir, bucket),
    async stop() {
      for (const c of clients) c.destroy();
      // Idle keep-alive sockets would hold close() open.
      (http as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
      await server.close().catch(() => {});
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * s3rver keeps each multipart upload in `<dir>/<bucket>/._S3rver_uploads/<uploadId>/`
 * (its key in `key`, written at initiation) until it is completed (it does
 * not implement AbortMultipartUpload: 405).
 */
export async function pendingUploadList(dir: string, bucket: string): Promise<{ uploadId: string; key: string; initiated: Date }[]> {
  const root = path.join(dir, bucket, '._S3rver_uploads');
  const names = await fs.readdir(root).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [] as string[];
    throw e;
  });
  return Promise.all(
    names.sort().map(async (uploadId) => {
      const keyFile = path.join(root, uploadId, 'key');
      return { uploadId, key: await fs.readFile(keyFile, 'utf8'), initiated: (await fs.stat(keyFile)).mtime };
    }),
  );
}

async function pendingUploads(dir: string, bucket: string): Promise<string[]> {
  return (await pendingUploadList(dir, bucket)).map((u) => u.uploadId);
}

/** One S3 server for a test file: started by the first test that asks, stopped with `owner`'s cleanup. */
export function sharedS3Server(owner: { onCleanup(fn: () => Promise<unknown>): void }): () => Promise<S3TestServer> {
  let started: Promise<S3TestServer> | undefined;
  return () =>
    (started ??= startS3Server().then((s) => {
      owner.onCleanup(() => s.stop());
      return s;
    }));
}
