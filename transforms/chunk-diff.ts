/**
 * chunk-diff: compares a backup, chunk by chunk, with the chunk map of what
 * the target already holds, and passes on only what changed (rewriter).
 *
 * In:  member events of a full backup, every file's data in order from 0
 *      (put manifest-verify and other observers before this stage). Entries
 *      that arrive already marked `inPlace` (from incremental-apply) carry
 *      whole chunks at chunk-aligned offsets; the chunks they skip are taken
 *      as unchanged from `prior`; their `inTarget` pieces are digested but
 *      never passed on.
 * Out: start, archives, directories and symlinks as they came. A regular file
 *      that `prior` lists becomes an `inPlace` entry followed by the data
 *      events of its changed chunks only, at their offsets (a chunk is held,
 *      by reference, until its last byte has been digested: memory is one
 *      chunk beyond the stream's buffers); a file `prior` does not list
 *      passes whole. A chunk is unchanged when its length, CRC32C and
 *      keyed XXH3-128 equal the prior's (its key is kept in the new map). Before the first `manifest`
 *      or `end`: the new chunk map as member `pg_wal/pgbb.chunkmap` (see
 *      chunk-map-build); an upstream member of that name is dropped. With
 *      `rebuildManifest` (or 'incremental' and an incremental backup), the
 *      upstream manifest is dropped and one is built from the new map (a
 *      line as each file ends, whole-file CRC32C combined from the chunk
 *      CRCs: src/codec/manifest-writer.ts) and sent right before `end` — for
 *      incremental backups, whose server manifest lists INCREMENTAL.* files
 *      instead of the files rebuilt (chunk-diff-outputs.ts). The map goes out in ≤ 64 KiB pieces
 *      encoded as they are read, the manifest in the writer's pieces, both
 *      paced by the reader (paced-push.ts); files are held as encoded
 *      records meanwhile (src/codec/chunkmap/packed-files.ts).
 * Result (after end): { chunksChanged, chunksUnchanged, bytesIn, bytesOut,
 *      filesAdded, filesChanged, filesUnchanged, filesRemoved, map, manifest }.
 * Errors: PgbbError 'chunk_map' for data out of order or disagreeing with its
 *      size, a chunk-size mismatch with `prior`, or an `inPlace` entry that
 *      skips a chunk `prior` cannot vouch for; ManifestError from the
 *      rebuilt manifest (a backup spanning timelines is not supported there).
 */
import type { ArchiveKind, BackupEvent, DataEvent, EndEvent, EntryEvent, StartEvent } from '../src/events';
import { PgbbError } from '../src/errors';
import {
  CHUNK_MAP_FILE, checkChunkSize, chunkCount, chunkKey, chunkLength, DEFAULT_CHUNK_SIZE, hashKeyOf, sameChunk,
  type ChunkMap, type ChunkMapFile,
} from '../src/codec/chunkmap/chunk-map';
import { ChunkHasher, ChunkListBuilder, newHashKey, PieceCrcs, toBoundary } from '../src/codec/chunkmap/chunk-hasher';
import { dataCrc } from '../src/codec/data-crc';
import { manifestPathOf } from '../src/manifest/file-tracker';
import { PacedTransform } from './paced-push';
import { release } from '../src/io/slab-pool';
import { ChunkDiffOutputs, manifestEvents } from './chunk-diff-outputs';

export interface ChunkDiffOptions {
  /** What the target holds now (see src/refresh/prior-state.ts); null: everything is new. */
  prior: ChunkMap | null;
  /** Must equal prior's chunk size when both are given (default: prior's, else 1 MiB). */
  chunkSize?: number;
  /** Replace the upstream manifest with one built from the new chunk map: always, or ('incremental') when `start` says the backup is incremental. */
  rebuildManifest?: boolean | 'incremental';
  /** Recorded in the new map's header: where the target keeps each tablespace (OID → location) and -T for new ones (see tablespace-locations.ts). */
  tablespaces?: { existing: ReadonlyMap<string, string>; mapping: Record<string, string> };
}

export interface ChunkDiffResult {
  chunksChanged: number;
  chunksUnchanged: number;
  /** Data bytes received. */
  bytesIn: number;
  /** Data bytes passed on (what the sink will write). */
  bytesOut: number;
  filesAdded: number;
  filesChanged: number;
  filesUnchanged: number;
  /** Files of `prior` the new backup does not have. */
  filesRemoved: number;
  map: ChunkMap;
  /** The rebuilt manifest, with rebuildManifest (the stream carried it in pieces; this joins them). */
  readonly manifest: Buffer | null;
}

interface FileState {
  key: string;
  size: number;
  prior: ChunkMapFile | undefined;
  /** Held until the chunk is judged (prior files only). */
  held: DataEvent[] | null;
  /** Upstream entry was already inPlace: chunks may be skipped. */
  gaps: boolean;
  pos: number;
  list: ChunkListBuilder;
  changed: boolean;
  /** Listed in the rebuilt manifest, with this modification time. */
  listed: Date | null;
}

export class ChunkDiff extends PacedTransform {
  private readonly prior: ChunkMap | null;
  private readonly chunkSize: number;
  private readonly rebuildOption: boolean | 'incremental';
  private rebuild = false;
  /** The new chunk map and the rebuilt manifest. */
  private readonly out: ChunkDiffOutputs;
  private readonly hasher: ChunkHasher;
  private readonly pieces = new PieceCrcs();
  /** One builder for every file (each is packed into newMap as it ends). */
  private readonly list: ChunkListBuilder;
  private kind: ArchiveKind = 'base';
  private archiveName = 'base';
  private file: FileState | null = null;
  private skipping = false;
  private start: StartEvent | null = null;
  private mapSent = false;
  private stats = { chunksChanged: 0, chunksUnchanged: 0, bytesIn: 0, bytesOut: 0, filesAdded: 0, filesChanged: 0, filesUnchanged: 0 };
  private done: ChunkDiffResult | null = null;

  constructor(opts: ChunkDiffOptions) {
    super({ objectMode: true, highWaterMark: 16 });
    this.prior = opts.prior;
    this.chunkSize = checkChunkSize(opts.chunkSize ?? opts.prior?.chunkSize ?? DEFAULT_CHUNK_SIZE);
    if (this.prior && this.prior.chunkSize !== this.chunkSize) {
      throw new PgbbError('chunk_map', `chunk size ${this.chunkSize} differs from the prior map's ${this.prior.chunkSize}`);
    }
    this.rebuildOption = opts.rebuildManifest ?? false;
    this.rebuild = this.rebuildOption === true;
    if (this.prior?.hashAlgorithm === 'sha256') throw new PgbbError('chunk_map', 'the prior map has SHA-256 chunk hashes (format 1): digest the target again (prior-state.ts) rather than compare with them');
    // The prior's key: its hashes and the new ones must be comparable, and the next refresh compares with these.
    const hashKey = this.prior ? this.prior.header.hashKey : newHashKey();
    this.hasher = new ChunkHasher(hashKeyOf(hashKey), this.chunkSize);
    this.out = new ChunkDiffOutputs(this.chunkSize, hashKey!, opts.tablespaces);
    this.list = new ChunkListBuilder('', this.chunkSize);
  }

  get result(): ChunkDiffResult | null {
    return this.done;
  }

  /** Returns a promise when the event sends the map or the rebuilt manifest (paced: see paced-push.ts). */
  protected override handle(ev: BackupEvent): Promise<void> | void {
    switch (ev.type) {
      case 'data':
        if (this.skipping) return;
        if (this.file) return this.data(this.file, ev);
        break;
      case 'entry':
        this.endFile();
        this.skipping = false;
        if (ev.kind === 'file') return this.entry(ev);
        break;
      case 'entry-end':
        if (this.skipping) {
          this.skipping = false;
          return;
        }
        this.endFile();
        break;
      case 'archive':
        this.endFile();
        this.kind = ev.kind;
        this.archiveName = ev.name;
        break;
      case 'archive-end':
        this.endFile();
        break;
      case 'start':
        this.start = ev;
        if (this.rebuildOption === 'incremental') this.rebuild = ev.incremental === true;
        this.out.begin(ev, this.rebuild);
        break;
      case 'manifest':
        if (!this.mapSent) return this.sendMap().then(() => void (this.rebuild || this.push(ev)));
        if (this.rebuild) return;
        break;
      case 'end':
        return this.sendMap().then(() => this.finish(ev));
    }
    this.push(ev);
  }

  private entry(ev: EntryEvent): void {
    const key = chunkKey(this.kind, this.archiveName, ev.path);
    if (key === CHUNK_MAP_FILE) {
      this.skipping = true;
      return;
    }
    const prior = this.prior?.files.get(key);
    if (ev.inPlace && !prior) throw new PgbbError('chunk_map', `"${key}" arrives as an in-place update but the target has no such file`);
    this.file = {
      key,
      size: ev.size,
      prior,
      held: prior ? [] : null,
      gaps: ev.inPlace ?? false,
      pos: 0,
      list: this.list.reset(key),
      changed: false,
      listed: this.out.listing && manifestPathOf(this.kind, this.archiveName, ev.path) !== null ? ev.mtime : null,
    };
    this.push(prior && !ev.inPlace ? { ...ev, inPlace: true } : ev);
  }

  private data(f: FileState, ev: DataEvent): void {
    const C = this.chunkSize;
    this.stats.bytesIn += ev.chunk.length;
    if (f.gaps && this.hasher.length === 0 && ev.offset > f.pos) {
      if (ev.offset % C !== 0) throw new PgbbError('chunk_map', `in-place data for "${f.key}" starts at offset ${ev.offset}, inside a chunk`);
      this.keepPrior(f, ev.offset / C);
      f.pos = ev.offset;
    }
    if (ev.offset !== f.pos) throw new PgbbError('chunk_map', `data for "${f.key}" at offset ${ev.offset}, expected ${f.pos}`);
    if (f.pos + ev.chunk.length > f.size) throw new PgbbError('chunk_map', `data for "${f.key}" runs past its size ${f.size}`);
    // The event's CRC32C, shared with the manifest check upstream: each byte is checksummed once.
    const crcs = this.pieces.of(ev.chunk.length, dataCrc(ev));
    let at = 0;
    while (at < ev.chunk.length) {
      const n = Math.min(ev.chunk.length - at, toBoundary(f.pos, C));
      const piece: DataEvent = at === 0 && n === ev.chunk.length ? ev : { type: 'data', offset: f.pos, chunk: ev.chunk.subarray(at, at + n), ...(ev.inTarget ? { inTarget: true } : {}) };
      this.hasher.update(piece.chunk, crcs.next(piece.chunk));
      if (f.held) f.held.push(piece);
      else {
        this.push(piece);
        this.stats.bytesOut += n;
      }
      at += n;
      f.pos += n;
      if (f.pos % C === 0 || f.pos === f.size) this.closeChunk(f);
    }
  }

  /** Judges the chunk just completed: drop its held pieces when it matches the prior's. */
  private closeChunk(f: FileState): void {
    const C = this.chunkSize;
    const k = Math.floor((f.pos - 1) / C);
    const len = this.hasher.length;
    const d = this.hasher.digest();
    f.list.push(d);
    const p = f.prior;
    const same = p !== undefined && k < p.crcs.length && chunkLength(p.size, C, k) === len && sameChunk(p, k, d.crc, d.hash);
    if (same) this.stats.chunksUnchanged++;
    else this.stats.chunksChanged++;
    if (!f.held) return;
    if (!same) f.changed = true;
    for (const piece of f.held) {
      // Dropped: an unchanged chunk's bytes, and those the target already holds (incremental-apply's), were only
      // needed for the digest, which has its copy; recycled read memory may be read into again (src/io/slab-pool.ts).
      if (same || piece.inTarget) {
        release(piece.chunk);
        continue;
      }
      this.push(piece);
      this.stats.bytesOut += piece.chunk.length;
    }
    f.held = [];
  }

  /** Chunks [list.count, upTo) an in-place entry skipped: the prior must hold each, at the same length. */
  private keepPrior(f: FileState, upTo: number): void {
    const C = this.chunkSize;
    const p = f.prior!;
    for (let k = f.list.count; k < upTo; k++) {
      if (k >= p.crcs.length || chunkLength(p.size, C, k) !== chunkLength(f.size, C, k)) {
        throw new PgbbError('chunk_map', `in-place update of "${f.key}" skips chunk ${k}, which the target does not hold at its new length`);
      }
      f.list.pushFrom(p, k);
      this.stats.chunksUnchanged++;
    }
  }

  private endFile(): void {
    const f = this.file;
    if (!f) return;
    this.file = null;
    if (this.hasher.length) throw new PgbbError('chunk_map', `"${f.key}" ends inside chunk ${Math.floor(f.pos / this.chunkSize)} (${f.pos} of ${f.size} bytes)`);
    if (f.gaps) this.keepPrior(f, chunkCount(f.size, this.chunkSize));
    else if (f.pos !== f.size) throw new PgbbError('chunk_map', `"${f.key}" has ${f.pos} bytes of data but its size is ${f.size}`);
    this.out.addFile(f.key, f.size, f.list.view(f.size), f.listed);
    if (!f.prior) this.stats.filesAdded++;
    else if (f.changed || f.size !== f.prior.size) this.stats.filesChanged++;
    else this.stats.filesUnchanged++;
  }

  private async sendMap(): Promise<void> {
    if (this.mapSent) return;
    this.endFile();
    this.mapSent = true;
    await this.pushPaced(this.out.mapEvents());
  }

  private async finish(end: EndEvent): Promise<void> {
    const s = this.start;
    if (this.rebuild && !s) throw new PgbbError('chunk_map', 'cannot build backup_manifest: the stream had no start event');
    const pieces = this.out.finishManifest(s, end);
    if (pieces) await this.pushPaced(manifestEvents(pieces));
    this.done = {
      ...this.stats, filesRemoved: this.out.removedSince(this.prior), map: this.out.map,
      get manifest() {
        return pieces && Buffer.concat(pieces);
      },
    };
    this.push(end);
  }
}

export function chunkDiff(opts: ChunkDiffOptions): ChunkDiff {
  return new ChunkDiff(opts);
}
