/**
 * Synthetic backups for chunk-map, chunk-diff and refresh tests (no server):
 *
 *   fakeControlFile(sysid)     a pg_control that src/codec/pg-control.ts accepts
 *   backupLabel(startLsn)      backup_label text
 *   backupEvents(spec)         a member stream: start, optional tablespace
 *                              archive, base archive, manifest?, end; data in
 *                              `split`-byte events (default 3000, so events
 *                              straddle chunk boundaries)
 *   collect(streams)           runs a pipeline, returns what came out
 *   HASH_KEY                   a chunk map hash key for maps built by hand
 *   rewriteMap(map, v, header) an encoded chunk map with another version and
 *                              header, re-sealed (older or lying maps)
 *   treeOf(dir)                every file, link and directory below dir,
 *                              contents as hex digests, for comparisons
 *   chunkFile(path, size, seed, chunkSize)
 *                              a ChunkMapFile with CRCs and hashes made from seed
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
// calculate(buf, crc) continues a running CRC (types: src/types/fast-crc32c.d.ts).
import { calculate as crc32c } from 'fast-crc32c';
import type { BackupEvent, StartEvent } from '../../src/events';
import { chunkCount, HASH_BYTES, type ChunkMapFile } from '../../src/codec/chunkmap/chunk-map';

export const SYSID = '7300000000000000001';
/** A chunk map hash key (hex) for maps built by hand; its bytes for digestChunk. */
export const HASH_KEY = 'a5'.repeat(32);
export const HASH_KEY_BYTES = Buffer.from(HASH_KEY, 'hex');

export function fakeControlFile(systemIdentifier = SYSID, salt = 0): Buffer {
  const b = Buffer.alloc(8192);
  b.writeBigUInt64LE(BigInt(systemIdentifier), 0);
  b.writeUInt32LE(salt, 8);
  const p = 200;
  b.writeUInt32LE(8192, p - 16); // blcksz
  b.writeUInt32LE(131072, p - 12); // relseg_size
  b.writeUInt32LE(8192, p - 8); // xlog_blcksz
  b.writeUInt32LE(16 << 20, p - 4); // xlog_seg_size
  b.writeUInt32LE(64, p); // nameDataLen
  b.writeUInt32LE(32, p + 4); // indexMaxKeys
  b.writeUInt32LE(1, p + 20); // data_checksum_version
  const crcAt = 296;
  b.writeUInt32LE(crc32c(b.subarray(0, crcAt)) >>> 0, crcAt);
  return b;
}

export function backupLabel(startLsn: string): Buffer {
  return Buffer.from(`START WAL LOCATION: ${startLsn} (file 000000010000000000000002)\nCHECKPOINT LOCATION: ${startLsn}\nBACKUP METHOD: streamed\nLABEL: test\nSTART TIMELINE: 1\n`);
}

export type Member = { path: string; kind?: 'file' | 'directory' | 'symlink'; data?: Buffer; linkTarget?: string; mtime?: Date };

export interface BackupSpec {
  startLsn?: string;
  endLsn?: string;
  systemIdentifier?: string;
  serverVersion?: number;
  base: Member[];
  /** Tablespace OID → location and members. */
  tablespace?: { oid: string; location: string; members: Member[] };
  split?: number;
  manifest?: Buffer;
}

export const MTIME = new Date('2025-03-01T10:00:00Z');

export function startEvent(spec: Pick<BackupSpec, 'startLsn' | 'systemIdentifier' | 'serverVersion' | 'tablespace'>): StartEvent {
  return {
    type: 'start', serverVersion: spec.serverVersion ?? 150018, systemIdentifier: spec.systemIdentifier ?? SYSID, timeline: 1,
    startLsn: spec.startLsn ?? '0/2000028',
    tablespaces: [...(spec.tablespace ? [{ oid: spec.tablespace.oid, location: spec.tablespace.location, size: null }] : []), { oid: null, location: '', size: null }],
    walSegmentSize: 16 << 20, blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'test', totalBytes: null,
  };
}

function members(list: Member[], split: number): BackupEvent[] {
  const out: BackupEvent[] = [];
  for (const m of list) {
    const data = m.data ?? Buffer.alloc(0);
    const kind = m.kind ?? 'file';
    out.push({ type: 'entry', path: m.path, kind, size: kind === 'file' ? data.length : 0, mode: kind === 'directory' ? 0o700 : 0o600, mtime: m.mtime ?? MTIME, ...(m.linkTarget ? { linkTarget: m.linkTarget } : {}) });
    for (let off = 0; off < data.length; off += split) out.push({ type: 'data', offset: off, chunk: data.subarray(off, off + split) });
    out.push({ type: 'entry-end' });
  }
  return out;
}

export function backupEvents(spec: BackupSpec): BackupEvent[] {
  const split = spec.split ?? 3000;
  const out: BackupEvent[] = [startEvent(spec)];
  if (spec.tablespace) {
    out.push({ type: 'archive', kind: 'tablespace', name: spec.tablespace.oid, location: spec.tablespace.location });
    out.push(...members(spec.tablespace.members, split), { type: 'archive-end' });
  }
  out.push({ type: 'archive', kind: 'base', name: 'base', location: '' }, ...members(spec.base, split), { type: 'archive-end' });
  if (spec.manifest) out.push({ type: 'manifest', data: spec.manifest });
  out.push({ type: 'end', endLsn: spec.endLsn ?? '0/2000100', timeline: 1 });
  return out;
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

export async function collect(events: BackupEvent[] | Readable, stages: Duplex[]): Promise<BackupEvent[]> {
  const out: BackupEvent[] = [];
  const source = Array.isArray(events) ? Readable.from(events, { objectMode: true }) : events;
  await pipeline([source, ...stages, new Writable({ objectMode: true, write: (ev: BackupEvent, _e, cb) => (out.push(ev), cb()) })]);
  return out;
}

/** path → 'dir' | 'link:<target>' | 'file:<size>:<sha256 prefix>', sorted. */
export async function treeOf(dir: string, skip: (rel: string) => boolean = () => false): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string) => {
    for (const name of (await fs.readdir(d)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const p = path.join(d, name);
      const st = await fs.lstat(p);
      if (st.isSymbolicLink()) out[r] = `link:${await fs.readlink(p)}`;
      else if (st.isDirectory()) {
        out[r] = 'dir';
        await walk(p, r);
      } else out[r] = `file:${st.size}:${createHash('sha256').update(await fs.readFile(p)).digest('hex').slice(0, 16)}`;
    }
  };
  await walk(dir, '');
  return out;
}

export function chunkFile(path: string, size: number, seed: number, chunkSize: number): ChunkMapFile {
  const n = chunkCount(size, chunkSize);
  const crcs = new Uint32Array(n).map((_, k) => (seed * 7919 + k * 104729) >>> 0);
  const hashes = Buffer.alloc(n * HASH_BYTES);
  for (let i = 0; i < hashes.length; i++) hashes[i] = (seed + i * 31) & 0xff;
  return { path, size, crcs, hashes };
}

/** An encoded chunk map with another format version and header, re-sealed so that only the checks behind its trailer can refuse it. */
export function rewriteMap(map: Buffer, version: number, header: unknown): Buffer {
  const oldLength = map.readUInt32LE(20);
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const head = Buffer.from(map.subarray(0, 24));
  head.writeUInt32LE(version, 8);
  head.writeUInt32LE(json.length, 20);
  const body = Buffer.concat([head, json, map.subarray(24 + oldLength, map.length - 32)]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}
