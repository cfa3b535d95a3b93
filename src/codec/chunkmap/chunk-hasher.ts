/**
 * Per-chunk digests while bytes flow (pure computation, no streams):
 *
 *   ChunkHasher        running CRC32C + SHA-256 of one chunk; digest() resets
 *   ChunkListBuilder   a file's chunk records, in order, into a ChunkMapFile
 *   toBoundary         bytes left before the next chunk boundary
 *
 * Buffers are hashed where they are (no copies): a chunk that arrives as 32
 * 32-KiB data events is 32 updates.
 */
import { createHash, type Hash } from 'node:crypto';
// calculate(buf, crc) continues a running CRC (types: src/types/fast-crc32c.d.ts).
import { calculate as crc32c } from 'fast-crc32c';
import { PgbbError } from '../../errors';
import { chunkCount, HASH_BYTES, type ChunkMapFile } from './chunk-map';

export interface ChunkDigest {
  crc: number;
  /** HASH_BYTES bytes. */
  hash: Buffer;
}

export class ChunkHasher {
  private crc = 0;
  private sha: Hash | null = null;
  /** Bytes since the last digest. */
  length = 0;

  update(buf: Buffer): void {
    if (!buf.length) return;
    this.crc = crc32c(buf, this.crc);
    (this.sha ??= createHash('sha256')).update(buf);
    this.length += buf.length;
  }

  digest(): ChunkDigest {
    const sha = this.sha ?? createHash('sha256');
    const out = { crc: this.crc >>> 0, hash: sha.digest().subarray(0, HASH_BYTES) };
    this.crc = 0;
    this.sha = null;
    this.length = 0;
    return out;
  }
}

/** One digest of a whole buffer. */
export function digestChunk(buf: Buffer): ChunkDigest {
  const h = new ChunkHasher();
  h.update(buf);
  return h.digest();
}

/** Bytes from `offset` to the end of its chunk. */
export function toBoundary(offset: number, chunkSize: number): number {
  return chunkSize - (offset % chunkSize);
}

export class ChunkListBuilder {
  private crcs: Uint32Array;
  private hashes: Buffer;
  private n = 0;

  constructor(
    public path: string,
    readonly chunkSize: number,
    expectedSize = 0,
  ) {
    const cap = Math.max(1, chunkCount(expectedSize, chunkSize));
    this.crcs = new Uint32Array(cap);
    this.hashes = Buffer.alloc(cap * HASH_BYTES);
  }

  /**
   * Starts over for another file, keeping its arrays: a stage that packs
   * each file's records as it ends (packed-files.ts) reuses one builder,
   * rather than allocate (and free) buffers per file.
   */
  reset(path: string): this {
    this.path = path;
    this.n = 0;
    return this;
  }

  get count(): number {
    return this.n;
  }

  push(d: ChunkDigest): void {
    this.grow();
    this.crcs[this.n] = d.crc;
    d.hash.copy(this.hashes, this.n * HASH_BYTES, 0, HASH_BYTES);
    this.n++;
  }

  /** Takes chunk `k`'s record from another map entry (an unchanged chunk). */
  pushFrom(f: ChunkMapFile, k: number): void {
    this.grow();
    this.crcs[this.n] = f.crcs[k];
    f.hashes.copy(this.hashes, this.n * HASH_BYTES, k * HASH_BYTES, (k + 1) * HASH_BYTES);
    this.n++;
  }

  finish(size: number): ChunkMapFile {
    const v = this.view(size);
    return { ...v, crcs: v.crcs.slice(), hashes: Buffer.from(v.hashes) };
  }

  /** As finish, but the records are views of this builder's arrays: copy them (PackedChunkFiles.set does) before a reset. */
  view(size: number): ChunkMapFile {
    const want = chunkCount(size, this.chunkSize);
    if (want !== this.n) {
      throw new PgbbError('chunk_map', `"${this.path}": ${this.n} chunks digested for a size of ${size} bytes (expected ${want})`);
    }
    return { path: this.path, size, crcs: this.crcs.subarray(0, this.n), hashes: this.hashes.subarray(0, this.n * HASH_BYTES) };
  }

  private grow(): void {
    if (this.n < this.crcs.length) return;
    const crcs = new Uint32Array(this.crcs.length * 2);
    crcs.set(this.crcs);
    const hashes = Buffer.alloc(crcs.length * HASH_BYTES);
    this.hashes.copy(hashes);
    this.crcs = crcs;
    this.hashes = hashes;
  }
}
