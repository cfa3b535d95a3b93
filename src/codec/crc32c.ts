/**
 * CRC32C (Castagnoli), PostgreSQL's manifest and WAL checksum: crc32c(buf, crc)
 * continues a running CRC; unsigned result.
 *
 * Two native libraries compute it, and which one is faster depends on the
 * CPU: on one host type `@node-rs/crc32` ran at 12.0 GB/s against
 * `fast-crc32c`'s 7.0, on another (AMD EPYC) at 5.3 against 10.7
 * (bench/README.md, "CRC32C library"). The manifest check of every backup
 * checksums every byte received, so the choice is made on the machine: the
 * first call times both on the same bytes and keeps the faster.
 * Both must agree with each other and with the standard check value, or
 * `@node-rs/crc32` is kept. fast-crc32c falls back to plain JavaScript when
 * its native part is missing; timed, that fallback then loses.
 */
import { crc32c as nodeRsCrc32c } from '@node-rs/crc32';

type Crc32c = (buf: Uint8Array, crc?: number) => number;

const nodeRs: Crc32c = (buf, crc = 0) => nodeRsCrc32c(buf as Buffer, crc) >>> 0;

let chosen: Crc32c | null = null;
let chosenName = '';

export function crc32c(buf: Uint8Array, crc = 0): number {
  return (chosen ?? choose())(buf, crc);
}

/** Which library crc32c() uses ('@node-rs/crc32' or 'fast-crc32c'), for measurements. */
export function crc32cImplementation(): string {
  if (!chosen) choose();
  return chosenName;
}

function choose(): Crc32c {
  const other = loadFastCrc32c();
  const picked = other && agree(nodeRs, other) && fastest(other, nodeRs) ? other : null;
  chosen = picked ?? nodeRs;
  chosenName = picked ? 'fast-crc32c' : '@node-rs/crc32';
  return chosen;
}

function loadFastCrc32c(): Crc32c | null {
  try {
    const { calculate } = require('fast-crc32c') as typeof import('fast-crc32c');
    return (buf, crc = 0) => calculate(buf as Buffer, crc) >>> 0;
  } catch {
    return null;
  }
}

const CHECK = Buffer.from('123456789');
const CHECK_VALUE = 0xe3069283;

function agree(a: Crc32c, b: Crc32c): boolean {
  try {
    const piece = Buffer.from('pgbb: the same CRC from both libraries, continued from a running one');
    return a(CHECK) === CHECK_VALUE && b(CHECK) === CHECK_VALUE && a(piece, 12345) === b(piece, 12345);
  } catch {
    return false;
  }
}

/** What the timing runs on: the bytes do not change the speed, only their length does. */
const sample = (): Buffer => Buffer.alloc(64 * 1024);

/** Whether `a` beat `b`: the best of 4 alternating rounds each (the first calls of either are warm-up). */
function fastest(a: Crc32c, b: Crc32c): boolean {
  const buf = sample();
  let bestA = Infinity;
  let bestB = Infinity;
  for (let round = 0; round < 4; round++) {
    bestA = Math.min(bestA, timed(a, buf));
    bestB = Math.min(bestB, timed(b, buf));
  }
  return bestA < bestB;
}

function timed(f: Crc32c, buf: Buffer): number {
  const t = process.hrtime.bigint();
  f(buf);
  return Number(process.hrtime.bigint() - t);
}
