/**
 * What chunk-diff makes besides the data it passes on: the new chunk map (a
 * file's chunk list packed in as the file ends) and, with rebuildManifest,
 * a backup_manifest built from it (a line as each listed file ends,
 * whole-file CRC32C combined from the chunk CRCs: src/codec/manifest-writer.ts).
 * Split from chunk-diff.ts, which keeps the judging of chunks; this is what
 * the map and manifest hold and the events that carry them.
 */
import type { BackupEvent, EndEvent, StartEvent } from '../src/events';
import type { ChunkMap, ChunkMapFile } from '../src/codec/chunkmap/chunk-map';
import { crc32cHex, ManifestWriter, walRangesFor } from '../src/codec/manifest';
import { crc32cOfChunks } from '../src/codec/chunkmap/crc32c-combine';
import { manifestVersionFor } from '../src/codec/server-version';
import { tablespaceLocations } from '../src/codec/chunkmap/tablespace-locations';
import { chunkMapMember, emptyChunkMap } from './chunk-map-build';

export class ChunkDiffOutputs {
  readonly map: ChunkMap;
  /** The rebuilt manifest, from `start` when rebuilding. */
  private manifest: ManifestWriter | null = null;

  constructor(
    private readonly chunkSize: number,
    /** The prior map's hash key, kept so that the next refresh compares like with like. */
    hashKey: string,
    /** Where the target keeps each tablespace and -T for new ones, for the map's header. */
    private readonly tablespaces?: { existing: ReadonlyMap<string, string>; mapping: Record<string, string> },
  ) {
    this.map = emptyChunkMap(chunkSize, hashKey);
  }

  /** At `start`: the map's header, and the manifest writer when `rebuild`. */
  begin(ev: StartEvent, rebuild: boolean): void {
    if (rebuild) this.manifest = new ManifestWriter({ version: manifestVersionFor(ev.serverVersion), systemIdentifier: ev.systemIdentifier });
    this.map.header = {
      hashKey: this.map.header.hashKey,
      systemIdentifier: ev.systemIdentifier, timeline: ev.timeline, startLsn: ev.startLsn, serverVersion: ev.serverVersion,
      tablespaces: tablespaceLocations(ev.tablespaces, this.tablespaces?.mapping, this.tablespaces?.existing),
    };
  }

  /** True when a manifest is being rebuilt (files it lists need their mtime kept). */
  get listing(): boolean {
    return this.manifest !== null;
  }

  /** A file ended: its chunks into the map; a manifest line when `listed` (its mtime). */
  addFile(key: string, size: number, entry: ChunkMapFile, listed: Date | null): void {
    this.map.files.set(key, entry); // packed: copied, the builder is reused
    if (listed) {
      // Whole-file CRC32C combined from the chunk CRCs.
      const checksum = crc32cHex(crc32cOfChunks(entry.crcs, size, this.chunkSize));
      this.manifest!.file({ path: key, size, lastModified: listed, checksumAlgorithm: 'CRC32C', checksum });
    }
  }

  /** The events of member `pg_wal/pgbb.chunkmap`, encoded as they are taken. */
  mapEvents(): Iterable<BackupEvent> {
    return chunkMapMember(this.map);
  }

  /** The rest of the rebuilt manifest (WAL ranges from start to end), or null when not rebuilding. */
  finishManifest(start: StartEvent | null, end: EndEvent): Buffer[] | null {
    return this.manifest?.finish(walRangesFor(start!.startLsn, start!.timeline, end.endLsn, end.timeline)) ?? null;
  }

  /** Files of `prior` the new map does not have. */
  removedSince(prior: ChunkMap | null): number {
    let removed = 0;
    for (const key of prior?.files.keys() ?? []) if (!this.map.files.has(key)) removed++;
    return removed;
  }
}

export function* manifestEvents(pieces: Iterable<Buffer>): Generator<BackupEvent> {
  for (const data of pieces) yield { type: 'manifest', data };
}
