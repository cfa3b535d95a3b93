/**
 * Synthetic WAL for unit and fuzz tests of src/codec/wal-continuity.ts: a
 * chain of records laid out as PostgreSQL lays them out (access/xlogrecord.h,
 * access/xlog_internal.h) — a long page header at each segment start, short
 * ones elsewhere, records 8-byte aligned, a record that crosses a page
 * continued on the next with XLP_FIRST_IS_CONTRECORD and xlp_rem_len, CRC32C
 * over the data then the header up to xl_crc, xl_prev chaining the records.
 *
 * buildWal({ sizes }) → { segments (file name → bytes), startLsn, endLsn, lsns }
 * where endLsn is the LSN just past the last record (what checkWalRange
 * returns as endOfLastRecord).
 */
import { calculate as crc32c } from 'fast-crc32c';
import { walFileName } from '../../src/codec/lsn';

export const PAGE = 8192;
export const SEGMENT = 1024 * 1024;
const MAGIC = 0xd110; // PostgreSQL 15
const FIRST_IS_CONTRECORD = 1;
const LONG_HEADER = 2;

export interface BuiltWal {
  segments: Map<string, Buffer>;
  startLsn: bigint;
  endLsn: bigint;
  /** Where each record starts. */
  lsns: bigint[];
  timeline: number;
}

export function buildWal(opts: { sizes: number[]; timeline?: number; firstSegment?: number; fill?: (i: number) => number }): BuiltWal {
  const timeline = opts.timeline ?? 1;
  const base = BigInt((opts.firstSegment ?? 2) * SEGMENT);
  const bufs = new Map<bigint, Buffer>();
  const seg = (lsn: bigint) => {
    const n = lsn / BigInt(SEGMENT);
    let b = bufs.get(n);
    if (!b) bufs.set(n, (b = Buffer.alloc(SEGMENT)));
    return { b, off: Number(lsn % BigInt(SEGMENT)) };
  };
  /** Writes the header of the page at `ps`; returns its size. */
  const header = (ps: bigint, remLen: number): number => {
    const { b, off } = seg(ps);
    const long = off === 0;
    b.writeUInt16LE(MAGIC, off);
    b.writeUInt16LE((long ? LONG_HEADER : 0) | (remLen > 0 ? FIRST_IS_CONTRECORD : 0), off + 2);
    b.writeUInt32LE(timeline, off + 4);
    b.writeBigUInt64LE(ps, off + 8);
    b.writeUInt32LE(remLen, off + 16);
    if (!long) return 24;
    b.writeBigUInt64LE(7000000000000000001n, off + 24);
    b.writeUInt32LE(SEGMENT, off + 32);
    b.writeUInt32LE(PAGE, off + 36);
    return 40;
  };
  const P = BigInt(PAGE);
  let lsn = base + BigInt(header(base, 0));
  let prev = 0n;
  const lsns: bigint[] = [];
  opts.sizes.forEach((size, i) => {
    if (lsn % P === 0n) lsn += BigInt(header(lsn, 0));
    const rec = Buffer.alloc(size);
    for (let k = 24; k < size; k++) rec[k] = opts.fill ? opts.fill(i * 31 + k) : (i * 7 + k) & 0xff;
    rec.writeUInt32LE(size, 0);
    rec.writeUInt32LE(700 + i, 4);
    rec.writeBigUInt64LE(prev, 8);
    rec[16] = 0x10;
    rec[17] = 10; // RM_HEAP_ID: nothing special about it
    rec.writeUInt32LE(crc32c(rec.subarray(0, 20), crc32c(rec.subarray(24))) >>> 0, 20);
    lsns.push(lsn);
    prev = lsn;
    let done = 0;
    let pos = lsn;
    while (done < size) {
      if (pos % P === 0n) pos += BigInt(header(pos, size - done));
      const room = Number(P - (pos % P));
      const n = Math.min(room, size - done);
      const { b, off } = seg(pos);
      rec.copy(b, off, done, done + n);
      done += n;
      pos += BigInt(n);
    }
    lsn = (pos + 7n) & ~7n;
  });
  const endLsn = lsn;
  // The page after the last record gets its header too (checkWalRange reads it when the end lands there).
  if (endLsn % P === 0n) header(endLsn, 0);
  const segments = new Map<string, Buffer>();
  for (const [n, b] of bufs) segments.set(walFileName(timeline, n * BigInt(SEGMENT), SEGMENT), b);
  return { segments, startLsn: lsns[0] ?? lsn, endLsn, lsns, timeline };
}
