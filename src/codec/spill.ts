/**
 * Where a codec's full blocks or pages go to leave memory (src/io/scratch-file.ts
 * is one): the chunk map's records (chunkmap/packed-files.ts) and a FileTable's
 * paths and records (file-table-pages.ts).
 */

/** append returns the offset to read the bytes back from. */
export interface RecordSpill {
  append(block: Uint8Array): number;
  /** The bytes at `offset`: into `into` (its first `length` bytes) when given, else a new buffer. */
  read(offset: number, length: number, into?: Buffer): Buffer;
}

/** A spill whose pages may be changed after they went: overwrite rewrites appended bytes. */
export interface PageSpill extends RecordSpill {
  overwrite(offset: number, bytes: Uint8Array): void;
}
