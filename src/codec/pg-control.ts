/**
 * Reads what pgbb needs from `global/pg_control` (pure): the system
 * identifier, the sizes that shape relation and WAL files, and whether data
 * checksums are on.
 *
 * ControlFileData's layout moves between major versions, but two things hold
 * in 13–18: the struct ends with a CRC32C of everything before it, and the
 * run `blcksz, relseg_size, xlog_blcksz, xlog_seg_size, nameDataLen (64),
 * indexMaxKeys, toast_max_chunk_size, loblksize, float8ByVal,
 * data_checksum_version` sits shortly before that CRC. We find the CRC, then
 * the run (anchored on nameDataLen = 64), and check every value for sanity
 * rather than trusting fixed offsets. Host byte order: little-endian.
 */
import { crc32c } from './crc32c';
import { PgbbError } from '../errors';

export interface ControlData {
  systemIdentifier: string;
  blockSize: number;
  segmentBlocks: number;
  walBlockSize: number;
  walSegmentSize: number;
  dataChecksums: boolean;
}

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

export function parseControlFile(buf: Buffer, file = 'global/pg_control'): ControlData {
  const fail = (why: string) => new PgbbError('pg_control', `could not read "${file}": ${why}`);
  if (buf.length < 256) throw fail(`file is ${buf.length} bytes, too short`);
  let crcAt = -1;
  for (let off = 128; off <= Math.min(buf.length - 4, 1024); off += 4) {
    if (crc32c(buf.subarray(0, off)) >>> 0 === buf.readUInt32LE(off)) {
      crcAt = off;
      break;
    }
  }
  if (crcAt < 0) throw fail('no valid CRC found (corrupt, or not a little-endian pg_control)');
  for (let p = crcAt - 40; p >= crcAt - 160 && p >= 16; p -= 4) {
    if (buf.readUInt32LE(p) !== 64 || buf.readUInt32LE(p + 4) !== 32) continue;
    const blockSize = buf.readUInt32LE(p - 16);
    const segmentBlocks = buf.readUInt32LE(p - 12);
    const walBlockSize = buf.readUInt32LE(p - 8);
    const walSegmentSize = buf.readUInt32LE(p - 4);
    const checksumVersion = buf.readUInt32LE(p + 20);
    if (!isPow2(blockSize) || blockSize < 1024 || blockSize > 32768) continue;
    if (!isPow2(walBlockSize) || walBlockSize < 1024 || walBlockSize > 65536) continue;
    if (!isPow2(walSegmentSize) || walSegmentSize < 1 << 20 || walSegmentSize > 1 << 30) continue;
    if (segmentBlocks < 1 || checksumVersion > 1) continue;
    return {
      systemIdentifier: buf.readBigUInt64LE(0).toString(),
      blockSize,
      segmentBlocks,
      walBlockSize,
      walSegmentSize,
      dataChecksums: checksumVersion === 1,
    };
  }
  throw fail('layout not recognised');
}
