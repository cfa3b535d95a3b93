/**
 * delta-unpack: one link of an S3 incremental chain, as stored (see
 * delta-pack.ts and src/codec/delta-members.ts), back into what chunk-diff
 * gave the refresh-directory sink — so that the sink rebuilds, in a
 * directory holding the parent, the backup this link is (rewriter).
 *
 * In:  member events of the link's archives (`w/`, `p/`, `c/<k>/` members)
 *      and `map`, the link's chunk map (checked against its record before).
 * Out: `w/` members as they are; a `p/` file as an `inPlace` entry of the
 *      size the map gives it, with the data of its `c/<k>/` members at
 *      k × chunk size; before the first `manifest` or `end`, the map as
 *      member `pg_wal/pgbb.chunkmap`, its header's tablespace locations
 *      made those of the directory (an existing link's, else -T's), so that
 *      the next link's refresh follows them.
 * Errors: PgbbError 'not_a_backup' for a member without a prefix, a `p/`
 *      file the map lacks, or a chunk that is out of order, beyond the
 *      file, of the wrong size, or not of the file before it.
 */
import type { BackupEvent, EntryEvent } from '../src/events';
import { PgbbError } from '../src/errors';
import { chunkCount, chunkKey, chunkLength, type ChunkMap } from '../src/codec/chunkmap/chunk-map';
import { tablespaceLocations } from '../src/codec/chunkmap/tablespace-locations';
import { parseDeltaName } from '../src/codec/delta-members';
import { PacedTransform } from './paced-push';
import { chunkMapMember } from './chunk-map-build';

export interface DeltaUnpackOptions {
  map: ChunkMap;
  /** Names the link in errors. */
  where: string;
  /** The directory's tablespace links (OID → location) and -T, for the map's header. */
  tablespaces: { existing: ReadonlyMap<string, string>; mapping: Record<string, string> };
}

interface InPlaceFile {
  path: string;
  key: string;
  size: number;
  /** Next chunk index that may come. */
  next: number;
  /** Offset of the chunk member now open, or -1 between chunks. */
  base: number;
}

export class DeltaUnpack extends PacedTransform {
  private kind: 'base' | 'tablespace' | 'wal' = 'base';
  private archiveName = 'base';
  private file: InPlaceFile | null = null;
  /** The member now open is the empty p/ entry (its entry-end is the delta's, not the file's). */
  private inMarker = false;
  private mapSent = false;

  constructor(private readonly o: DeltaUnpackOptions) {
    super({ objectMode: true, highWaterMark: 16 });
  }

  private fail(why: string): never {
    throw new PgbbError('not_a_backup', `${this.o.where}: ${why}`);
  }

  protected override handle(ev: BackupEvent): Promise<void> | void {
    switch (ev.type) {
      case 'start':
        this.o.map.header = { ...this.o.map.header, tablespaces: tablespaceLocations(ev.tablespaces, this.o.tablespaces.mapping, this.o.tablespaces.existing) };
        break;
      case 'archive':
        this.closeFile();
        this.kind = ev.kind;
        this.archiveName = ev.name;
        break;
      case 'archive-end':
        this.closeFile();
        break;
      case 'entry':
        return this.entry(ev);
      case 'data': {
        const f = this.file;
        if (this.inMarker) this.fail(`in-place member "${f?.path}" holds data`);
        if (f && f.base >= 0) return void this.push({ type: 'data', offset: f.base + ev.offset, chunk: ev.chunk });
        break;
      }
      case 'entry-end':
        if (this.inMarker) {
          this.inMarker = false;
          return;
        }
        if (this.file) {
          this.file.base = -1;
          return;
        }
        break;
      case 'manifest':
      case 'end':
        this.closeFile();
        if (!this.mapSent) {
          this.mapSent = true;
          return this.pushPaced(chunkMapMember(this.o.map)).then(() => void this.push(ev));
        }
        break;
    }
    this.push(ev);
  }

  private entry(ev: EntryEvent): void {
    const m = parseDeltaName(ev.path, this.o.where);
    if (m.kind === 'chunk') {
      const f = this.file;
      if (!f || m.path !== f.path) this.fail(`chunk member "${ev.path}" does not follow its file`);
      const C = this.o.map.chunkSize;
      if (m.chunk < f.next || m.chunk >= chunkCount(f.size, C)) this.fail(`chunk ${m.chunk} of "${f.key}" is out of order or beyond its ${f.size} bytes`);
      if (ev.size !== chunkLength(f.size, C, m.chunk)) this.fail(`chunk ${m.chunk} of "${f.key}" is ${ev.size} bytes, not ${chunkLength(f.size, C, m.chunk)}`);
      f.next = m.chunk + 1;
      f.base = m.chunk * C;
      return;
    }
    this.closeFile();
    if (m.kind === 'whole') return void this.push({ ...ev, path: m.path });
    const key = chunkKey(this.kind, this.archiveName, m.path);
    const mapped = this.o.map.files.get(key);
    if (!mapped) this.fail(`"${key}" is updated in place but its chunk map does not list it`);
    if (ev.kind !== 'file' || ev.size !== 0) this.fail(`in-place member "${ev.path}" is not an empty file`);
    this.file = { path: m.path, key, size: mapped.size, next: 0, base: -1 };
    this.inMarker = true;
    this.push({ ...ev, path: m.path, size: mapped.size, inPlace: true });
  }

  /** The in-place file ends where its last chunk did. */
  private closeFile(): void {
    if (!this.file) return;
    this.file = null;
    this.push({ type: 'entry-end' });
  }
}

export function deltaUnpack(o: DeltaUnpackOptions): DeltaUnpack {
  return new DeltaUnpack(o);
}
