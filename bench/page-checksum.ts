/**
 * Throughput of page checksum verification, printed, not asserted.
 *
 *   codec      pageChecksum over 1 GiB of synthetic 8 KiB pages (a 32 MiB ring
 *              of pages, read in place), aligned and at an odd address.
 *   transform  pageChecksumVerify over 1 GiB of 32 KiB `data` events (32
 *              relation files of 32 MiB, every page valid and older than the
 *              start LSN, so every page is checksummed), against the same
 *              events through a bare pass-through Transform: the difference
 *              is the cost of verification.
 *
 *   node dist/bench/page-checksum.js
 *
 * Formulations of the codec tried (2-core shared VM, Node 20, best of 3 runs
 * of 512 MiB each; noisy, other work was running):
 *   row by row, 32 sums in an Int32Array, as checksum_impl.h reads   ~2.5 GB/s
 *   one lane at a time down its column (one dependency chain)        ~2.6 GB/s
 *   32 sums in locals, row by row, generated unrolled code           ~2.9 GB/s
 *   4 lanes at a time in locals, down the columns (kept)          ~4.1–4.4 GB/s
 *   8 lanes at a time in locals                                   ~4.0–4.2 GB/s
 *   4 lanes, words copied to an aligned scratch first                ~3.9 GB/s
 *   4 lanes, words assembled from bytes (unaligned fallback)         ~1.9 GB/s
 *   Buffer.readInt32LE per word                                      ~0.4 GB/s
 * Four independent imul chains hide the multiply latency while staying in
 * registers; 32 locals spill.
 */
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupEvent } from '../src/events';
import { pageChecksum } from '../src/codec/page-checksum';
import { pageChecksumVerify } from '../transforms/page-checksum-verify';

const BS = 8192;
const GIB = 1024 ** 3;
const RING_PAGES = 4096; // 32 MiB
const CHUNK = 32 * 1024;

/** RING_PAGES valid pages (checksum for block = index in the ring), starting `shift` bytes into the buffer. */
function ring(shift: number): Buffer {
  const buf = Buffer.alloc(shift + RING_PAGES * BS);
  let x = 0x9e3779b9;
  for (let p = 0; p < RING_PAGES; p++) {
    const at = shift + p * BS;
    for (let i = 24; i < BS; i += 4) {
      x = (Math.imul(x, 1664525) + 1013904223) | 0;
      buf.writeInt32LE(x, at + i);
    }
    buf.writeUInt32LE(0, at); // LSN 0/100: before any start LSN
    buf.writeUInt32LE(0x100, at + 4);
    buf.writeUInt16LE(24 + 4 * 60, at + 12);
    buf.writeUInt16LE(1024, at + 14);
    buf.writeUInt16LE(BS, at + 16);
    buf.writeUInt16LE(0x2004, at + 18);
    buf.writeUInt16LE(pageChecksum(buf, p, at, BS), at + 8);
  }
  return buf.subarray(shift);
}

function benchCodec(label: string, pages: Buffer): void {
  let sink = 0;
  for (let p = 0; p < RING_PAGES; p++) sink ^= pageChecksum(pages, p, p * BS, BS); // warm-up
  const results: number[] = [];
  for (let round = 0; round < 3; round++) {
    const n = GIB / BS;
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < n; k++) sink ^= pageChecksum(pages, k, (k % RING_PAGES) * BS, BS);
    results.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const best = Math.min(...results);
  console.log(
    `codec, ${label}: 1 GiB of 8 KiB pages in ${best.toFixed(3)} s: ` +
      `${((GIB / BS / best) / 1e3).toFixed(0)}k pages/s, ${(GIB / best / 1e6).toFixed(0)} MB/s (best of 3; ${sink & 1})`,
  );
}

/** 1 GiB as 32 files of 32 MiB, each re-using the ring (block numbers restart per file). */
function* events(pages: Buffer): Generator<BackupEvent> {
  yield {
    type: 'start', serverVersion: 150018, systemIdentifier: '1', timeline: 1, startLsn: '1/0', tablespaces: [],
    walSegmentSize: 16 << 20, blockSize: BS, segmentBlocks: 131072, dataChecksums: true, label: 'bench', totalBytes: null,
  };
  yield { type: 'archive', kind: 'base', name: 'base', location: '' };
  for (let f = 0; f < GIB / pages.length; f++) {
    yield { type: 'entry', path: `base/5/${16384 + f}`, kind: 'file', size: pages.length, mode: 0o600, mtime: new Date(0) };
    for (let off = 0; off < pages.length; off += CHUNK) yield { type: 'data', offset: off, chunk: pages.subarray(off, off + CHUNK) };
    yield { type: 'entry-end' };
  }
  yield { type: 'archive-end' };
  yield { type: 'end', endLsn: '1/100', timeline: 1 };
}

async function timePipeline(pages: Buffer, stage: Transform): Promise<number> {
  const t0 = process.hrtime.bigint();
  await pipeline(
    Readable.from(events(pages), { objectMode: true, highWaterMark: 16 }),
    stage,
    new Writable({ objectMode: true, highWaterMark: 16, write: (_ev, _e, cb) => cb() }),
  );
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function benchTransform(label: string, pages: Buffer): Promise<void> {
  const passThrough = () => new Transform({ objectMode: true, highWaterMark: 16, transform: (ev, _e, cb) => cb(null, ev) });
  const bare = Math.min(await timePipeline(pages, passThrough()), await timePipeline(pages, passThrough()));
  let best = Infinity;
  let checked = 0;
  for (let round = 0; round < 2; round++) {
    const v = pageChecksumVerify();
    best = Math.min(best, await timePipeline(pages, v));
    checked = v.result.pagesChecked;
    if (v.result.failureCount || checked !== GIB / BS) throw new Error(`bench: ${checked} pages checked, ${v.result.failureCount} failures`);
  }
  const verifySeconds = best - bare;
  console.log(
    `transform, ${label}: 1 GiB in ${CHUNK / 1024} KiB data events in ${best.toFixed(3)} s ` +
      `(${(GIB / best / 1e6).toFixed(0)} MB/s, ${((checked / best) / 1e3).toFixed(0)}k pages/s); ` +
      `bare pass-through ${bare.toFixed(3)} s, so verification adds ${verifySeconds.toFixed(3)} s ` +
      `(${(GIB / Math.max(verifySeconds, 1e-9) / 1e6).toFixed(0)} MB/s)`,
  );
}

async function main(): Promise<void> {
  const aligned = ring(0);
  const odd = ring(1);
  benchCodec('aligned', aligned);
  benchCodec('odd address', odd);
  await benchTransform('aligned chunks', aligned);
  await benchTransform('chunks at odd addresses', odd);
}

void main();
