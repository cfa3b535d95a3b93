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
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FileWriter } from '../src/io/file-writer';
import type { BackupEvent } from '../src/events';
import { PgbbError, UsageError } from '../src/errors';
import { descriptorFromStart, encodeDescriptor } from '../src/codec/backup-descriptor';
import { discardDir, ioError, prepareEmptyDir, type PreparedDir } from './target-dir';
import { releaseHeldLock } from '../src/io/target-lock';
import { syncDir, syncPaths } from '../src/io/durable';
import { compressSuffix, type CompressSpec } from '../src/codec/compression';
import type { ZstdCompress } from '../transforms/zstd-compress';
import type { BackupSink, WalPlace } from '../src/sink';
import { compressorFor, PackedOutput } from './packed-output';
import { AGE_SUFFIX, encryptedTo } from './encrypted-output';
import type { EncryptKey } from '../src/crypto/age-keys';
import { destroyAndWait, endAndWait } from '../src/io/stream-end';

export interface TarFilesSinkOptions {
  target: string;
  sync?: boolean;
  /** Compress each archive (default none). */
  compress?: CompressSpec;
  /** Encrypt each archive and the manifest (age), named with a `.age` suffix. */
  encrypt?: EncryptKey | null;
}

type Callback = (err?: Error | null) => void;

export class TarFilesSink extends Writable implements BackupSink {
  private readonly opts: Required<Omit<TarFilesSinkOptions, 'compress' | 'encrypt'>>;
  private readonly encrypt: EncryptKey | null;
  private readonly compress: CompressSpec;
  private dir: PreparedDir | null = null;
  /** The archive being written: its pack → [zstd] → file pipeline. */
  private archive: PackedOutput | null = null;
  private written: { partial: string; final: string }[] = [];
  /** backup_manifest.tmp, written piece by piece as the manifest comes. */
  private manifest: Writable | null = null;
  private descriptor: string | null = null;
  private sawEnd = false;
  private committed = false;

  constructor(opts: TarFilesSinkOptions) {
    // Refused before super(): Writable schedules _construct (which creates the target) from its own constructor.
    if (!opts.target) throw new UsageError('no target directory given');
    const compress = opts.compress ?? { method: 'none' };
    // The first archive's compressor is made now: a bad level fails here
    // (zstdCompress()'s own check), before the target is made or the server contacted.
    const first = compressorFor(compress);
    super({ objectMode: true, highWaterMark: 16 });
    this.opts = { sync: true, ...opts };
    this.compress = compress;
    this.encrypt = opts.encrypt ?? null;
    this.firstCompressor = first;
  }

  /** Made by the constructor, used by the first archive (or destroyed with the sink). */
  private firstCompressor: ZstdCompress | null;

  private opened: Promise<void> | null = null;
  /** 0600, or 0640 for a group-readable cluster (the start event says). */
  private fileMode = 0o600;

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

  override _construct(callback: Callback): void {
    this.ready().then(() => callback(), callback);
  }

  /** Streamed WAL is spooled inside the target, then packed into pg_wal.tar. */
  walPlace(): WalPlace {
    return { walSpool: path.resolve(this.opts.target) };
  }

  override _write(ev: BackupEvent, _enc: BufferEncoding, callback: Callback): void {
    switch (ev.type) {
      case 'entry':
      case 'data':
      case 'entry-end':
        return this.archive!.write(ev, callback);
      case 'archive': {
        const final = path.join(this.dir!.path, `${ev.name}.tar${compressSuffix(this.compress)}${this.suffix()}`);
        const partial = `${final}.partial`;
        this.written.push({ partial, final });
        // Every archive carries the descriptor, so that restore can read it from base.tar first.
        const z = this.firstCompressor;
        this.firstCompressor = null;
        this.archive = new PackedOutput(encryptedTo(new FileWriter(partial, { mode: this.fileMode }), this.encrypt), this.compress, { layout: 'archive', comment: this.descriptor ?? undefined }, z);
        return callback();
      }
      case 'start':
        this.descriptor = encodeDescriptor(descriptorFromStart(ev));
        if (!ev.groupReadable) return callback();
        // As pg_basebackup -Ft of a group-readable cluster: archives and manifest 0640 in a 0750 directory (one this run made).
        this.fileMode = 0o640;
        if (!this.dir!.created) return callback();
        openDirNoFollow(this.dir!.path).then(
          (fh) => fh.chmod(0o750).finally(() => fh.close()).then(() => callback(), (err) => callback(ioError('could not change mode of', this.dir!.path, err))),
          (err) => callback(ioError('could not open', this.dir!.path, err)),
        );
        return;
      case 'archive-end': {
        const a = this.archive!;
        this.archive = null;
        const file = this.written[this.written.length - 1].partial;
        a.write(ev, (err) => {
          if (err) return callback(err);
          a.finish().then(
            () => callback(),
            // The file writer's and the compressor's errors already name what failed.
            (e) => callback(e instanceof PgbbError ? e : ioError('could not write archive', file, e)),
          );
        });
        return;
      }
      case 'manifest':
        return this.writeManifest(ev.data, callback);
      case 'end':
        this.sawEnd = true;
        return callback();
      default:
        return callback();
    }
  }

  /** Straight into backup_manifest.tmp: never held whole; renamed into place last, in commit(). */
  private writeManifest(piece: Buffer, callback: Callback): void {
    const m = (this.manifest ??= encryptedTo(new FileWriter(this.manifestPath() + '.tmp', { mode: this.fileMode }), this.encrypt));
    const fail = (err: unknown) => callback(err instanceof PgbbError ? err : ioError('could not write manifest', this.manifestPath(), err));
    if (m.write(piece)) return callback();
    const onDrain = () => (m.off('error', onError), callback());
    const onError = (err: Error) => (m.off('drain', onDrain), fail(err));
    m.once('drain', onDrain).once('error', onError);
  }

  private manifestPath(): string {
    return path.join(this.dir!.path, `backup_manifest${this.suffix()}`);
  }

  private suffix(): string {
    return this.encrypt ? AGE_SUFFIX : '';
  }

  override _final(callback: Callback): void {
    this.commit().then(() => callback(), callback);
  }

  private async commit(): Promise<void> {
    if (!this.sawEnd) throw new PgbbError('incomplete', 'backup stream ended before the backup was complete');
    const root = this.dir!.path;
    const m = this.manifest;
    if (m) await endWriter(m, this.manifestPath());
    if (this.opts.sync) await syncPaths(this.written.map((w) => w.partial));
    for (const w of this.written) await fs.rename(w.partial, w.final);
    // The lock goes before the manifest marks the backup whole.
    await releaseHeldLock(root);
    if (m) {
      const final = this.manifestPath();
      try {
        if (this.opts.sync) await syncPaths([`${final}.tmp`]);
        await fs.rename(`${final}.tmp`, final);
      } catch (err) {
        throw ioError('could not write manifest', final, err);
      }
    }
    if (this.opts.sync) await syncDir(root);
    this.committed = true;
  }

  override _destroy(err: Error | null, callback: Callback): void {
    const a = this.archive;
    const m = this.manifest;
    this.archive = null;
    this.manifest = null;
    this.firstCompressor?.destroy();
    this.firstCompressor = null;
    // Inner writers first (the compressor's context goes with its pipeline), then what the sink made.
    const writers = Promise.all([a?.abort(), m && !m.destroyed ? destroyAndWait(m) : undefined]);
    writers.then(() => {
      if (this.committed || !this.dir) return callback(err);
      discardDir(this.dir).then(() => callback(err), () => callback(err));
    });
  }
}

/** Ends the manifest's writer; rejects with what ended it. */
function endWriter(w: Writable, file: string): Promise<void> {
  return endAndWait(w).catch((err) => Promise.reject(err instanceof PgbbError ? err : ioError('could not write manifest', file, err)));
}

export function tarFilesSink(opts: TarFilesSinkOptions): TarFilesSink {
  return new TarFilesSink(opts);
}

/** The target itself, never a link put in its place. */
function openDirNoFollow(dir: string): Promise<fs.FileHandle> {
  return fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
}
