/**
 * The backup record (`<id>/backup.json`): what an S3 backup is, written LAST
 * so that its presence means every other object is complete. Read back by
 * list, restore, verify and expire — and it may be hostile (anyone with
 * write access to the bucket), so decodeRecord checks every field and the
 * size is capped before it is parsed. Pure: no I/O.
 */
import { PgbbError } from '../errors';
import { BACKUP_ID } from './s3-url';

export const RECORD_NAME = 'backup.json';
/** Written first, removed after the record: a backup with neither objects nor record is still seen (and expired). */
export const STARTED_NAME = 'backup.started';
export const RECORD_MAX_BYTES = 1 << 20;

export interface StoredObject {
  /** base.tar.zst, <oid>.tar.zst, pg_wal.tar.zst, backup_manifest, chunkmap. */
  name: string;
  /** Bytes stored (after compression and the optional transform). */
  size: number;
  /** CRC32C of the stored bytes, 8 hex digits: checked against every download. */
  crc32c: string;
  /**
   * The x-amz-checksum-crc32c the store keeps (base64, "-N" for a multipart
   * upload's composite): `verify --objects-only` compares it without
   * downloading. Absent in records of pgbb before it.
   */
  storeCrc32c?: string;
}

export interface BackupRecord {
  format: 'pgbb-s3-backup';
  version: 1;
  id: string;
  kind: 'full' | 'incremental';
  parent: string | null;
  label: string;
  startTime: string;
  endTime: string;
  serverVersion: number;
  systemIdentifier: string;
  timeline: number;
  startLsn: string;
  endLsn: string;
  /** Data received from the server (uncompressed). */
  bytes: number;
  compression: 'zstd' | 'none';
  /** Name of the byte transform the objects went through (e.g. an encryption), or null. */
  transform: string | null;
  objects: StoredObject[];
}

/** Names an object in a backup may have: nothing else is ever read or written there (chunkmap: src/s3/chain.ts). */
export const OBJECT_NAME = /^(base|pg_wal|\d{1,10})\.tar(\.zst)?$|^backup_manifest$|^chunkmap$/;

/** Base64 of 4 bytes, and "-N" (1..10,000 parts) for a composite. */
const STORE_CRC = /^[A-Za-z0-9+/]{6}==(-[1-9]\d{0,4})?$/;
const LSN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i;
const isInt = (v: unknown, min = 0) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
const isTime = (v: unknown) => typeof v === 'string' && v.length < 40 && !Number.isNaN(Date.parse(v));

export function encodeRecord(r: BackupRecord): Buffer {
  return Buffer.from(JSON.stringify(r, null, 2) + '\n');
}

/** Why `o` is not a record, or null. */
function invalid(o: Record<string, unknown>): string | null {
  if (o.format !== 'pgbb-s3-backup') return 'format is not "pgbb-s3-backup"';
  if (o.version !== 1) return `unknown version ${JSON.stringify(o.version)}`;
  if (typeof o.id !== 'string' || !BACKUP_ID.test(o.id)) return 'id is not a backup id';
  if (o.kind !== 'full' && o.kind !== 'incremental') return 'kind is not "full" or "incremental"';
  if (o.parent !== null && (typeof o.parent !== 'string' || !BACKUP_ID.test(o.parent))) return 'parent is not a backup id';
  if (o.kind === 'incremental' && o.parent === null) return 'an incremental backup without a parent';
  if (typeof o.label !== 'string' || o.label.length > 1024) return 'label is not a string';
  if (!isTime(o.startTime) || !isTime(o.endTime)) return 'startTime or endTime is not a time';
  if (!isInt(o.serverVersion, 1)) return 'serverVersion is not a positive integer';
  if (typeof o.systemIdentifier !== 'string' || !/^\d{1,20}$/.test(o.systemIdentifier)) return 'systemIdentifier is not a decimal string';
  if (!isInt(o.timeline, 1)) return 'timeline is not a timeline ID';
  if (typeof o.startLsn !== 'string' || !LSN.test(o.startLsn) || typeof o.endLsn !== 'string' || !LSN.test(o.endLsn)) return 'startLsn or endLsn is not an LSN';
  if (!isInt(o.bytes)) return 'bytes is not a size';
  if (o.compression !== 'zstd' && o.compression !== 'none') return 'compression is not "zstd" or "none"';
  if (o.transform !== null && (typeof o.transform !== 'string' || o.transform.length > 64)) return 'transform is not a name';
  if (!Array.isArray(o.objects) || o.objects.length > 100_000) return 'objects is not a list';
  const seen = new Set<string>();
  for (const [i, x] of (o.objects as unknown[]).entries()) {
    const s = x as Record<string, unknown> | null;
    if (typeof s !== 'object' || s === null) return `objects[${i}] is not an object`;
    if (typeof s.name !== 'string' || !OBJECT_NAME.test(s.name)) return `objects[${i}].name is not an archive or backup_manifest`;
    if (seen.has(s.name)) return `object ${s.name} appears twice`;
    seen.add(s.name);
    if (!isInt(s.size)) return `objects[${i}].size is not a size`;
    if (typeof s.crc32c !== 'string' || !/^[0-9a-f]{8}$/.test(s.crc32c)) return `objects[${i}].crc32c is not 8 hex digits`;
    if (s.storeCrc32c !== undefined && (typeof s.storeCrc32c !== 'string' || !STORE_CRC.test(s.storeCrc32c))) return `objects[${i}].storeCrc32c is not a CRC32C checksum`;
  }
  if (!seen.has('backup_manifest') || ![...seen].some((n) => n.startsWith('base.tar'))) return 'objects lack base.tar or backup_manifest';
  return null;
}

/** Parses and checks a record read from `where` (named in the error). */
export function decodeRecord(bytes: Buffer, where: string): BackupRecord {
  if (bytes.length > RECORD_MAX_BYTES) throw new PgbbError('not_a_backup', `${where} is larger than ${RECORD_MAX_BYTES} bytes: not a pgbb backup record`);
  let o: unknown;
  try {
    o = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new PgbbError('not_a_backup', `${where} is not valid JSON: not a pgbb backup record`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new PgbbError('not_a_backup', `${where} is not a JSON object`);
  const why = invalid(o as Record<string, unknown>);
  if (why) throw new PgbbError('not_a_backup', `${where} is not a valid pgbb backup record: ${why}`);
  return o as BackupRecord;
}

/** CRC32C as the record writes it. */
export function crcHex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, '0');
}
