/** LSNs: `X/X` text (uppercase hex, no padding) <-> bigint. */
import { ProtocolError } from '../errors';

export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new ProtocolError(`invalid LSN "${text}"`);
  return (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** WAL segment file name for an LSN (xlog_internal.h XLogFileName). */
export function walFileName(timeline: number, lsn: bigint, segmentSize: number): string {
  const segno = lsn / BigInt(segmentSize);
  const perId = 0x100000000n / BigInt(segmentSize);
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');
  return hex(timeline) + hex(segno / perId) + hex(segno % perId);
}
