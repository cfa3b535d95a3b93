/**
 * Checks that WAL from a start LSN to an end LSN is present and parses as one
 * continuous chain of records (pure; segments are handed in as Buffers).
 *
 * What is checked, per PostgreSQL's format (access/xlog_internal.h,
 * access/xlogrecord.h): every page header on the way has the same magic,
 * the expected timeline and its own address; each record's CRC32C matches
 * (computed over the record after its 24-byte header, then the header up to
 * xl_crc); each record's xl_prev points at the record before it; records
 * continued across pages carry the right remaining length. A segment switch
 * record skips to the next segment. The walk ends at the first record that
 * starts at or after the end LSN — which must therefore be reachable.
 * Errors name the segment file and LSN: `WalError` (code 'wal').
 * Memory: one segment at a time; a record is checked piece by piece as it
 * crosses pages and segments (its CRC runs along), never copied whole, so a
 * corrupt length field (up to the 1 GiB limit) costs no allocation.
 */
import { crc32c } from './crc32c';
import { formatLsn, walFileName } from './lsn';
import { PgbbError } from '../errors';

export class WalError extends PgbbError {
  constructor(message: string) {
    super('wal', message);
  }
}

const SHORT_HEADER = 24;
const LONG_HEADER = 40;
const RECORD_HEADER = 24;
const XLP_FIRST_IS_CONTRECORD = 0x0001;
const XLP_LONG_HEADER = 0x0002;
const RM_XLOG_ID = 0;
const XLOG_SWITCH = 0x40;

export interface WalCheckOptions {
  timeline: number;
  startLsn: bigint;
  endLsn: bigint;
  segmentSize: number;
  /** XLOG_BLCKSZ, 8192 unless the server was built otherwise. */
  pageSize?: number;
  /** Returns a segment's bytes by file name, or null when it is missing. */
  readSegment: (name: string) => Buffer | null;
}

export interface WalCheckResult {
  records: number;
  /** LSN just past the last record read. */
  endOfLastRecord: bigint;
  segments: string[];
}

const maxAlign = (n: bigint) => (n + 7n) & ~7n;

export function checkWalRange(o: WalCheckOptions): WalCheckResult {
  const pageSize = BigInt(o.pageSize ?? 8192);
  const segSize = BigInt(o.segmentSize);
  const segments = new Map<bigint, Buffer>();
  let magic = -1;

  const segment = (lsn: bigint): { buf: Buffer; name: string } => {
    const segno = lsn / segSize;
    const name = walFileName(o.timeline, lsn, o.segmentSize);
    let buf = segments.get(segno);
    if (!buf) {
      const got = o.readSegment(name);
      if (!got) throw new WalError(`WAL segment ${name} is missing (needed for LSN ${formatLsn(lsn)})`);
      if (got.length !== o.segmentSize) throw new WalError(`WAL segment ${name} has ${got.length} bytes, expected ${o.segmentSize}`);
      buf = got;
      segments.clear(); // one segment in memory at a time
      segments.set(segno, buf);
      checked.add(name);
    }
    return { buf, name };
  };
  const checked = new Set<string>();

  /** Validates the header of the page holding `lsn`; returns its size and remaining-length field. */
  const pageHeader = (pageStart: bigint): { size: bigint; remLen: number; info: number } => {
    const { buf, name } = segment(pageStart);
    const off = Number(pageStart % segSize);
    const m = buf.readUInt16LE(off);
    const info = buf.readUInt16LE(off + 2);
    const tli = buf.readUInt32LE(off + 4);
    const addr = buf.readBigUInt64LE(off + 8);
    const where = `in WAL segment ${name} at ${formatLsn(pageStart)}`;
    if (magic < 0) magic = m;
    if (m !== magic) throw new WalError(`invalid page magic ${m.toString(16)} ${where}`);
    if (addr !== pageStart) throw new WalError(`unexpected page address ${formatLsn(addr)} ${where}`);
    if (tli !== o.timeline) throw new WalError(`unexpected timeline ${tli} ${where}`);
    const long = (info & XLP_LONG_HEADER) !== 0;
    if (long !== (pageStart % segSize === 0n)) throw new WalError(`page header flags ${info.toString(16)} wrong ${where}`);
    // xlp_rem_len follows xlp_pageaddr: offset 16 (20–23 is alignment padding).
    return { size: BigInt(long ? LONG_HEADER : SHORT_HEADER), remLen: buf.readUInt32LE(off + 16), info };
  };

  /**
   * Walks the `len` bytes of the record starting at `start`, skipping page
   * headers (each must say it continues the record, with the right number of
   * bytes left), and hands each piece (a view of the segment) to `visit`.
   */
  const walkRecord = (start: bigint, len: number, visit: (piece: Buffer, at: number) => void): void => {
    let have = 0;
    let pos = start;
    let first = true;
    while (have < len) {
      const pageStart = pos - (pos % pageSize);
      if (pos === pageStart) {
        const h = pageHeader(pageStart);
        if (!first) {
          if (!(h.info & XLP_FIRST_IS_CONTRECORD) || h.remLen !== len - have) {
            throw new WalError(
              `record at ${formatLsn(start)} continues into ${formatLsn(pageStart)} but that page does not continue it (WAL segment ${walFileName(o.timeline, pageStart, o.segmentSize)})`,
            );
          }
        }
        pos += h.size;
      }
      const { buf } = segment(pos);
      const take = Number(BigInt.asUintN(64, pageStart + pageSize - pos));
      const n = Math.min(take, len - have);
      const off = Number(pos % segSize);
      visit(buf.subarray(off, off + n), have);
      have += n;
      pos += BigInt(n);
      first = false;
    }
  };

  let lsn = o.startLsn;
  let prev = -1n;
  let records = 0;
  while (lsn < o.endLsn) {
    const pageStart = lsn - (lsn % pageSize);
    if (lsn === pageStart) {
      lsn += pageHeader(pageStart).size;
      continue;
    }
    // xl_tot_len is always on the record's first page (records are 8-byte
    // aligned); the rest of the header may continue on the next page.
    const totLen = segment(lsn).buf.readUInt32LE(Number(lsn % segSize));
    const name = walFileName(o.timeline, lsn, o.segmentSize);
    if (totLen === 0) throw new WalError(`WAL ends at ${formatLsn(lsn)} in segment ${name}, before the backup's end ${formatLsn(o.endLsn)}`);
    if (totLen < RECORD_HEADER || totLen > 1024 * 1024 * 1024) throw new WalError(`invalid record length ${totLen} at ${formatLsn(lsn)} in WAL segment ${name}`);
    // One pass: the header is copied out, the CRC runs over the data after it.
    const hdr = Buffer.alloc(RECORD_HEADER);
    let running = 0;
    walkRecord(lsn, totLen, (piece, at) => {
      if (at < RECORD_HEADER) piece.copy(hdr, at, 0, Math.min(piece.length, RECORD_HEADER - at));
      const skip = Math.max(0, RECORD_HEADER - at);
      if (skip < piece.length) running = crc32c(piece.subarray(skip), running);
    });
    const xlPrev = hdr.readBigUInt64LE(8);
    if (prev >= 0n && xlPrev !== prev) {
      throw new WalError(`record at ${formatLsn(lsn)} in WAL segment ${name} points back to ${formatLsn(xlPrev)}, expected ${formatLsn(prev)}`);
    }
    // CRC over the data after the header, then the header up to xl_crc.
    const crc = crc32c(hdr.subarray(0, 20), running) >>> 0;
    if (crc !== hdr.readUInt32LE(20)) throw new WalError(`incorrect record checksum at ${formatLsn(lsn)} in WAL segment ${name}`);
    records++;
    prev = lsn;
    // The record's end, then alignment; a record may end exactly on a page boundary.
    let end = lsn;
    let left = BigInt(totLen);
    while (left > 0n) {
      const ps = end - (end % pageSize);
      if (end === ps) end += pageHeader(ps).size;
      const room = ps + pageSize - end;
      const n = left < room ? left : room;
      end += n;
      left -= n;
    }
    const rmid = hdr[17];
    const info = hdr[16];
    if (rmid === RM_XLOG_ID && (info & 0xf0) === XLOG_SWITCH) {
      end = (end + segSize - 1n) - ((end + segSize - 1n) % segSize);
    }
    lsn = maxAlign(end);
  }
  return { records, endOfLastRecord: lsn, segments: [...checked] };
}
