/**
 * The chunk map's per-chunk digest, against what it replaced (issue 16):
 *
 *   node dist/bench/chunk-hash.js [--mib 256] [--piece 32768]
 *
 * Digests --mib MiB of random bytes in 1 MiB chunks that arrive in --piece
 * byte pieces (as CopyData does), with: SHA-256 (format 1's hash), what
 * format 1's ChunkHasher did (CRC32C + SHA-256), CRC32C (@node-rs/crc32), and
 * ChunkHasher itself (CRC32C + the copy + keyed
 * XXH3-128, format 2). Prints MB/s of each, best of three; single thread.
 */
import { createHash, randomBytes } from 'node:crypto';
// crc32c(buf, crc) continues a running CRC (why this library: src/codec/data-crc.ts).
import { crc32c } from '@node-rs/crc32';
import { calculate as fastCrc32c } from 'fast-crc32c';
import { ChunkHasher } from '../src/codec/chunkmap/chunk-hasher';
import { arg } from './support/args';

const C = 1024 * 1024;

function rate(name: string, mib: number, run: () => void): void {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = process.hrtime.bigint();
    run();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  process.stdout.write(`${name.padEnd(36)} ${((mib * C) / best / 1e6).toFixed(0).padStart(6)} MB/s\n`);
}

function main(): void {
  const mib = Number(arg('mib', '256'));
  const piece = Number(arg('piece', '32768'));
  const chunk = randomBytes(C);
  const pieces: Buffer[] = [];
  for (let at = 0; at < C; at += piece) pieces.push(chunk.subarray(at, at + piece));
  rate('SHA-256 (format 1)', mib, () => {
    for (let i = 0; i < mib; i++) {
      const h = createHash('sha256');
      for (const p of pieces) h.update(p);
      h.digest();
    }
  });
  rate('CRC32C + SHA-256 (format 1 chunk)', mib, () => {
    for (let i = 0; i < mib; i++) {
      const h = createHash('sha256');
      let crc = 0;
      for (const p of pieces) {
        crc = crc32c(p, crc);
        h.update(p);
      }
      h.digest();
    }
  });
  rate('CRC32C', mib, () => {
    for (let i = 0; i < mib; i++) {
      let crc = 0;
      for (const p of pieces) crc = crc32c(p, crc);
    }
  });
  // What pgbb used before @node-rs/crc32 (src/codec/crc32c.ts: now whichever of the two is faster on the machine).
  rate('CRC32C (fast-crc32c)', mib, () => {
    for (let i = 0; i < mib; i++) {
      let crc = 0;
      for (const p of pieces) crc = fastCrc32c(p, crc);
    }
  });
  const hasher = new ChunkHasher(randomBytes(32), C);
  rate('ChunkHasher: CRC32C + XXH3-128 (2)', mib, () => {
    for (let i = 0; i < mib; i++) {
      for (const p of pieces) hasher.update(p);
      hasher.digest();
    }
  });
}

main();
