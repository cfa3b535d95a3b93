/**
 * delta-pack: chunk-diff's output as members tar can hold, for an S3
 * incremental backup (rewriter; names: src/codec/delta-members.ts).
 *
 * In:  member events after chunk-diff: `inPlace` entries followed by the
 *      data of their changed chunks only, whole entries for everything else,
 *      and chunk-diff's chunk map member (`pg_wal/pgbb.chunkmap`, in an
 *      archive of its own).
 * Out: the same archives; an `inPlace` file becomes an empty `p/<path>`
 *      member, then one `c/<k>/<path>` member per changed chunk, sized by
 *      the chunk (data offsets from 0 within it); every other member is
 *      `w/<path>`, unchanged. The chunk map member and its archive are
 *      dropped: the S3 sink stores the map beside the record (chunkmap).
 *      Nothing is held: each chunk's size is known from the file's size, so
 *      its header goes out before its first byte.
 * Errors: PgbbError 'chunk_map' for in-place data that does not start a
 *      chunk it has not already begun.
 */
import { Transform } from 'node:stream';
import type { ArchiveEvent, BackupEvent, EntryEvent } from '../src/events';
import { PgbbError } from '../src/errors';
import { CHUNK_MAP_FILE, chunkLength } from '../src/codec/chunkmap/chunk-map';
import { chunkName, inPlaceName, wholeName } from '../src/codec/delta-members';

const MAP_MEMBER = CHUNK_MAP_FILE.slice('pg_wal/'.length);

export class DeltaPack extends Transform {
  /** A wal archive, held until its first member says whether it is the chunk map's. */
  private heldArchive: ArchiveEvent | null = null;
  private dropping = false;
  private file: { ev: EntryEvent; chunk: number; base: number } | null = null;

  constructor(private readonly chunkSize: number) {
    super({ objectMode: true, highWaterMark: 16 });
  }

  override _transform(ev: BackupEvent, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      this.handle(ev);
    } catch (err) {
      return cb(err as Error);
    }
    cb();
  }

  private handle(ev: BackupEvent): void {
    if (this.heldArchive) {
      const a = this.heldArchive;
      this.heldArchive = null;
      if (ev.type === 'entry' && ev.path === MAP_MEMBER) {
        this.dropping = true;
        return;
      }
      this.push(a);
    }
    if (this.dropping) {
      if (ev.type === 'archive-end') this.dropping = false;
      return;
    }
    switch (ev.type) {
      case 'archive':
        if (ev.kind === 'wal') {
          this.heldArchive = ev;
          return;
        }
        break;
      case 'entry':
        if (ev.inPlace) {
          this.push({ ...whole(ev), path: inPlaceName(ev.path), size: 0 });
          this.push({ type: 'entry-end' });
          this.file = { ev, chunk: -1, base: 0 };
          return;
        }
        this.file = null;
        this.push({ ...ev, path: wholeName(ev.path) });
        return;
      case 'data': {
        const f = this.file;
        if (!f) break;
        const k = Math.floor(ev.offset / this.chunkSize);
        if (k !== f.chunk) {
          if (ev.offset % this.chunkSize !== 0 || k < f.chunk) throw new PgbbError('chunk_map', `in-place data for "${f.ev.path}" at offset ${ev.offset} does not begin a chunk`);
          if (f.chunk >= 0) this.push({ type: 'entry-end' });
          this.push({ ...whole(f.ev), path: chunkName(f.ev.path, k), size: chunkLength(f.ev.size, this.chunkSize, k) });
          f.chunk = k;
          f.base = k * this.chunkSize;
        }
        this.push({ type: 'data', offset: ev.offset - f.base, chunk: ev.chunk });
        return;
      }
      case 'entry-end':
        if (this.file) {
          if (this.file.chunk >= 0) this.push({ type: 'entry-end' });
          this.file = null;
          return;
        }
        break;
    }
    this.push(ev);
  }

  override _flush(cb: (err?: Error | null) => void): void {
    if (this.heldArchive) this.push(this.heldArchive);
    cb();
  }
}

/** The entry without its in-place mark (the tar member is whole). */
function whole(ev: EntryEvent): EntryEvent {
  const { inPlace: _, ...rest } = ev;
  return rest;
}

export function deltaPack(chunkSize: number): DeltaPack {
  return new DeltaPack(chunkSize);
}
