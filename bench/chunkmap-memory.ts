/**
 * Memory of decoding a large chunk map (src/codec/chunkmap/chunk-map.ts), printed,
 * not asserted.
 *
 * Builds a map of about 3 million chunks (as a 3 TB cluster at 1 MiB chunks,
 * or many small relations) and encodes it (60-150 MB), then in a fresh
 * process reads it and decodes it, and prints how much the decode added to
 * the RSS at its peak (getrusage) and after, against the encoded size.
 * Three shapes: few large files (1 GiB segments), many small files (3
 * chunks each) and one-chunk files, since the cost per file and the cost per
 * chunk differ.
 *
 * Then recording one (transforms/chunk-map-build.ts) as a backup of many
 * small files flows, and sending it as the map member: the peak RSS that
 * adds, per file. `--root` points at another build's dist/ to compare (the
 * build half uses only chunkMapBuild's public shape).
 *
 *   node dist/bench/chunkmap-memory.js [chunks] [--files N] [--root DIST]
 */
import { execFileSync } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomFillSync } from 'node:crypto';
import { decodeChunkMap, encodeChunkMap, HASH_BYTES, type ChunkMap } from '../src/codec/chunkmap/chunk-map';
import { ChunkListBuilder } from '../src/codec/chunkmap/chunk-hasher';

const CHUNK_SIZE = 1024 * 1024;

function build(chunks: number, perFile: number): Buffer {
  const map: ChunkMap = {
    chunkSize: CHUNK_SIZE,
    header: { systemIdentifier: '7000000000000000000', timeline: 1, startLsn: '0/2000028', serverVersion: 170000, hashKey: '00'.repeat(32) },
    files: new Map(),
  };
  const hash = Buffer.alloc(HASH_BYTES);
  for (let i = 0; chunks > 0; i++) {
    const n = Math.min(perFile, chunks);
    chunks -= n;
    const key = `base/16384/${100000 + i}`;
    const list = new ChunkListBuilder(key, CHUNK_SIZE, n * CHUNK_SIZE);
    for (let k = 0; k < n; k++) list.push({ crc: (i * 7919 + k) >>> 0, hash: randomFillSync(hash) });
    map.files.set(key, list.finish(n * CHUNK_SIZE));
  }
  return encodeChunkMap(map);
}

/** In the child: decode, sampling RSS while it runs, print the numbers. */
function measure(file: string): void {
  const buf = readFileSync(file);
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage().rss;
  const t0 = process.hrtime.bigint();
  const map = decodeChunkMap(buf, file);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const after = process.memoryUsage().rss;
  // resourceUsage().maxRSS is the process's peak (KiB), whatever sampling misses.
  const peak = process.resourceUsage().maxRSS * 1024;
  const mb = (n: number) => (n / 1e6).toFixed(0);
  const x = (n: number) => (n / buf.length).toFixed(2);
  console.log(
    `  ${map.files.size} files, map ${mb(buf.length)} MB: RSS with the map read ${mb(before)} MB; decoding added ${mb(peak - before)} MB at its peak ` +
      `(${x(peak - before)}× the map), ${mb(after - before)} MB after (${x(after - before)}×); ${ms.toFixed(0)} ms`,
  );
}

/** In the child: records the map of `files` 100-byte files with chunk-map-build from `root`, the map member read and dropped. */
async function measureBuild(root: string, files: number): Promise<void> {
  const { chunkMapBuild } = require(path.join(root, 'transforms/chunk-map-build')) as typeof import('../transforms/chunk-map-build');
  const data = Buffer.alloc(100, 0x61);
  const mtime = new Date();
  function* events(): Generator<unknown> {
    yield {
      type: 'start', serverVersion: 150000, systemIdentifier: '7000000000000000000', timeline: 1, startLsn: '0/2000028',
      tablespaces: [{ oid: null, location: '', size: null }], walSegmentSize: 16 << 20, blockSize: 8192, segmentBlocks: 131072,
      dataChecksums: true, label: 'bench', totalBytes: null,
    };
    yield { type: 'archive', kind: 'base', name: 'base', location: '' };
    for (let i = 0; i < files; i++) {
      yield { type: 'entry', path: `base/16384/${100000 + i}`, kind: 'file', size: data.length, mode: 0o600, mtime };
      yield { type: 'data', offset: 0, chunk: data };
      yield { type: 'entry-end' };
    }
    yield { type: 'archive-end' };
    yield { type: 'end', endLsn: '0/3000000', timeline: 1 };
  }
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage().rss;
  let mapBytes = 0;
  const t0 = process.hrtime.bigint();
  await pipeline(Readable.from(events()), chunkMapBuild(), new Writable({
    objectMode: true,
    write(ev: { type: string; chunk?: Buffer }, _e, cb) {
      if (ev.type === 'data' && ev.chunk !== data) mapBytes += ev.chunk!.length;
      cb();
    },
  }));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const peak = process.resourceUsage().maxRSS * 1024;
  console.log(`  ${files} files, map ${(mapBytes / 1e6).toFixed(1)} MB: recording and sending it added ${((peak - before) / 1e6).toFixed(0)} MB at its peak (${((peak - before) / files).toFixed(0)} bytes per file); ${ms.toFixed(0)} ms`);
}

function main(): void | Promise<void> {
  if (process.argv[2] === '--measure') return measure(process.argv[3]!);
  if (process.argv[2] === '--measure-build') return measureBuild(process.argv[3]!, Number(process.argv[4]));
  if (process.argv[2] === '--build') return writeFileSync(process.argv[3]!, build(Number(process.argv[4]), Number(process.argv[5])));
  const opt = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const root = path.resolve(opt('root') ?? path.join(__dirname, '..'));
  const files = Number(opt('files') ?? 300_000);
  console.log(`recording a map of ${files} small files (${root}):`);
  execFileSync(process.execPath, ['--expose-gc', __filename, '--measure-build', root, String(files)], { stdio: 'inherit' });
  if (process.argv.includes('--build-only')) return;
  const chunks = Number(/^\d+$/.test(process.argv[2] ?? '') ? process.argv[2] : 3_000_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'pgbb-chunkmap-bench-'));
  try {
    for (const [what, perFile] of [['1 GiB segments', 1024], ['small files', 3], ['one-chunk files', 1]] as const) {
      const file = path.join(dir, 'map');
      // Built in a child of its own: a process's peak RSS (getrusage) includes its parent's at fork.
      execFileSync(process.execPath, [__filename, '--build', file, String(chunks), String(perFile)], { stdio: 'inherit' });
      console.log(`${chunks} chunks, ${what}:`);
      execFileSync(process.execPath, ['--expose-gc', __filename, '--measure', file], { stdio: 'inherit' });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

Promise.resolve(main()).catch((err) => {
  console.error(err);
  process.exit(1);
});
