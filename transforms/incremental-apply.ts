/**
 * incremental-apply: turns a PostgreSQL 17+ INCREMENTAL backup into in-place
 * updates of the backup it was taken against (rewriter). A no-op unless the
 * `start` event says `incremental`.
 *
 * In:  member events of an incremental backup, checked against the server's
 *      manifest already (put manifest-verify before this stage); `target`:
 *      the directory holding the prior backup, `prior`: its chunk map (what
 *      the files there hold now: src/refresh/prior-state.ts).
 * Out: each `INCREMENTAL.<name>` member becomes an `inPlace` entry for
 *      `<name>` with the rebuilt size, followed by whole chunks (chunk-
 *      aligned `data` events of the map's chunk size) for every chunk that
 *      holds a sent block or whose bytes otherwise differ from the prior file
 *      (zeroed blocks, a changed length); the other chunks are left out and
 *      chunk-diff takes them from `prior`. A chunk is assembled the way
 *      pg_combinebackup rebuilds a file (src/codec/chunkmap/incremental-file.ts):
 *      sent blocks, else the prior's block below truncation_block_length,
 *      else zeros — the prior's part read from `target` (reads only; the
 *      sink writes that chunk only after this stage has passed it on), and
 *      sent as `inTarget` data: digested downstream, never written again.
 *      backup_label loses its INCREMENTAL FROM lines (PostgreSQL refuses to
 *      start a backup_label that has them). Everything else passes unchanged.
 * Errors: PgbbError 'incremental' for an INCREMENTAL member whose file the
 *      prior backup lacks, or a malformed one; IoError reading the prior.
 */
import { Transform } from 'node:stream';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ArchiveKind, BackupEvent, EntryEvent } from '../src/events';
import { ioError, PgbbError } from '../src/errors';
import { openRegular } from '../src/io/read-limited';
import { chunkCount, chunkKey, chunkLength, type ChunkMap, type ChunkMapFile } from '../src/codec/chunkmap/chunk-map';
import { IncrementalFileParser, incrementalTarget, rebuiltBlockCount, type IncrementalHeader } from '../src/codec/chunkmap/incremental-file';

export interface IncrementalApplyOptions {
  /** The prior backup's directory. */
  target: string;
  /** What its files hold now; its chunk size is the one chunks are assembled in. */
  prior: ChunkMap;
}

interface Rebuild {
  key: string;
  entry: EntryEvent;
  prior: ChunkMapFile;
  parser: IncrementalFileParser;
  fh: fs.FileHandle | null;
  header: IncrementalHeader | null;
  newSize: number;
  /** Next chunk not yet emitted or skipped. */
  next: number;
  chunk: { k: number; buf: Buffer; sent: Uint8Array } | null;
}

const LABEL_LINE = /^INCREMENTAL FROM (?:LSN|TLI): .*\n/gm;

export class IncrementalApply extends Transform {
  private readonly target: string;
  private readonly prior: ChunkMap;
  private active = false;
  private blockSize = 8192;
  private segmentBlocks = 131072;
  private kind: ArchiveKind = 'base';
  private archiveName = 'base';
  private file: Rebuild | null = null;
  private label: { entry: EntryEvent; chunks: Buffer[] } | null = null;
  /** Events produced while handling one input event (pushed in order). */
  private out: BackupEvent[] = [];

  constructor(opts: IncrementalApplyOptions) {
    super({ objectMode: true, highWaterMark: 16 });
    this.target = path.resolve(opts.target);
    this.prior = opts.prior;
  }

  override _transform(ev: BackupEvent, _enc: BufferEncoding, cb: (err?: Error | null, ev?: BackupEvent) => void): void {
    if (!this.active && ev.type !== 'start') return cb(null, ev);
    this.handle(ev).then(
      () => {
        for (const e of this.out) this.push(e);
        this.out = [];
        cb();
      },
      (err) => cb(err),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const fh = this.file?.fh;
    this.file = null;
    if (!fh) return cb(err);
    fh.close().then(() => cb(err), () => cb(err));
  }

  private async handle(ev: BackupEvent): Promise<void> {
    switch (ev.type) {
      case 'start':
        this.active = ev.incremental === true;
        this.blockSize = ev.blockSize;
        this.segmentBlocks = ev.segmentBlocks;
        if (this.active && this.prior.chunkSize % ev.blockSize) throw new PgbbError('incremental', `chunk size ${this.prior.chunkSize} is not a multiple of the block size ${ev.blockSize}`);
        break;
      case 'archive':
        this.kind = ev.kind;
        this.archiveName = ev.name;
        break;
      case 'entry':
        if (ev.kind === 'file' && this.kind !== 'wal') {
          const rebuilt = incrementalTarget(ev.path);
          if (rebuilt) return this.begin(ev, rebuilt);
          if (this.kind === 'base' && ev.path === 'backup_label') {
            this.label = { entry: ev, chunks: [] };
            return;
          }
        }
        break;
      case 'data':
        if (this.file) return this.data(this.file, ev.chunk);
        if (this.label) {
          this.label.chunks.push(ev.chunk);
          return;
        }
        break;
      case 'entry-end':
        if (this.file) return this.finish(this.file);
        if (this.label) return this.endLabel();
        break;
    }
    this.out.push(ev);
  }

  private async begin(ev: EntryEvent, rebuiltPath: string): Promise<void> {
    const key = chunkKey(this.kind, this.archiveName, rebuiltPath);
    const prior = this.prior.files.get(key);
    if (!prior) throw new PgbbError('incremental', `the server sent "${ev.path}" but the prior backup has no "${key}" to apply it to`);
    const parser = new IncrementalFileParser({ file: key, blockSize: this.blockSize, segmentBlocks: this.segmentBlocks, size: ev.size });
    this.file = { key, entry: { ...ev, path: rebuiltPath, inPlace: true }, prior, parser, fh: null, header: null, newSize: 0, next: 0, chunk: null };
    if (ev.size === 0) parser.end(); // refuses it: an incremental file is never empty
  }

  private async data(f: Rebuild, chunk: Buffer): Promise<void> {
    const blocks: Array<[number, Buffer]> = [];
    f.parser.push(chunk, {
      header: (h) => {
        f.header = h;
        f.newSize = rebuiltBlockCount(h) * this.blockSize;
        this.out.push({ ...f.entry, size: f.newSize });
      },
      // Copied: the block outlives this event only inside a chunk buffer, written there below.
      block: (b, image) => blocks.push([b, image]),
    });
    for (const [b, image] of blocks) {
      const k = Math.floor((b * this.blockSize) / this.prior.chunkSize);
      await this.flushBefore(f, k);
      if (!f.chunk) f.chunk = { k, buf: await this.assemble(f, k), sent: new Uint8Array(this.prior.chunkSize / this.blockSize) };
      const at = b * this.blockSize - k * this.prior.chunkSize;
      image.copy(f.chunk.buf, at);
      f.chunk.sent[at / this.blockSize] = 1;
    }
  }

  private async finish(f: Rebuild): Promise<void> {
    f.parser.end();
    await this.flushBefore(f, chunkCount(f.newSize, this.prior.chunkSize));
    this.file = null;
    await f.fh?.close();
    this.out.push({ type: 'entry-end' });
  }

  /** Emits the chunk in progress and every chunk before `k` that differs from the prior. */
  private async flushBefore(f: Rebuild, k: number): Promise<void> {
    const C = this.prior.chunkSize;
    if (f.chunk && f.chunk.k < k) {
      this.emitChunk(f, f.chunk.k, f.chunk.buf, f.chunk.sent);
      f.next = f.chunk.k + 1;
      f.chunk = null;
    }
    for (; f.next < k && !(f.chunk && f.chunk.k === f.next); f.next++) {
      if (this.keepsPrior(f, f.next)) continue;
      this.emitChunk(f, f.next, await this.assemble(f, f.next), null);
    }
  }

  /**
   * Chunk `k` as data events, block runs that the target already holds (the
   * prior's own blocks, zeros past its old end) marked `inTarget`: chunk-diff
   * digests the whole chunk but passes on only the rest, so a changed chunk
   * costs the blocks that changed, not the chunk.
   */
  private emitChunk(f: Rebuild, k: number, buf: Buffer, sent: Uint8Array | null): void {
    const B = this.blockSize;
    const base = k * this.prior.chunkSize;
    const kept = this.keptBytes(f);
    let from = 0;
    let mark: boolean | null = null;
    const flush = (to: number) => {
      if (to > from) this.out.push({ type: 'data', offset: base + from, chunk: buf.subarray(from, to), ...(mark ? { inTarget: true } : {}) });
      from = to;
    };
    for (let at = 0; at < buf.length; at += B) {
      const off = base + at;
      const inTarget = !sent?.[at / B] && (off + B <= kept || off >= f.prior.size);
      if (inTarget !== mark) {
        flush(at);
        mark = inTarget;
      }
    }
    flush(buf.length);
  }

  /** Bytes at the start of the file that come from the prior unless a block was sent. */
  private keptBytes(f: Rebuild): number {
    return Math.min(f.header!.truncationBlockLength, Math.floor(f.prior.size / this.blockSize)) * this.blockSize;
  }

  /** Chunk `k` without sent blocks equals the prior's: all its blocks come from the prior, at the same length. */
  private keepsPrior(f: Rebuild, k: number): boolean {
    const C = this.prior.chunkSize;
    return Math.min((k + 1) * C, f.newSize) <= this.keptBytes(f) && chunkLength(f.prior.size, C, k) === chunkLength(f.newSize, C, k);
  }

  /** Chunk `k` as it is rebuilt before sent blocks go in: the prior's blocks below the truncation length, zeros after. */
  private async assemble(f: Rebuild, k: number): Promise<Buffer> {
    const C = this.prior.chunkSize;
    const buf = Buffer.alloc(chunkLength(f.newSize, C, k));
    const kept = this.keptBytes(f);
    const want = Math.min(buf.length, kept - k * C);
    if (want <= 0) return buf;
    const file = path.join(this.target, f.key);
    try {
      // Not through a link, never blocking: the prior directory may have been tampered with.
      f.fh ??= await openRegular(file, 'prior file');
      const { bytesRead } = await f.fh.read(buf, 0, want, k * C);
      if (bytesRead !== want) throw new PgbbError('incremental', `prior file "${file}" is shorter than its chunk map says`);
    } catch (err) {
      if (err instanceof PgbbError) throw err;
      throw ioError('could not read prior file', file, err);
    }
    return buf;
  }

  private endLabel(): void {
    const { entry, chunks } = this.label!;
    this.label = null;
    const text = Buffer.from(Buffer.concat(chunks).toString('utf8').replace(LABEL_LINE, ''), 'utf8');
    this.out.push({ ...entry, size: text.length }, { type: 'data', offset: 0, chunk: text }, { type: 'entry-end' });
  }
}

export function incrementalApply(opts: IncrementalApplyOptions): IncrementalApply {
  return new IncrementalApply(opts);
}
