/**
 * tar-pack: the member stream (src/events.ts) in, tar bytes out.
 *
 *   tarPack()                       the whole backup as one tar (`pgbb backup -D -`)
 *   tarPack({ layout: 'archive' })  one archive's members as its own tar (`-F tar`:
 *                                   base.tar, <oid>.tar, pg_wal.tar)
 *
 * Backup layout: the descriptor (src/codec/backup-descriptor.ts) rides as a
 * pax comment on the first member; the data directory at the root; each
 * tablespace's contents under `pg_tblspc/<oid>/` as a real directory (base's
 * `pg_tblspc/<oid>` symlink is left out), so one stream carries everything
 * and `tar -x` gives a startable directory; WAL under `pg_wal/`;
 * `backup_manifest` last. The end-of-archive marker comes only after the
 * source's `end`: a stream cut short is a truncated tar, never a
 * valid-looking one. The manifest is held until `end` (its header needs the
 * size): in memory up to 8 MiB, beyond that in an unlinked temporary file in
 * os.tmpdir() (O_EXCL, 0600; see ./held-manifest.ts), closed on end/destroy.
 *
 * Archive layout: `start` (or `comment`) gives the descriptor for the first
 * member; members as they come; the marker at `archive-end`, after which the
 * stream must end. Manifest, end, progress and warnings are not its business.
 *
 * Out: data chunks of at least BY_REFERENCE bytes go out as they are (no
 * copy: the writers downstream gather chunks by reference, src/io/
 * file-writer.ts); headers, padding and small members are copied into a
 * batch that goes out before the next such chunk or at BATCH_BYTES. The
 * batch is a slab: what was pushed stays untouched, the next bytes go after
 * it, so a slab is allocated per BATCH_BYTES, not per push. Backpressure: the
 * write callback waits while the readable side is full.
 * Errors: UsageError when given bytes (./stream-kinds.ts); TarFormatError for
 * a member whose data does not match its header (src/codec/tar/tar-encoder.ts);
 * PgbbError 'incomplete' when the input ends before `end` (or `archive-end`).
 */
import { Duplex } from 'node:stream';
import type { BackupEvent } from '../src/events';
import { PgbbError, TarFormatError } from '../src/errors';
import { TarEncoder } from '../src/codec/tar/tar-encoder';
import { descriptorFromStart, encodeDescriptor } from '../src/codec/backup-descriptor';
import { showPath } from '../src/codec/path-bytes';
import { HeldManifest } from './held-manifest';
import { release } from '../src/io/slab-pool';
import { looksLikeEvent, notMembers, trackUpstream, type Stage } from './stream-kinds';

export interface TarPackOptions {
  /** 'backup' (default): the whole member stream as one tar. 'archive': one archive's members. */
  layout?: 'backup' | 'archive';
  /** Archive layout: a pax comment for the first member (the backup descriptor, when no `start` passes). */
  comment?: string;
}

type Callback = (err?: Error | null) => void;

/** 256 KiB: few, large writes for stdout, files and compressors. */
export const BATCH_BYTES = 256 * 1024;
/**
 * Data chunks from this size go out by reference. Copying every byte into
 * batches cost a third of `-D -`'s CPU (a 2.3 GB backup); below this size
 * the per-chunk cost of a push outweighs the copy.
 */
export const BY_REFERENCE = 8 * 1024;

export class TarPack extends Duplex implements Stage<'members', 'bytes'> {
  readonly takes = 'members' as const;
  readonly gives = 'bytes' as const;
  readonly stageName = 'tarPack()';
  private readonly encoder = new TarEncoder();
  private readonly layout: 'backup' | 'archive';
  private readonly upstream: () => string;
  private batch = Buffer.allocUnsafe(BATCH_BYTES);
  /** batch[pushed, used) is gathered and not yet pushed; before `pushed` belongs to the reader. */
  private pushed = 0;
  private used = 0;
  /** The readable side is full: the next write callback waits for _read. */
  private full = false;
  private waiting: (() => void) | null = null;
  private prefix = '';
  private isBase = false;
  /** The current entry is left out (base's pg_tblspc/<oid> link). */
  private skipping = false;
  private manifest: HeldManifest | null = null;
  /** `end` (backup layout) or `archive-end` (archive layout) was seen. */
  private complete = false;

  constructor(opts: TarPackOptions = {}) {
    super({ writableObjectMode: true, writableHighWaterMark: 16, readableHighWaterMark: 2 * BATCH_BYTES });
    this.layout = opts.layout ?? 'backup';
    if (opts.comment !== undefined) this.encoder.commentNext(opts.comment);
    this.upstream = trackUpstream(this);
  }

  override _write(ev: BackupEvent, _enc: BufferEncoding, callback: Callback): void {
    if (!looksLikeEvent(ev) || Buffer.isBuffer(ev)) return callback(notMembers(this.stageName, this.upstream(), ev));
    let pending: Promise<void> | void;
    try {
      pending = this.layout === 'backup' ? this.backupEvent(ev) : this.archiveEvent(ev);
    } catch (err) {
      return callback(err as Error);
    }
    if (pending) pending.then(() => this.afterOutput(callback), callback);
    else this.afterOutput(callback);
  }

  private backupEvent(ev: BackupEvent): Promise<void> | void {
    switch (ev.type) {
      case 'start':
        // The first member carries the descriptor: restore reads the layout from it.
        this.encoder.commentNext(encodeDescriptor(descriptorFromStart(ev)));
        return;
      case 'archive':
        this.isBase = ev.kind === 'base';
        this.prefix = ev.kind === 'tablespace' ? `pg_tblspc/${ev.name}/` : ev.kind === 'wal' ? 'pg_wal/' : '';
        if (ev.kind === 'tablespace') this.out(this.encoder.add({ name: `pg_tblspc/${ev.name}`, kind: 'directory', size: 0, mode: 0o700, mtime: new Date() }));
        return;
      case 'entry':
        // The tablespace's contents are already in the stream under this name.
        this.skipping = this.isBase && ev.kind === 'symlink' && /^pg_tblspc\/\d+$/.test(ev.path);
        if (!this.skipping) this.out(this.encoder.add({ ...ev, name: this.prefix + ev.path }));
        return;
      case 'data':
        if (!this.skipping) this.out(this.encoder.data(ev.chunk));
        return;
      case 'entry-end':
        if (this.skipping) this.skipping = false;
        else this.padding();
        return;
      case 'manifest':
        return (this.manifest ??= new HeldManifest()).add(ev.data);
      case 'end':
        this.complete = true;
        return;
      default:
        return;
    }
  }

  private archiveEvent(ev: BackupEvent): void {
    switch (ev.type) {
      case 'start':
        this.encoder.commentNext(encodeDescriptor(descriptorFromStart(ev)));
        return;
      case 'entry':
        if (this.complete) throw new TarFormatError(`tar member "${showPath(ev.path)}" after the end of its archive`);
        this.out(this.encoder.add({ ...ev, name: ev.path }));
        return;
      case 'data':
        this.out(this.encoder.data(ev.chunk));
        return;
      case 'entry-end':
        this.padding();
        return;
      case 'archive-end':
        if (!this.complete) this.out(this.encoder.end());
        this.complete = true;
        return;
      default:
        return;
    }
  }

  override _final(callback: Callback): void {
    this.finish().then(() => callback(), callback);
  }

  private async finish(): Promise<void> {
    if (!this.complete) {
      throw new PgbbError('incomplete', this.layout === 'backup' ? 'backup stream ended before the backup was complete' : 'archive ended before its archive-end');
    }
    const m = this.manifest;
    if (this.layout === 'backup') {
      if (m) {
        this.out(this.encoder.add({ name: 'backup_manifest', kind: 'file', size: m.size, mode: 0o600, mtime: new Date() }));
        for await (const piece of m.read()) {
          this.out(this.encoder.data(piece));
          await this.drained();
        }
        this.padding();
        await m.release();
      }
      this.out(this.encoder.end());
    }
    this.flushBatch();
    this.push(null);
  }

  override _read(): void {
    this.full = false;
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }

  override _destroy(err: Error | null, callback: Callback): void {
    this.batch = Buffer.alloc(0);
    this.used = this.pushed = 0;
    const m = this.manifest;
    this.manifest = null;
    if (!m) return callback(err);
    m.release().then(() => callback(err));
  }

  private padding(): void {
    const pad = this.encoder.endEntry();
    if (pad) this.out(pad);
  }

  private afterOutput(callback: Callback): void {
    if (this.full) this.waiting = () => callback();
    else callback();
  }

  private drained(): Promise<void> {
    return this.full ? new Promise((resolve) => (this.waiting = resolve)) : Promise.resolve();
  }

  /** Into the batch; large chunks go out by reference, after what is gathered. */
  private out(buf: Buffer): void {
    if (buf.length >= BY_REFERENCE) {
      this.flushBatch();
      return this.pushChunk(buf);
    }
    if (this.used + buf.length > BATCH_BYTES) {
      this.flushBatch();
      this.batch = Buffer.allocUnsafe(BATCH_BYTES);
      this.used = this.pushed = 0;
    }
    buf.copy(this.batch, this.used);
    this.used += buf.length;
    // Copied, not passed on: recycled read memory (src/io/slab-pool.ts) may be reused.
    release(buf);
  }

  private flushBatch(): void {
    if (this.used === this.pushed) return;
    const chunk = this.batch.subarray(this.pushed, this.used);
    this.pushed = this.used;
    this.pushChunk(chunk);
  }

  private pushChunk(chunk: Buffer): void {
    if (!this.push(chunk)) this.full = true;
  }
}

export function tarPack(opts?: TarPackOptions): TarPack {
  return new TarPack(opts);
}
