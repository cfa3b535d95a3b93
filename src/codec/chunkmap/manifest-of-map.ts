/**
 * The backup_manifest of a backup rebuilt from its chunk map (pure): what
 * chunk-diff sends for an incremental refresh, whose server manifest lists
 * INCREMENTAL.* files instead of the files rebuilt. Each file's whole-file
 * CRC32C is combined from its chunk CRCs (crc32c-combine.ts); files are read
 * from the map as the manifest is written (the input's `files` can be
 * iterated again), so nothing is built per file ahead of it.
 *
 * Errors: ManifestError from walRangesFor (a backup spanning timelines is
 * not supported here).
 */
import type { EndEvent, StartEvent } from '../../events';
import { crc32cHex, walRangesFor, type BuildManifestInput, type ManifestFileInput } from '../manifest';
import { crc32cOfChunks } from './crc32c-combine';
import type { ChunkMap } from './types';

/** `listed`: the manifest's files (map keys, in manifest order) and their modification times. */
export function manifestOfMap(start: StartEvent, end: EndEvent, listed: ReadonlyMap<string, Date>, map: ChunkMap): BuildManifestInput {
  const { files, chunkSize } = map;
  return {
    version: start.serverVersion >= 170000 ? 2 : 1,
    systemIdentifier: start.systemIdentifier,
    walRanges: walRangesFor(start.startLsn, start.timeline, end.endLsn, end.timeline),
    files: {
      *[Symbol.iterator](): Iterator<ManifestFileInput> {
        for (const [key, mtime] of listed) {
          const f = files.get(key)!;
          yield { path: key, size: f.size, lastModified: mtime, checksumAlgorithm: 'CRC32C', checksum: crc32cHex(crc32cOfChunks(f.crcs, f.size, chunkSize)) };
        }
      },
    },
  };
}
