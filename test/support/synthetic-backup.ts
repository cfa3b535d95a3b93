/**
 * A small synthetic backup as member events, and the same backup written by
 * pgbb's own sinks (one tar stream, plain or zstd; a tar directory), for the
 * fuzz targets that read backups back and for round-trip unit tests.
 *
 * The backup: base (backup_label, PG_VERSION, global/pg_control, a relation
 * file, a 300-byte path, a non-UTF-8 name, pg_tblspc/16385 → the tablespace,
 * pg_wal/archive_status) and one tablespace; the manifest built by
 * manifest-build over those events, so the written backup verifies.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { calculate as crc32c } from 'fast-crc32c';
import type { BackupEvent, StartEvent } from '../../src/events';
import { pathFromBytes } from '../../src/codec/path-bytes';
import { manifestBuild } from '../../transforms/manifest-build';
import { StdoutSink } from '../../sinks/stdout';
import { TarFilesSink } from '../../sinks/tar-files';

const MTIME = new Date('2024-05-06T07:08:09Z');
export const RAW_NAME = pathFromBytes(Buffer.from([0xff, 0xfe, 0x78]));
export const LONG_NAME = `base/${'long-directory-name/'.repeat(10)}${'f'.repeat(95)}`;
export const LONG_TARGET = `/${'deep/'.repeat(40)}target`;

/** ControlFileData's tail as PostgreSQL 15 lays it out: the size run, 32 bytes of nonce, then the CRC. */
export function sampleControlFile(): Buffer {
  const b = Buffer.alloc(8192);
  b.writeBigUInt64LE(7350000000000000001n, 0);
  b.writeUInt32LE(1300, 8); // pg_control_version
  const p = 232; // nameDataLen's offset
  b.writeUInt32LE(8192, p - 16);
  b.writeUInt32LE(131072, p - 12);
  b.writeUInt32LE(8192, p - 8);
  b.writeUInt32LE(16 * 1024 * 1024, p - 4);
  b.writeUInt32LE(64, p);
  b.writeUInt32LE(32, p + 4);
  b.writeUInt32LE(1996, p + 8);
  b.writeUInt32LE(2048, p + 12);
  b[p + 16] = 1;
  b.writeUInt32LE(1, p + 20);
  const crcAt = p + 24 + 32;
  b.writeUInt32LE(crc32c(b.subarray(0, crcAt)) >>> 0, crcAt);
  return b;
}

export function file(path: string, data: Buffer, mode = 0o600): BackupEvent[] {
  const evs: BackupEvent[] = [{ type: 'entry', path, kind: 'file', size: data.length, mode, mtime: MTIME }];
  for (let off = 0; off < data.length; off += 3000) evs.push({ type: 'data', offset: off, chunk: data.subarray(off, off + 3000) });
  evs.push({ type: 'entry-end' });
  return evs;
}
export const dir = (path: string): BackupEvent[] => [{ type: 'entry', path, kind: 'directory', size: 0, mode: 0o700, mtime: MTIME }, { type: 'entry-end' }];
export const link = (path: string, target: string): BackupEvent[] => [{ type: 'entry', path, kind: 'symlink', size: 0, mode: 0o777, mtime: MTIME, linkTarget: target }, { type: 'entry-end' }];

export function sampleStart(tablespace = '/srv/pgbb-fuzz-ts'): StartEvent {
  return {
    type: 'start',
    serverVersion: 150018,
    systemIdentifier: '7350000000000000001',
    timeline: 1,
    startLsn: '0/2000028',
    tablespaces: [
      { oid: '16385', location: tablespace, size: null },
      { oid: null, location: '', size: null },
    ],
    walSegmentSize: 16 * 1024 * 1024,
    blockSize: 8192,
    segmentBlocks: 131072,
    dataChecksums: false,
    label: 'fuzz',
    totalBytes: null,
  };
}

/** The events, without a manifest (manifest-build adds it). */
export function sampleEvents(opts: { tablespace?: string; control?: Buffer } = {}): BackupEvent[] {
  const start = sampleStart(opts.tablespace);
  const page = Buffer.alloc(16384);
  for (let i = 0; i < page.length; i++) page[i] = (i * 31) & 0xff;
  return [
    start,
    { type: 'archive', kind: 'base', name: 'base', location: '' },
    ...file('backup_label', Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2024-05-06 07:08:09 UTC\nLABEL: fuzz\nSTART TIMELINE: 1\n')),
    ...file('PG_VERSION', Buffer.from('15\n')),
    ...dir('global'),
    ...file('global/pg_control', opts.control ?? sampleControlFile()),
    ...dir('base'),
    ...dir('base/1'),
    ...file('base/1/1259', page),
    // Every directory on the way, as a tar from PostgreSQL lists them.
    ...LONG_NAME.split('/').slice(1, -1).flatMap((_, i, parts) => dir(`base/${parts.slice(0, i + 1).join('/')}`)),
    ...file(LONG_NAME, Buffer.from('long path')),
    ...file(RAW_NAME, Buffer.from('non-UTF-8 name')),
    ...link('link-to-long-target', LONG_TARGET.slice(1)),
    ...dir('pg_tblspc'),
    ...link('pg_tblspc/16385', start.tablespaces[0]!.location),
    ...dir('pg_wal'),
    ...dir('pg_wal/archive_status'),
    { type: 'archive-end' },
    { type: 'archive', kind: 'tablespace', name: '16385', location: start.tablespaces[0]!.location },
    ...dir('PG_15_202209061'),
    ...dir('PG_15_202209061/1'),
    ...file('PG_15_202209061/1/16390', page.subarray(0, 8192)),
    { type: 'archive-end' },
    { type: 'end', endLsn: '0/2000100', timeline: 1 },
  ];
}

/** Runs the events through manifest-build into a sink. */
async function writeWith(events: BackupEvent[], sink: Writable): Promise<void> {
  await pipeline(Readable.from(events, { objectMode: true }), manifestBuild(), sink);
}

/** One tar stream, as `pgbb backup -D -` writes it. */
export async function sampleStream(opts: { zstd?: boolean; tablespace?: string } = {}): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const output = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(Buffer.from(c)), cb()) });
  await writeWith(sampleEvents(opts), new StdoutSink({ output, compress: opts.zstd ? { method: 'zstd', level: 1, workers: 0 } : { method: 'none' } }));
  return Buffer.concat(chunks);
}

/** A tar directory, as `pgbb backup -F tar` writes it, in `target`. */
export async function sampleTarDirectory(target: string, opts: { zstd?: boolean; tablespace?: string } = {}): Promise<string[]> {
  await writeWith(sampleEvents(opts), new TarFilesSink({ target, sync: false, compress: opts.zstd ? { method: 'zstd', level: 1, workers: 0 } : { method: 'none' } }));
  return (await fs.readdir(target)).map((n) => join(target, n));
}
