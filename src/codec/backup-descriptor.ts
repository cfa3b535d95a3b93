/**
 * The backup descriptor: what a restore or verify needs to know before the
 * first byte of data (server version and identity, start LSN, sizes,
 * tablespace locations). pgbb writes it as a pax `comment` record on the
 * first member of every tar archive it writes (`-F tar`, `-D -`): POSIX says
 * extractors ignore `comment`, so `tar -x` stays silent, and reading it back
 * costs nothing. Plain backups need none: pg_control, backup_label and the
 * pg_tblspc symlinks say the same.
 *
 * Errors: decodeDescriptor throws TarFormatError for a comment that is pgbb's
 * (it starts "pgbb-backup ") but does not hold a whole, well-typed
 * descriptor (a damaged archive), naming the field at fault.
 */
import type { StartEvent } from '../events';
import { TarFormatError } from '../errors';
import { showPath } from './path-bytes';

const PREFIX = 'pgbb-backup ';

export interface BackupDescriptor {
  version: 1;
  serverVersion: number;
  systemIdentifier: string;
  timeline: number;
  startLsn: string;
  label: string;
  walSegmentSize: number;
  blockSize: number;
  segmentBlocks: number;
  dataChecksums: boolean;
  tablespaces: { oid: string; location: string }[];
}

export function descriptorFromStart(s: StartEvent): BackupDescriptor {
  return {
    version: 1,
    serverVersion: s.serverVersion,
    systemIdentifier: s.systemIdentifier,
    timeline: s.timeline,
    startLsn: s.startLsn,
    label: s.label,
    walSegmentSize: s.walSegmentSize,
    blockSize: s.blockSize,
    segmentBlocks: s.segmentBlocks,
    dataChecksums: s.dataChecksums,
    tablespaces: s.tablespaces.filter((t) => t.oid !== null).map((t) => ({ oid: t.oid!, location: t.location })),
  };
}

export function encodeDescriptor(d: BackupDescriptor): string {
  return PREFIX + JSON.stringify(d);
}

const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): boolean =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
const isPow2 = (v: unknown, min: number, max: number): boolean => isInt(v, min, max) && ((v as number) & ((v as number) - 1)) === 0;

/** Why `d` is not a descriptor, or null when it is one. */
function invalid(d: unknown): string | null {
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return 'not a JSON object';
  const o = d as Record<string, unknown>;
  if (o.version !== 1) return `unknown version ${JSON.stringify(o.version)}`;
  if (!isInt(o.serverVersion, 1)) return 'serverVersion is not a positive integer';
  if (typeof o.systemIdentifier !== 'string' || !/^\d{1,20}$/.test(o.systemIdentifier)) return 'systemIdentifier is not a decimal string';
  if (!isInt(o.timeline, 1, 0xffffffff)) return 'timeline is not a timeline ID';
  if (typeof o.startLsn !== 'string' || !/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(o.startLsn)) return 'startLsn is not an LSN';
  if (typeof o.label !== 'string') return 'label is not a string';
  if (!isPow2(o.walSegmentSize, 1 << 20, 1 << 30)) return 'walSegmentSize is not a power of two from 1 MB to 1 GB';
  if (!isPow2(o.blockSize, 1024, 32768)) return 'blockSize is not a power of two from 1 kB to 32 kB';
  if (!isInt(o.segmentBlocks, 1, 0xffffffff)) return 'segmentBlocks is not a positive integer';
  if (typeof o.dataChecksums !== 'boolean') return 'dataChecksums is not a boolean';
  if (!Array.isArray(o.tablespaces)) return 'tablespaces is not an array';
  const oids = new Set<string>();
  for (const [i, t] of (o.tablespaces as unknown[]).entries()) {
    const ts = t as Record<string, unknown> | null;
    if (typeof ts !== 'object' || ts === null) return `tablespaces[${i}] is not an object`;
    if (typeof ts.oid !== 'string' || !/^\d{1,10}$/.test(ts.oid)) return `tablespaces[${i}].oid is not an OID`;
    if (typeof ts.location !== 'string' || ts.location === '') return `tablespaces[${i}].location is not a path`;
    if (oids.has(ts.oid)) return `tablespace ${ts.oid} appears twice`;
    oids.add(ts.oid);
  }
  return null;
}

/**
 * The descriptor in a pax comment, or null when the comment is not pgbb's.
 * A pgbb comment that is not a whole descriptor is a TarFormatError: every
 * field is checked here, so what reads it later can trust its types.
 */
export function decodeDescriptor(comment: string | undefined): BackupDescriptor | null {
  if (!comment?.startsWith(PREFIX)) return null;
  let d: unknown;
  try {
    d = JSON.parse(comment.slice(PREFIX.length));
  } catch (err) {
    // V8's message quotes the text around the fault: keep it one short line.
    throw new TarFormatError(`malformed pgbb backup descriptor: not valid JSON (${showPath((err as Error).message).slice(0, 200)})`, { cause: err });
  }
  const why = invalid(d);
  if (why) throw new TarFormatError(`malformed pgbb backup descriptor: ${why}`);
  return d as BackupDescriptor;
}

export function startFromDescriptor(d: BackupDescriptor): StartEvent {
  return {
    type: 'start',
    serverVersion: d.serverVersion,
    systemIdentifier: d.systemIdentifier,
    timeline: d.timeline,
    startLsn: d.startLsn,
    tablespaces: [...d.tablespaces.map((t) => ({ oid: t.oid, location: t.location, size: null })), { oid: null, location: '', size: null }],
    walSegmentSize: d.walSegmentSize,
    blockSize: d.blockSize,
    segmentBlocks: d.segmentBlocks,
    dataChecksums: d.dataChecksums,
    label: d.label,
    totalBytes: null,
  };
}
