/**
 * Peak memory of manifestVerify (transforms/manifest-verify.ts) against file
 * count, printed, not asserted: a synthetic backup of N small files (one
 * shared 100-byte body, so the stream itself costs nothing per file) and its
 * manifest, in 256 KiB `manifest` pieces as a source sends them, through
 * manifest-verify alone into a sink that drops everything. Each N runs in a
 * child process of its own, which reports its peak RSS (VmHWM from
 * /proc/self/status) when done.
 *
 *   node dist/bench/manifest-memory.js [N ...]      default: 1000 100000
 *
 * The manifest is written here (PostgreSQL's layout, SHA-256 along), not by
 * src/codec, so that the same script measures older trees too.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32c } from '@node-rs/crc32';
import type { BackupEvent } from '../src/events';
import { manifestVerify } from '../transforms/manifest-verify';

const PIECE = 256 * 1024;
const BODY = Buffer.alloc(100, 0x61);
const MTIME = new Date(Date.UTC(2025, 2, 1, 10, 0, 0));
const pathOf = (i: number) => `base/${16384 + (i % 64)}/${100000 + i}`;

function crcHex(): string {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(crc32c(BODY) >>> 0);
  return b.toString('hex');
}

/** The manifest for `n` files, in pieces of PIECE bytes, made as they are wanted. */
function* manifestPieces(n: number): Generator<Buffer> {
  const crc = crcHex();
  const hash = createHash('sha256');
  let text = '{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [';
  for (let i = 0; i < n; i++) {
    text += `${i ? ',\n' : '\n'}{ "Path": "${pathOf(i)}", "Size": ${BODY.length}, "Last-Modified": "2025-03-01 10:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "${crc}" }`;
    if (text.length >= PIECE) {
      const b = Buffer.from(text.slice(0, PIECE));
      text = text.slice(PIECE);
      hash.update(b);
      yield b;
    }
  }
  text += '\n],\n"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n],\n';
  hash.update(text);
  const rest = Buffer.from(`${text}"Manifest-Checksum": "${hash.digest('hex')}"}\n`);
  for (let at = 0; at < rest.length; at += PIECE) yield rest.subarray(at, at + PIECE);
}

function* events(n: number): Generator<BackupEvent> {
  yield {
    type: 'start', serverVersion: 150018, systemIdentifier: '1', timeline: 1, startLsn: '0/2000028', tablespaces: [],
    walSegmentSize: 16 << 20, blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'bench', totalBytes: null,
  };
  yield { type: 'archive', kind: 'base', name: 'base', location: '' };
  for (let i = 0; i < n; i++) {
    yield { type: 'entry', path: pathOf(i), kind: 'file', size: BODY.length, mode: 0o600, mtime: MTIME };
    yield { type: 'data', offset: 0, chunk: BODY };
    yield { type: 'entry-end' };
  }
  yield { type: 'archive-end' };
  for (const data of manifestPieces(n)) yield { type: 'manifest', data };
  yield { type: 'end', endLsn: '0/2000100', timeline: 1 };
}

function peakKiB(): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : Math.round(process.memoryUsage().rss / 1024);
}

async function child(n: number): Promise<void> {
  const t0 = process.hrtime.bigint();
  const v = manifestVerify();
  await pipeline(Readable.from(events(n), { objectMode: true }), v, new Writable({ objectMode: true, write: (_e, _c, cb) => cb() }));
  if (!v.result?.checked || v.result.files !== n) throw new Error(`verified ${JSON.stringify(v.result)}, expected ${n} files`);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const peak = peakKiB();
  if (process.env.PGBB_BENCH_DETAIL && (globalThis as { gc?: () => void }).gc) {
    (globalThis as { gc?: () => void }).gc!();
    const m = process.memoryUsage();
    process.stderr.write(`after gc: heap ${(m.heapUsed / 1048576).toFixed(1)} of ${(m.heapTotal / 1048576).toFixed(1)} MiB, external ${(m.external / 1048576).toFixed(1)} MiB\n`);
  }
  process.stdout.write(JSON.stringify({ files: n, peakKiB: peak, ms: Math.round(ms) }) + "\n");
}

function parent(counts: number[]): void {
  const rows = counts.map((n) => JSON.parse(execFileSync(process.execPath, [__filename, 'child', String(n)], { encoding: 'utf8' })) as { files: number; peakKiB: number; ms: number });
  const base = rows[0].peakKiB;
  console.log('files      peak RSS (MiB)   vs first   time (ms)');
  for (const r of rows) {
    console.log(`${String(r.files).padEnd(10)} ${(r.peakKiB / 1024).toFixed(1).padStart(14)}   ${`${(((r.peakKiB - base) / base) * 100).toFixed(1)}%`.padStart(8)}   ${String(r.ms).padStart(9)}`);
  }
}

if (process.argv[2] === 'child') void child(Number(process.argv[3]));
else parent(process.argv.length > 2 ? process.argv.slice(2).map(Number) : [1000, 100000]);
