/**
 * Throughput of each member-stream transform on realistic data: the relation
 * files of a pgbench database (harness PostgreSQL 15, `--corpus-scale`,
 * default 10 ≈ 160 MB), stopped so that its pages are as on disk, replayed as
 * start / archive / entry / data (32 KiB, as BASE_BACKUP sends them) /
 * entry-end events until `--gib` GiB (default 1) went through.
 *
 *   node dist/bench/transforms.js [--corpus-scale 10] [--gib 1]
 *
 * Each transform runs alone between the generator and a null sink; `tap` (a
 * pass-through) is the floor the others are measured against. Printed, not
 * asserted.
 */
import { promises as fs } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Cluster } from '../test/support/cluster';
import type { BackupEvent } from '../src/events';
import { tap } from '../transforms/tap';
import { manifestVerify } from '../transforms/manifest-verify';
import { manifestBuild } from '../transforms/manifest-build';
import { pageChecksumVerify } from '../transforms/page-checksum-verify';
import { chunkMapBuild } from '../transforms/chunk-map-build';
import { throttle } from '../transforms/throttle';
import { progress } from '../transforms/progress';
import { RateLimiter } from '../src/rate-limiter';
import { tee } from '../sinks/tee';
import { arg } from './support/args';

const CHUNK = 32 * 1024;

interface CorpusFile {
  path: string;
  data: Buffer;
}

async function corpus(scale: number): Promise<{ files: CorpusFile[]; startLsn: string }> {
  const c = await Cluster.create();
  try {
    await c.pgbench(['-i', '-q', '-s', String(scale), 'postgres']);
    const [{ lsn }] = await c.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    await c.stop();
    const files: CorpusFile[] = [];
    const base = join(c.dataDir, 'base');
    for (const e of await fs.readdir(base, { withFileTypes: true, recursive: true })) {
      if (!e.isFile()) continue;
      const full = join(e.parentPath ?? e.path, e.name);
      files.push({ path: relative(c.dataDir, full), data: await fs.readFile(full) });
    }
    return { files, startLsn: lsn };
  } finally {
    await c.destroy();
  }
}

function events(files: CorpusFile[], startLsn: string, total: number): Readable {
  return Readable.from(
    (function* (): Generator<BackupEvent> {
      yield {
        type: 'start', serverVersion: 150000, systemIdentifier: '1', timeline: 1, startLsn, tablespaces: [],
        walSegmentSize: 16 << 20, blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'bench', totalBytes: total,
      };
      yield { type: 'archive', kind: 'base', name: 'base', location: '' };
      let sent = 0;
      for (let round = 0; sent < total; round++) {
        for (const f of files) {
          if (sent >= total) break;
          // Distinct paths per round (the manifest stages keep one record per file) that
          // still name relation files (page-checksum-verify checks only those): another database oid.
          const path = round ? f.path.replace(/^base\/(\d+)\//, (_m, db: string) => `base/${Number(db) + round * 1_000_000}/`) : f.path;
          yield { type: 'entry', path, kind: 'file', size: f.data.length, mode: 0o600, mtime: new Date(0) };
          for (let off = 0; off < f.data.length; off += CHUNK) {
            const chunk = f.data.subarray(off, Math.min(off + CHUNK, f.data.length));
            yield { type: 'data', offset: off, chunk };
            sent += chunk.length;
          }
          yield { type: 'entry-end' };
        }
      }
      yield { type: 'archive-end' };
      yield { type: 'end', endLsn: startLsn, timeline: 1 };
    })(),
    { objectMode: true, highWaterMark: 16 },
  );
}

const nullSink = () => new Writable({ objectMode: true, highWaterMark: 16, write: (_e, _enc, cb) => cb() });

async function main(): Promise<void> {
  const scale = Number(arg('corpus-scale', '10'));
  const total = Number(arg('gib', '1')) * 1024 ** 3;
  const { files, startLsn } = await corpus(scale);
  const size = files.reduce((a, f) => a + f.data.length, 0);
  console.log(`corpus: ${files.length} relation files, ${(size / 1e6).toFixed(0)} MB (pgbench scale ${scale}); ${(total / 2 ** 30).toFixed(1)} GiB per run`);
  const stages: [string, () => Transform | Writable][] = [
    ['tap (pass-through floor)', () => tap(() => {})],
    ['manifest-verify (CRC32C)', () => manifestVerify()],
    ['manifest-build (CRC32C)', () => manifestBuild()],
    ['page-checksum-verify', () => pageChecksumVerify()],
    ['chunk-map-build (CRC+SHA-256)', () => chunkMapBuild()],
    ['throttle (10 GB/s bucket)', () => throttle(new RateLimiter(10e9))],
    ['progress', () => progress({ onProgress: () => {} })],
    ['tee (2 null sinks)', () => tee(nullSink(), nullSink())],
  ];
  for (const [name, make] of stages) {
    const stage = make();
    const t0 = process.hrtime.bigint();
    if ('readable' in stage && (stage as Transform).readable) await pipeline(events(files, startLsn, total), stage as Transform, nullSink());
    else await pipeline(events(files, startLsn, total), stage as Writable);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`${name.padEnd(28)} ${(total / 1e6 / s).toFixed(0).padStart(6)} MB/s  (${s.toFixed(2)} s)`);
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});
