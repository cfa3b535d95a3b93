/**
 * The backup descriptor: what a restore or verify needs to know before the
 * first byte of data (server version and identity, start LSN, sizes,
 * tablespace locations). pgbb writes it as a pax `comment` record on the
 * first member of every tar archive it writes (`-F tar`, `-D -`): POSIX says
 * extractors ignore `comment`, so `tar -x` stays silent, and reading it back
 * costs nothing. Plain backups need none: pg_control, backup_label and the
 * pg_tblspc symlinks say the same.
 */
import type { StartEvent } from './events';

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

/** The descriptor in a pax comment, or null when the comment is not pgbb's. */
export function decodeDescriptor(comment: string | undefined): BackupDescriptor | null {
  if (!comment?.startsWith(PREFIX)) return null;
  let d: BackupDescriptor;
  try {
    d = JSON.parse(comment.slice(PREFIX.length));
  } catch {
    return null;
  }
  if (d?.version !== 1 || typeof d.startLsn !== 'string' || !Array.isArray(d.tablespaces)) return null;
  return d;
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
