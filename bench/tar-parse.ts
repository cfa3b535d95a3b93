/**
 * Throughput of TarParser (src/codec/tar/tar-parser.ts), printed, not asserted.
 *
 * Feeds a synthetic archive in 32 KiB chunks (PostgreSQL's CopyData size, so
 * chunks are not aligned to members) to a parser whose handler only counts
 * bytes, and prints MB/s. Chunks are views of one reused ring buffer holding
 * `RING` members, so memory stays small while 1 GiB passes through; member
 * headers in the ring are rewritten with fresh names on every lap (untimed).
 *
 *   node dist/bench/tar-parse.js
 */

import { TarParser, TarParserHandler } from '../src/codec/tar/tar-parser';

const CHUNK = 32 * 1024;

/** A minimal ustar file header (name <= 99 bytes). */
function writeHeader(buf: Buffer, at: number, name: string, size: number): void {
  const h = buf.subarray(at, at + 512);
  h.fill(0);
  const octal = (n: number, off: number, len: number) => h.write(n.toString(8).padStart(len - 1, '0') + '\0', off, 'latin1');
  h.write(name, 0, 'utf8');
  octal(0o600, 100, 8);
  octal(26, 108, 8);
  octal(26, 116, 8);
  octal(size, 124, 12);
  octal(1_700_000_000, 136, 12);
  h.write('0', 156, 'latin1');
  h.write('ustar\x0000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
}

interface Result { files: number; bytes: number; seconds: number; writes: number }

/** Parses `files` members of `fileSize` bytes (a multiple of 512) fed in 32 KiB chunks. */
function run(files: number, fileSize: number): Result {
  const memberLen = 512 + fileSize;
  // Smallest ring of whole members that is also a whole number of chunks.
  let ring = 1;
  while ((ring * memberLen) % CHUNK !== 0) ring++;
  const buf = Buffer.alloc(ring * memberLen, 0x5a);
  const views: Buffer[] = [];
  for (let at = 0; at < buf.length; at += CHUNK) views.push(buf.subarray(at, at + CHUNK));

  let entries = 0;
  let bytes = 0;
  const handler: TarParserHandler = {
    entry() { entries++; },
    data(chunk) { bytes += chunk.length; },
    entryEnd() {},
  };
  const parser = new TarParser(handler, { archiveName: 'bench.tar', requireEndMarker: true });
  const total = files * memberLen;
  let fed = 0;
  let next = 0; // next member whose header is written into the ring
  // Only the parser's calls are timed, not the rewriting of ring headers.
  let elapsed = 0n;
  let writes = 1;
  while (fed < total) {
    const lapStart = fed;
    // Fresh names for the members of this lap (the parser is done with the previous lap).
    for (let i = 0; i < ring && next < files; i++, next++) writeHeader(buf, i * memberLen, `base/16384/${16384 + next}`, fileSize);
    for (const view of views) {
      const left = total - fed;
      if (left <= 0) break;
      const chunk = left >= view.length ? view : view.subarray(0, left);
      const t = process.hrtime.bigint();
      writes++;
      parser.write(chunk);
      elapsed += process.hrtime.bigint() - t;
      fed += chunk.length;
    }
    if (fed === lapStart) break;
  }
  const eoa = Buffer.alloc(1024);
  const t = process.hrtime.bigint();
  parser.write(eoa);
  parser.end();
  elapsed += process.hrtime.bigint() - t;
  const seconds = Number(elapsed) / 1e9;
  if (entries !== files || bytes !== files * fileSize) throw new Error(`bench parsed ${entries} files, ${bytes} bytes`);
  return { files, bytes: total + 1024, seconds, writes };
}

function report(label: string, files: number, fileSize: number, rounds: number): void {
  run(Math.min(files, 50), fileSize); // warm-up
  const results: Result[] = [];
  for (let i = 0; i < rounds; i++) results.push(run(files, fileSize));
  results.sort((a, b) => a.seconds - b.seconds);
  const best = results[0]!;
  const median = results[Math.floor(results.length / 2)]!;
  const mbps = (r: Result) => (r.bytes / 1e6 / r.seconds).toFixed(0);
  const perFile = ((median.seconds / median.files) * 1e6).toFixed(2);
  const perWrite = ((median.seconds / median.writes) * 1e9).toFixed(0);
  console.log(
    `${label}: ${(best.bytes / 2 ** 20).toFixed(0)} MiB in ${CHUNK / 1024} KiB chunks: ` +
      `best ${mbps(best)} MB/s, median ${mbps(median)} MB/s (${perFile} µs per file, ${perWrite} ns per write)`,
  );
}

report('1000 files x 1 MiB', 1000, 1024 * 1024, 5);
report('100000 files x 8 KiB', 100_000, 8192, 5);
