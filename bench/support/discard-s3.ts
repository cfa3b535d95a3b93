/**
 * A loopback HTTP server that answers the S3 calls an S3 sink makes
 * (ListObjectsV2, PutObject, Create/UploadPart/CompleteMultipartUpload,
 * DeleteObjects) and discards every body: what an upload costs pgbb alone,
 * without s3rver's own work (it writes each part to disk, then copies the
 * parts into the object). Bench only: it checks no signature and keeps nothing.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DiscardS3 {
  endpoint: string;
  /** Body bytes received. */
  bytes(): number;
  stop(): Promise<void>;
}

const XML = { 'content-type': 'application/xml' };

export async function startDiscardS3(): Promise<DiscardS3> {
  let bytes = 0;
  let uploads = 0;
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    const [, bucket, ...rest] = url.pathname.split('/');
    const key = rest.join('/');
    if (req.method === 'GET') {
      return res.writeHead(200, XML).end(`<ListBucketResult><Name>${bucket}</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>`);
    }
    if (req.method === 'POST' && q.has('uploads')) {
      return res.writeHead(200, XML).end(`<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><UploadId>u${++uploads}</UploadId></InitiateMultipartUploadResult>`);
    }
    if (req.method === 'POST' && q.has('uploadId')) {
      return res.writeHead(200, XML).end(`<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><ETag>"e"</ETag></CompleteMultipartUploadResult>`);
    }
    if (req.method === 'POST' && q.has('delete')) return res.writeHead(200, XML).end('<DeleteResult></DeleteResult>');
    res.writeHead(200, { etag: '"e"' }).end();
  };
  const server = createServer((req, res) => {
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => answer(req, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bytes: () => bytes,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
