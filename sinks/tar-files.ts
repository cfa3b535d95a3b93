/**
 * Tar-files sink: what `pg_basebackup -Ft` writes — `base.tar`, `<oid>.tar`
 * per tablespace (and `pg_wal.tar` when WAL is streamed), plus
 * `backup_manifest`.
 *
 * With `compress: { method: 'zstd', … }` each archive goes through its own
 * zstd-compress transform and is named `<name>.tar.zst` (pg_wal too, unlike
 * pg_basebackup 15, which leaves a streamed pg_wal.tar uncompressed for zstd);
 * `backup_manifest` stays uncompressed, as pg_basebackup writes it.
 *
 * Each archive is written as `<name>.tar.partial` and renamed only once the
 * whole backup has ended (then fsynced); the manifest comes last. A failure
 * removes everything the sink created.
 */
import { Writable } from 'node:stream';
import { promises as fs } from 'node:fs';
import { FileWriter } from '../src/io/file-writer';
import * as path from 'node:path';
import type { BackupEvent } from '../src/events';
import { PgbbError, UsageError } from '../src/errors';
import { TarWriter } from '../src/codec/tar/tar-writer';
import { descriptorFromStart, encodeDescriptor } from '../src/codec/backup-descriptor';
import { discardDir, ioError, prepareEmptyDir, type PreparedDir } from './target-dir';
import { releaseHeldLock } from '../src/io/target-lock';
import { syncDir, syncPaths, writeDurably } from '../src/io/durable';
import { SafeTree } from '../src/io/safe-tree';
import { compressSuffix, type CompressSpec } from '../src/codec/compression';
import { checkZstdOptions, zstdCompress } from '../transforms/zstd-compress';
import type { BackupSink, WalPlace } from '../src/sink';

export interface TarFilesSinkOptions {
  target: string;
  sync?: boolean;
  /** Compress each archive (default none). */
  compress?: CompressSpec;
}

export class TarFilesSink extends Writable implements BackupSink {
  private readonly opts: Required<Omit<TarFilesSinkOptions, 'compress'>>;
  private readonly compress: CompressSpec;
  private dir: PreparedDir | null = null;
  private writer: TarWriter | null = null;
  private written: { partial: string; final: string }[] = [];
  /** The manifest's pieces as they came (src/events.ts). */
  private manifestPieces: Buffer[] | null = null;
  private get manifest(): Buffer | null {
    return this.manifestPieces && Buffer.concat(this.manifestPieces);
  }
  private descriptor: string | null = null;
  private sawEnd = false;
  private committed = false;

  constructor(opts: TarFilesSinkOptions) {
    super({ objectMode: true, highWaterMark: 16 });
    if (!opts.target) throw new UsageError('no target directory given');
    this.opts = { sync: true, ...opts };
    this.compress = opts.compress ?? { method: 'none' };
    // A bad level fails here, before the server is contacted.
    if (this.compress.method === 'zstd') checkZstdOptions(this.compress);
  }

  private opened: Promise<void> | null = null;

  /**
   * Resolves once the target is checked and created; a caller awaits it to
   * refuse a bad target before contacting the server.
   */
  ready(): Promise<void> {
    this.opened ??= prepareEmptyDir(this.opts.target).then((d) => {
      this.dir = d;
    });
    return this.opened;
  }

  override _construct(callback: (err?: Error | null) => void): void {
    this.ready().then(() => callback(), callback);
  }


  /** Streamed WAL is spooled inside the target, then packed into pg_wal.tar. */
  walPlace(): WalPlace {
    return { walSpool: path.resolve(this.opts.target) };
  }

  override _write(ev: BackupEvent, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    switch (ev.type) {
      case 'data':
        return this.writer!.write(ev.chunk, callback);
      case 'archive': {
        const final = path.join(this.dir!.path, `${ev.name}.tar${compressSuffix(this.compress)}`);
        const partial = `${final}.partial`;
        this.written.push({ partial, final });
        const file = new FileWriter(partial, { mode: 0o600 });
        const c = this.compress;
        this.writer = c.method === 'zstd' ? new TarWriter(zstdCompress(c), file) : new TarWriter(file);
        // Every archive carries the descriptor, so that restore can read it from base.tar first.
        if (this.descriptor) this.writer.commentNext(this.descriptor);
        return callback();
      }
      case 'start':
        this.descriptor = encodeDescriptor(descriptorFromStart(ev));
        return callback();
      case 'entry':
        return this.writer!.add({ ...ev, name: ev.path }, callback);
      case 'entry-end':
        return this.writer!.endEntry(callback);
      case 'archive-end': {
        const w = this.writer!;
        this.writer = null;
        const file = this.written[this.written.length - 1].partial;
        w.finalize().then(
          () => callback(),
          // The file writer's and the compressor's errors already name what failed.
          (err) => callback(err instanceof PgbbError ? err : ioError('could not write archive', file, err)),
        );
        return;
      }
      case 'manifest':
        (this.manifestPieces ??= []).push(ev.data);
        return callback();
      case 'end':
        this.sawEnd = true;
        return callback();
      default:
        return callback();
    }
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.commit().then(() => callback(), callback);
  }

  private async commit(): Promise<void> {
    if (!this.sawEnd) throw new PgbbError('incomplete', 'backup stream ended before the backup was complete');
    const root = this.dir!.path;
    if (this.opts.sync) await syncPaths(this.written.map((w) => w.partial));
    for (const w of this.written) await fs.rename(w.partial, w.final);
    // The lock goes before the manifest marks the backup whole.
    await releaseHeldLock(root);
    if (this.manifest) {
      // Through `backup_manifest.tmp`, created O_EXCL|O_NOFOLLOW; then the directory is synced.
      await writeDurably(new SafeTree(root), 'backup_manifest', this.manifest, this.opts.sync, { what: 'could not write manifest' });
    } else if (this.opts.sync) await syncDir(root);
    this.committed = true;
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.writer?.destroy();
    this.writer = null;
    if (this.committed || !this.dir) return callback(err);
    discardDir(this.dir).then(() => callback(err), () => callback(err));
  }
}

export function tarFilesSink(opts: TarFilesSinkOptions): TarFilesSink {
  return new TarFilesSink(opts);
}
