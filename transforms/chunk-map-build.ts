/**
 * chunk-map-build: records the chunk map of a backup while it flows
 * (an Observer, transforms/observer.ts: every event passes through
 * unchanged; with `emit`, the map is added as one more member).
 *
 * In:  member events; every regular file's `data` must come in order from
 *      offset 0 (put this stage before anything that skips or reorders data).
 *      Map keys: see chunkKey (tablespaces under `pg_tblspc/<oid>/`, the
 *      streamed WAL archive under `pg_wal/`).
 * Out: the same events. With `emit` (default true), right before the first
 *      `manifest` or `end` event: a `wal` archive holding one member,
 *      `pgbb.chunkmap` (the encoded map, its data in ≤ 64 KiB pieces encoded
 *      as they are read: the map is never held encoded whole, and each file
 *      is held as its encoded record, src/codec/chunkmap/packed-files.ts,
 *      from its end to the map's; past the first MiB of records, in an unlinked
 *      temporary file, src/io/scratch-file.ts, closed on destroy), so that the directory sink writes
 *      it to `pg_wal/pgbb.chunkmap` as the last file of the backup, before
 *      its manifest. Its timestamps then follow every file it describes,
 *      which is what a refresh relies on to notice later changes.
 * Result (after end): { files, chunks, bytes, size, map, encoded } (`encoded`
 *      is built when asked for: the whole map in one buffer). Once the stream
 *      is destroyed (which follows its end), a map past 1 MiB of records has
 *      released its temporary file: reading its records then fails clearly.
 *      Not with `emit: false` after a clean end: the map is there to be read
 *      after the stream (an S3 sink uploads it at commit, while this stage is
 *      already destroyed), and `release()` gives the file back.
 * Errors: PgbbError 'chunk_map' for data out of order, a file whose data
 *      disagrees with its size, or an upstream member already at
 *      pg_wal/pgbb.chunkmap (two maps would collide in the target).
 */
import type { ArchiveEvent, ArchiveKind, BackupEvent, DataEvent, EntryEvent, StartEvent } from '../src/events';
import { PgbbError } from '../src/errors';
import {
  CHUNK_MAP_FILE, CHUNK_MAP_PIECE, checkChunkSize, chunkKey, DEFAULT_CHUNK_SIZE, encodeChunkMap, encodeChunkMapPieces, encodedChunkMapSize, HASH_BYTES, hashKeyOf, type ChunkMap,
} from '../src/codec/chunkmap/chunk-map';
import { PackedChunkFiles, type RecordSpill } from '../src/codec/chunkmap/packed-files';
import { ScratchFile } from '../src/io/scratch-file';
import { retain, SlabReader } from '../src/io/slab-pool';
import { Pacer } from './paced-push';
import { Observer } from './observer';
import { ChunkHasher, ChunkListBuilder, newHashKey, PieceCrcs, toBoundary } from '../src/codec/chunkmap/chunk-hasher';
import { dataCrc } from '../src/codec/data-crc';
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
  /** The encoded map's length. */
  size: number;
  map: ChunkMap;
  /** The whole encoded map, built on each read (the stream carried it in pieces). */
  readonly encoded: Buffer;
}

/**
 * The events that carry `map` as `pg_wal/pgbb.chunkmap`, its data encoded
 * piece by piece as the events are taken (see encodeChunkMapPieces).
 */
export function* chunkMapMember(map: ChunkMap, mtime = new Date()): Generator<BackupEvent> {
  yield { type: 'archive', kind: 'wal', name: 'pg_wal', location: '' };
  yield { type: 'entry', path: CHUNK_MAP_FILE.slice('pg_wal/'.length), kind: 'file', size: encodedChunkMapSize(map), mode: 0o600, mtime };
  let offset = 0;
  // In recycled slabs, like the data read from the server (src/io/slab-pool.ts): the write that takes a piece gives it back.
  const slabs = new SlabReader();
  try {
    for (const chunk of encodeChunkMapPieces(map, CHUNK_MAP_PIECE, slabs)) {
      retain(chunk);
      yield { type: 'data', offset, chunk };
      offset += chunk.length;
    }
  } finally {
    slabs.finish();
  }
  yield { type: 'entry-end' };
  yield { type: 'archive-end' };
}

/** A map to build: its files packed as they end (memory: their encoded records, or past 1 MiB of them, ~20 bytes a file with `spill`); a fresh hash key unless one is kept. */
export function emptyChunkMap(chunkSize: number, hashKey = newHashKey(), spill?: RecordSpill): ChunkMap {
  return { chunkSize, header: { systemIdentifier: '0', timeline: 0, startLsn: '0/0', serverVersion: 0, hashKey }, files: new PackedChunkFiles(chunkSize, HASH_BYTES, { spill }) };
}

/**
 * Follows archive / entry / data / entry-end and digests every regular file
 * into a ChunkMap, on this thread (XXH3-128 costs ~0.2 s per GB: nothing
 * a worker thread's hand-off would save).
 */
export class ChunkMapRecorder {
  readonly map: ChunkMap;
  bytes = 0;
  chunks = 0;
  private kind: ArchiveKind = 'base';
  private archiveName = 'base';
  private file: { key: string; size: number; pos: number; list: ChunkListBuilder } | null = null;
  private readonly hasher: ChunkHasher;
  private readonly list: ChunkListBuilder;
  private readonly pieces = new PieceCrcs();

  /** Where the map's records go past the first MiB; close() it when the map is no longer read. */
  readonly spill = new ScratchFile('the chunk map');

  constructor(readonly chunkSize: number) {
    this.map = emptyChunkMap(chunkSize, undefined, this.spill);
    this.hasher = new ChunkHasher(hashKeyOf(this.map.header.hashKey), chunkSize);
    this.list = new ChunkListBuilder('', chunkSize);
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
    this.file = { key, size: ev.size, pos: 0, list: this.list.reset(key) };
    return key;
  }

  /** `crc`: the chunk's CRC32C when known (dataCrc: the manifest check's), so that its bytes are not checksummed again. */
  data(offset: number, chunk: Buffer, crc?: number): void {
    const f = this.file;
    if (!f) return;
    if (offset !== f.pos) throw new PgbbError('chunk_map', `data for "${f.key}" at offset ${offset}, expected ${f.pos}`);
    const crcs = crc === undefined ? null : this.pieces.of(chunk.length, crc);
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, toBoundary(f.pos, this.chunkSize));
      const piece = at === 0 && n === chunk.length ? chunk : chunk.subarray(at, at + n);
      this.hasher.update(piece, crcs?.next(piece));
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
    // Packed (copied into the map's records): the builder is reused for the next file.
    this.map.files.set(f.key, f.list.view(f.size));
  }

  private closeChunk(f: { list: ChunkListBuilder }): void {
    f.list.push(this.hasher.digest());
    this.chunks++;
  }
}

/** The recorder as an observer (transforms/observer.ts): every event passes on; the map member goes out before the first manifest piece or end. */
export class ChunkMapBuild extends Observer {
  private readonly recorder: ChunkMapRecorder;
  private readonly emitMap: boolean;
  private readonly mapping: Record<string, string>;
  private readonly pacer = new Pacer(this);
  private emitted = false;
  private done: ChunkMapBuildResult | null = null;

  constructor(opts: ChunkMapBuildOptions = {}) {
    super();
    this.recorder = new ChunkMapRecorder(checkChunkSize(opts.chunkSize ?? DEFAULT_CHUNK_SIZE));
    this.emitMap = opts.emit ?? true;
    this.mapping = opts.tablespaceMapping ?? {};
  }

  get result(): ChunkMapBuildResult | null {
    return this.done;
  }

  protected override onStart(ev: StartEvent): void {
    this.recorder.map.header = {
      hashKey: this.recorder.map.header.hashKey,
      systemIdentifier: ev.systemIdentifier, timeline: ev.timeline, startLsn: ev.startLsn, serverVersion: ev.serverVersion,
      tablespaces: tablespaceLocations(ev.tablespaces, this.mapping),
    };
  }

  protected override onArchive(ev: ArchiveEvent): void {
    this.recorder.archive(ev.kind, ev.name);
  }

  protected override onEntry(ev: EntryEvent): void {
    this.recorder.entry(ev);
  }

  protected override onData(ev: DataEvent): void {
    // The event's CRC32C, shared with the manifest check upstream: each byte is checksummed once.
    this.recorder.data(ev.offset, ev.chunk, dataCrc(ev));
  }

  protected override onEntryEnd(): void {
    this.recorder.entryEnd();
  }

  protected override onManifest(): Promise<void> | void {
    if (!this.emitted) return this.finish();
  }

  protected override onEnd(): Promise<void> | void {
    if (!this.emitted) return this.finish();
  }

  // The map member is paced by the reader (paced-push.ts).
  override _read(size: number): void {
    this.pacer.resume();
    super._read(size);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.pacer.resume();
    // A map not emitted is read after the stream's end by whoever asked for it (an S3 sink's commit),
    // which then calls release(); a failed stream's map is nobody's.
    if (err || this.emitMap || !this.done) this.recorder.spill.close();
    super._destroy(err, callback);
  }

  /** Gives back the map's temporary file (with `emit: false`, once the map is read); idempotent. */
  release(): void {
    this.recorder.spill.close();
  }

  private async finish(): Promise<void> {
    this.emitted = true;
    const r = this.recorder;
    r.entryEnd();
    const map = r.map;
    this.done = {
      files: map.files.size, chunks: r.chunks, bytes: r.bytes, size: encodedChunkMapSize(map), map,
      get encoded() {
        return encodeChunkMap(map);
      },
    };
    if (this.emitMap) await this.pacer.push(chunkMapMember(map));
  }
}

export function chunkMapBuild(opts: ChunkMapBuildOptions = {}): ChunkMapBuild {
  return new ChunkMapBuild(opts);
}
