/**
 * Throughput of manifestVerify (transforms/manifest-verify.ts), printed, not
 * asserted.
 *
 * Pushes 1 GiB of synthetic member events (128 files of 8 MiB, 32 KiB `data`
 * events, PostgreSQL's CopyData size) through the transform into a counting
 * sink, with a matching manifest at the end so the comparison runs too, and
 * prints MB/s. The same stream through `tap` (a bare observer) is the
 * baseline: the difference is the cost of checksumming. The data events reuse
 * one buffer, so memory stays small.
 *
 *   node dist/bench/manifest-verify.js [GiB] [CRC32C|SHA256|NONE]
 */
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupEvent } from '../src/events';
import { buildManifest, type ChecksumAlgorithm } from '../src/codec/manifest';
import { FileDigest } from '../src/manifest/file-tracker';
import { manifestVerify } from '../transforms/manifest-verify';
import { tap } from '../transforms/tap';

const CHUNK = 32 * 1024;
const FILE = 8 * 1024 * 1024;
const gib = Number(process.argv[2] ?? 1);
const algorithm = (process.argv[3] ?? 'CRC32C') as ChecksumAlgorithm;
const files = Math.round((gib * 1024 * 1024 * 1024) / FILE);
const chunk = Buffer.alloc(CHUNK);
for (let i = 0; i < CHUNK; i++) chunk[i] = (i * 31) & 0xff;

function manifest(): Buffer {
  const d = new FileDigest(algorithm);
  for (let off = 0; off < FILE; off += CHUNK) d.update(chunk);
  const checksum = d.digest();
  return buildManifest({
    version: 1,
    files: Array.from({ length: files }, (_, i) => ({ path: `base/5/${16384 + i}`, size: FILE, lastModified: new Date(0), checksumAlgorithm: algorithm, checksum })),
    walRanges: [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }],
  });
}

function* events(m: Buffer): Generator<BackupEvent> {
  yield {
    type: 'start', serverVersion: 150018, systemIdentifier: '1', timeline: 1, startLsn: '0/2000028', tablespaces: [],
    walSegmentSize: 16 << 20, blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'bench', totalBytes: null,
  };
  yield { type: 'archive', kind: 'base', name: 'base', location: '' };
  for (let f = 0; f < files; f++) {
    yield { type: 'entry', path: `base/5/${16384 + f}`, kind: 'file', size: FILE, mode: 0o600, mtime: new Date(0) };
    for (let off = 0; off < FILE; off += CHUNK) yield { type: 'data', offset: off, chunk };
    yield { type: 'entry-end' };
  }
  yield { type: 'archive-end' };
  yield { type: 'manifest', data: m };
  yield { type: 'end', endLsn: '0/2000100', timeline: 1 };
}

async function time(stage: Transform, m: Buffer): Promise<number> {
  let bytes = 0;
  const sink = new Writable({
    objectMode: true,
    highWaterMark: 16,
    write(ev: BackupEvent, _e, cb) {
      if (ev.type === 'data') bytes += ev.chunk.length;
      cb();
    },
  });
  const t0 = process.hrtime.bigint();
  await pipeline(Readable.from(events(m), { objectMode: true, highWaterMark: 16 }), stage, sink);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (bytes !== files * FILE) throw new Error(`sink saw ${bytes} bytes`);
  return s;
}

async function main(): Promise<void> {
  const m = manifest();
  const mb = (files * FILE) / 1e6;
  const base = await time(tap(() => {}), m);
  const v = manifestVerify({ checksumAlgorithm: algorithm });
  const s = await time(v, m);
  if (!v.result?.checked || v.result.files !== files) throw new Error('verification did not run');
  console.log(`manifestVerify ${algorithm}: ${(mb / s).toFixed(0)} MB/s (${mb.toFixed(0)} MB in ${s.toFixed(2)} s, ${files} files)`);
  console.log(`baseline (tap, same events): ${(mb / base).toFixed(0)} MB/s (${base.toFixed(2)} s)`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
