/**
 * chunk-map-build: records the chunk map of a backup while it flows
 * (observer: every event passes through unchanged; with `emit`, the map is
 * added as one more member).
 *
 * In:  member events; every regular file's `data` must come in order from
 *      offset 0 (put this stage before anything that skips or reorders data).
 *      Map keys: see chunkKey (tablespaces under `pg_tblspc/<oid>/`, the
 *      streamed WAL archive under `pg_wal/`).
 * Out: the same events. With `emit` (default true), right before the first
 *      `manifest` or `end` event: a `wal` archive holding one member,
 *      `pgbb.chunkmap` (the encoded map), so that the directory sink writes
 *      it to `pg_wal/pgbb.chunkmap` as the last file of the backup, before
 *      its manifest. Its timestamps then follow every file it describes,
 *      which is what a refresh relies on to notice later changes.
 * Result (after end): { files, chunks, bytes, map, encoded }.
 * Errors: PgbbError 'chunk_map' for data out of order, a file whose data
 *      disagrees with its size, or an upstream member already at
 *      pg_wal/pgbb.chunkmap (two maps would collide in the target).
 */
import { Transform } from 'node:stream';
import type { ArchiveKind, BackupEvent, EntryEvent } from '../src/events';
import { PgbbError } from '../src/errors';
import { CHUNK_MAP_FILE, checkChunkSize, chunkKey, DEFAULT_CHUNK_SIZE, encodeChunkMap, type ChunkMap } from '../src/codec/chunkmap/chunk-map';
import { ChunkHasher, ChunkListBuilder, toBoundary } from '../src/codec/chunkmap/chunk-hasher';
import { tablespaceLocations } from '../src/codec/chunkmap/tablespace-locations';

export interface ChunkMapBuildOptions {
  /** Bytes per chunk: a power of two from 64 KiB to 1 MiB (default 1 MiB). */
  chunkSize?: number;
  /** Add the map to the stream as `pg_wal/pgbb.chunkmap` (default true). */
  emit?: boolean;
  /** The sink's -T OLD=NEW: the map's header records where each tablespace was written (see tablespace-locations.ts). */
  tablespaceMapping?: Record<string, string>;
}

export interface ChunkMapBuildResult {
  files: number;
  chunks: number;
  bytes: number;
  map: ChunkMap;
  encoded: Buffer;
}

/** The events that carry an encoded map as `pg_wal/pgbb.chunkmap`, in ≤ 1 MiB data events. */
export function chunkMapMember(encoded: Buffer, mtime = new Date()): BackupEvent[] {
  const out: BackupEvent[] = [
    { type: 'archive', kind: 'wal', name: 'pg_wal', location: '' },
    { type: 'entry', path: CHUNK_MAP_FILE.slice('pg_wal/'.length), kind: 'file', size: encoded.length, mode: 0o600, mtime },
  ];
  for (let off = 0; off < encoded.length; off += 1 << 20) out.push({ type: 'data', offset: off, chunk: encoded.subarray(off, off + (1 << 20)) });
  out.push({ type: 'entry-end' }, { type: 'archive-end' });
  return out;
}

/**
 * Follows archive / entry / data / entry-end and digests every regular file
 * into a ChunkMap, on this thread: SHA-256 on a worker thread was measured
 * slower on a 2-core machine shared with the server (the copy and the
 * hand-off cost more than they saved).
 */
export class ChunkMapRecorder {
  readonly map: ChunkMap;
  bytes = 0;
  chunks = 0;
  private kind: ArchiveKind = 'base';
  private archiveName = 'base';
  private file: { key: string; size: number; pos: number; list: ChunkListBuilder } | null = null;
  private readonly hasher = new ChunkHasher();

  constructor(readonly chunkSize: number) {
    this.map = { chunkSize, header: { systemIdentifier: '0', timeline: 0, startLsn: '0/0', serverVersion: 0 }, files: new Map() };
  }

  archive(kind: ArchiveKind, name: string): void {
    this.entryEnd();
    this.kind = kind;
    this.archiveName = name;
  }

  /** Starts a member; returns its key when it is a regular file. */
  entry(ev: EntryEvent): string | null {
    this.entryEnd();
    if (ev.kind !== 'file') return null;
    const key = chunkKey(this.kind, this.archiveName, ev.path);
    if (key === CHUNK_MAP_FILE) throw new PgbbError('chunk_map', `the backup stream already carries "${CHUNK_MAP_FILE}"`);
    this.file = { key, size: ev.size, pos: 0, list: new ChunkListBuilder(key, this.chunkSize, ev.size) };
    return key;
  }

  data(offset: number, chunk: Buffer): void {
    const f = this.file;
    if (!f) return;
    if (offset !== f.pos) throw new PgbbError('chunk_map', `data for "${f.key}" at offset ${offset}, expected ${f.pos}`);
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, toBoundary(f.pos, this.chunkSize));
      this.hasher.update(at === 0 && n === chunk.length ? chunk : chunk.subarray(at, at + n));
      at += n;
      f.pos += n;
      if (f.pos % this.chunkSize === 0) this.closeChunk(f);
    }
    this.bytes += chunk.length;
  }

  entryEnd(): void {
    const f = this.file;
    if (!f) return;
    this.file = null;
    if (this.hasher.length) this.closeChunk(f);
    if (f.pos !== f.size) throw new PgbbError('chunk_map', `"${f.key}" has ${f.pos} bytes of data but its size is ${f.size}`);
    this.map.files.set(f.key, f.list.finish(f.size));
  }

  private closeChunk(f: { list: ChunkListBuilder }): void {
    f.list.push(this.hasher.digest());
    this.chunks++;
  }
}

export class ChunkMapBuild extends Transform {
  private readonly recorder: ChunkMapRecorder;
  private readonly emitMap: boolean;
  private readonly mapping: Record<string, string>;
  private emitted = false;
  private done: ChunkMapBuildResult | null = null;

  constructor(opts: ChunkMapBuildOptions = {}) {
    super({ objectMode: true, highWaterMark: 16 });
    this.recorder = new ChunkMapRecorder(checkChunkSize(opts.chunkSize ?? DEFAULT_CHUNK_SIZE));
    this.emitMap = opts.emit ?? true;
    this.mapping = opts.tablespaceMapping ?? {};
  }

  get result(): ChunkMapBuildResult | null {
    return this.done;
  }

  override _transform(ev: BackupEvent, _enc: BufferEncoding, cb: (err?: Error | null, ev?: BackupEvent) => void): void {
    const r = this.recorder;
    try {
      switch (ev.type) {
        case 'data':
          r.data(ev.offset, ev.chunk);
          break;
        case 'entry':
          r.entry(ev);
          break;
        case 'entry-end':
        case 'archive-end':
          r.entryEnd();
          break;
        case 'archive':
          r.archive(ev.kind, ev.name);
          break;
        case 'start':
          r.map.header = {
            systemIdentifier: ev.systemIdentifier, timeline: ev.timeline, startLsn: ev.startLsn, serverVersion: ev.serverVersion,
            tablespaces: tablespaceLocations(ev.tablespaces, this.mapping),
          };
          break;
        case 'manifest':
        case 'end':
          this.finish();
          break;
      }
    } catch (err) {
      return cb(err as Error);
    }
    cb(null, ev);
  }

  private finish(): void {
    if (this.emitted) return;
    this.emitted = true;
    const r = this.recorder;
    r.entryEnd();
    const encoded = encodeChunkMap(r.map);
    this.done = { files: r.map.files.size, chunks: r.chunks, bytes: r.bytes, map: r.map, encoded };
    if (this.emitMap) for (const ev of chunkMapMember(encoded)) this.push(ev);
  }
}

export function chunkMapBuild(opts: ChunkMapBuildOptions = {}): ChunkMapBuild {
  return new ChunkMapBuild(opts);
}
