/**
 * The chunk map's shapes (types only), apart from the codec so that the
 * codec (chunk-map.ts) and the packed file store (packed-files.ts) both
 * depend on them and not on each other.
 */

export interface ChunkMapHeader {
  /** uint64 as a decimal string. */
  systemIdentifier: string;
  timeline: number;
  /** `X/X` */
  startLsn: string;
  serverVersion: number;
  /** OID → absolute location the backup wrote that tablespace to. */
  tablespaces?: Record<string, string>;
  /**
   * 32 random bytes in hex, chosen by the first backup of a directory and kept
   * by its refreshes: the XXH3-128 secret is derived from it (chunk-hasher.ts),
   * so that data written through the server cannot be crafted to collide
   * without reading the backup. Absent in format 1 maps.
   */
  hashKey?: string;
}

/** How a map's chunk hashes were made: XXH3-128 keyed by `hashKey` (format 2), or SHA-256's first 16 bytes (format 1, read, never trusted). */
export type ChunkHashAlgorithm = 'xxh3-128' | 'sha256';

export interface ChunkMapFile {
  path: string;
  size: number;
  /** One CRC32C per chunk. */
  crcs: Uint32Array;
  /** HASH_BYTES per chunk, chunk k at k * HASH_BYTES. */
  hashes: Buffer;
}

/**
 * A map's files by key: a Map, or a PackedChunkFiles (packed-files.ts: a
 * decoded map's, or one being built, its entries kept as encoded records;
 * `get` builds each).
 */
export interface ChunkFiles {
  readonly size: number;
  get(key: string): ChunkMapFile | undefined;
  has(key: string): boolean;
  set(key: string, file: ChunkMapFile): unknown;
  keys(): IterableIterator<string>;
  values(): IterableIterator<ChunkMapFile>;
  entries(): IterableIterator<[string, ChunkMapFile]>;
  [Symbol.iterator](): IterableIterator<[string, ChunkMapFile]>;
}

export interface ChunkMap {
  chunkSize: number;
  header: ChunkMapHeader;
  files: ChunkFiles;
  /** Absent: 'xxh3-128'. */
  hashAlgorithm?: ChunkHashAlgorithm;
}
