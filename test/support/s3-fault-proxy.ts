/**
 * A fault-injecting HTTP proxy in front of the test S3 server: forwards
 * every request as it is, except the ones a rule picks, which it answers
 * itself — 503 SlowDown, a connection reset halfway through the body, a
 * 200 whose body is an S3 error, a hold (for kill -9 mid-upload tests), or
 * a delay (the request read whole and passed on `ms` later: the store has it
 * only then, and answers after).
 * AbortMultipartUpload, which s3rver lacks, is answered here and recorded.
 * Counts what it did, so a test can tell that its faults happened.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pendingUploadList } from './s3-server';

export type S3Op = 'AbortMultipartUpload' | 'UploadPart' | 'CompleteMultipartUpload' | 'CreateMultipartUpload' | 'PutObject' | 'other';
export type Fault = 'slowdown' | 'reset' | 'error-200' | 'hold' | 'delay';

export interface FaultRule {
  op: S3Op;
  fault: Fault;
  /** Which requests of that op (1-based, counted per op); default every one. */
  nth?: number[];
  /** Only for keys matching this. */
  key?: RegExp;
  /** For 'delay': how long the request is held before it goes on; for 'slowdown' and 'error-200': how long their answer waits. */
  ms?: number;
}

/** One request as the proxy saw it: when it came and when its answer was sent (performance.now() ms; NaN until then). */
export interface ProxiedRequest {
  op: S3Op;
  key: string;
  began: number;
  answered: number;
}

export interface FaultProxy {
  endpoint: string;
  /** Requests seen per op. */
  seen: Record<string, number>;
  /** Faults injected, as "op:fault". */
  injected: string[];
  /** For each UploadPart forwarded: the CRC32C it carried (header or announced trailer), or null. */
  partChecksums: (string | null)[];
  /** Upload ids pgbb aborted (answered here with 204: s3rver has no AbortMultipartUpload). */
  aborted: string[];
  /** For each object begun (PutObject, CreateMultipartUpload): its key and the SSE-KMS key id it asked for, or null. */
  kmsKeys: { key: string; kmsKeyId: string | null }[];
  /** Every request, in the order they came. */
  log: ProxiedRequest[];
  /** Resolves at the first held request. */
  held: Promise<void>;
  setRules(rules: FaultRule[]): void;
  stop(): Promise<void>;
}

function opOf(req: http.IncomingMessage): S3Op {
  const q = new URL(req.url ?? '/', 'http://x').searchParams;
  if (req.method === 'DELETE' && q.has('uploadId')) return 'AbortMultipartUpload';
  if (req.method === 'PUT' && q.has('partNumber') && q.has('uploadId')) return 'UploadPart';
  if (req.method === 'POST' && q.has('uploadId')) return 'CompleteMultipartUpload';
  if (req.method === 'POST' && q.has('uploads')) return 'CreateMultipartUpload';
  if (req.method === 'PUT') return 'PutObject';
  return 'other';
}

async function listUploads(store: { dir: string; bucket: string }, prefix: string, aborted: string[], res: http.ServerResponse): Promise<void> {
  const open = (await pendingUploadList(store.dir, store.bucket)).filter((u) => !aborted.includes(u.uploadId) && u.key.startsWith(prefix));
  const uploads = open.map((u) => `<Upload><Key>${u.key}</Key><UploadId>${u.uploadId}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`).join('');
  res.writeHead(200, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${store.bucket}</Bucket><IsTruncated>false</IsTruncated>${uploads}</ListMultipartUploadsResult>`);
}

const xmlError = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault</RequestId></Error>`;

/** Reads the request's body to its end, then answers with `body`. */
function answerAfterBody(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: string, delayMs = 0): void {
  req.resume();
  req.on('end', () =>
    setTimeout(() => {
      res.writeHead(status, { 'content-type': 'application/xml' });
      res.end(body);
    }, delayMs),
  );
}

/**
 * `store`: the s3rver directory and bucket behind the proxy, so that
 * ListMultipartUploads (NotImplemented in s3rver) is answered from its
 * pending uploads, less those aborted here, as a store that aborts would.
 */
export async function startFaultProxy(upstream: string, rules: FaultRule[] = [], store?: { dir: string; bucket: string }): Promise<FaultProxy> {
  const up = new URL(upstream);
  const seen: Record<string, number> = {};
  const injected: string[] = [];
  const aborted: string[] = [];
  const partChecksums: (string | null)[] = [];
  const kmsKeys: { key: string; kmsKeyId: string | null }[] = [];
  const log: ProxiedRequest[] = [];
  let current = rules;
  let onHeld: () => void = () => {};
  const held = new Promise<void>((r) => (onHeld = r));
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const op = opOf(req);
    const n = (seen[op] = (seen[op] ?? 0) + 1);
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const entry: ProxiedRequest = { op, key: decodeURIComponent(path), began: performance.now(), answered: NaN };
    log.push(entry);
    res.on('finish', () => (entry.answered = performance.now()));
    if (op === 'PutObject' || op === 'CreateMultipartUpload') {
      const id = req.headers['x-amz-server-side-encryption-aws-kms-key-id'];
      kmsKeys.push({ key: decodeURIComponent(path), kmsKeyId: typeof id === 'string' ? id : null });
    }
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    if (store && req.method === 'GET' && q.has('uploads')) return void listUploads(store, q.get('prefix') ?? '', aborted, res);
    if (op === 'AbortMultipartUpload') {
      aborted.push(new URL(req.url ?? '/', 'http://x').searchParams.get('uploadId') ?? '');
      req.resume();
      res.writeHead(204);
      res.end();
      return;
    }
    let delay = 0;
    const rule = current.find((r) => r.op === op && (!r.nth || r.nth.includes(n)) && (!r.key || r.key.test(decodeURIComponent(path))));
    if (rule) {
      injected.push(`${op}:${rule.fault}`);
      switch (rule.fault) {
        case 'slowdown':
          return answerAfterBody(req, res, 503, xmlError('SlowDown', 'Please reduce your request rate.'), rule.ms);
        case 'reset': {
          let got = 0;
          const want = Number(req.headers['content-length'] ?? 0) / 2;
          req.on('data', (c: Buffer) => {
            got += c.length;
            if (got >= want) req.socket.destroy();
          });
          req.on('end', () => req.socket.destroy());
          return;
        }
        case 'error-200':
          return answerAfterBody(req, res, 200, xmlError('InternalError', 'We encountered an internal error. Please try again.'), rule.ms);
        case 'hold':
          onHeld();
          return; // never answered: the client is killed meanwhile
        case 'delay':
          delay = rule.ms ?? 500;
          break;
      }
    }
    if (op === 'UploadPart') {
      const h = req.headers['x-amz-checksum-crc32c'];
      const trailer = String(req.headers['x-amz-trailer'] ?? '');
      partChecksums.push(typeof h === 'string' ? h : trailer.toLowerCase() === 'x-amz-checksum-crc32c' ? 'trailer' : null);
    }
    const forward = (body?: Buffer) => {
      const fwd = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      fwd.on('error', () => res.destroy());
      if (body) fwd.end(body);
      else req.pipe(fwd);
    };
    if (delay === 0) return forward();
    // Held whole, then passed on whether or not the client is still there (as a store that got it late).
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => setTimeout(() => forward(Buffer.concat(body)), delay));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    injected,
    aborted,
    kmsKeys,
    partChecksums,
    log,
    held,
    setRules: (r) => void (current = r),
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
