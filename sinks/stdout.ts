/**
 * Stdout sink (`-D -`): the whole backup as one tar stream on a Writable
 * (process.stdout by default).
 *
 * Layout: the data directory at the root; each tablespace's contents under
 * `pg_tblspc/<oid>/` as a real directory (base's `pg_tblspc/<oid>` symlink is
 * left out), so one stream carries everything and `tar -x` gives a startable
 * directory; WAL under `pg_wal/`; `backup_manifest` as the last member.
 * The tar end-of-archive marker is written only after the source's `end`:
 * a stream cut short is a truncated tar, never a valid-looking one.
 * With `compress: { method: 'zstd', … }` the whole tar stream is one zstd
 * frame (`… | zstd -d | tar -x`); a stream cut short is then also a
 * truncated frame, which every zstd decoder reports.
 */
import { Writable } from 'node:stream';
import type { BackupEvent } from '../src/events';
import { PgbbError } from '../src/errors';
import { TarWriter } from '../src/codec/tar/tar-writer';
import { descriptorFromStart, encodeDescriptor } from '../src/codec/backup-descriptor';
import { coalesce } from '../src/io/file-writer';
import type { CompressSpec } from '../src/codec/compression';
import { checkZstdOptions, zstdCompress } from '../transforms/zstd-compress';
import type { BackupSink } from '../src/sink';

export interface StdoutSinkOptions {
  /** Where the tar bytes go (default process.stdout). */
  output?: NodeJS.WritableStream;
  /** Compress the whole stream (default none). */
  compress?: CompressSpec;
}

export class StdoutSink extends Writable implements BackupSink {
  private readonly writer: TarWriter;
  private prefix = '';
  private isBase = false;
  private skipping = false;
  /** The manifest's pieces as they came (src/events.ts). */
  private manifestPieces: Buffer[] | null = null;
  private get manifest(): Buffer | null {
    return this.manifestPieces && Buffer.concat(this.manifestPieces);
  }
  private sawEnd = false;
  private finished = false;

  constructor(opts: StdoutSinkOptions = {}) {
    super({ objectMode: true, highWaterMark: 16 });
    const output = (opts.output ?? process.stdout) as Writable;
    const c = opts.compress ?? { method: 'none' };
    if (c.method === 'zstd') checkZstdOptions(c);
    // Few large writes: stdout writes each chunk synchronously (the compressor
    // already emits 256 KiB chunks).
    this.writer = c.method === 'zstd' ? new TarWriter(zstdCompress(c), output) : new TarWriter(coalesce(), output);
  }

  /** Nothing to check before the backup starts. */
  ready(): Promise<void> {
    return Promise.resolve();
  }

  /** No directory of its own: the source spools WAL where it is told (--wal-spool) or in a temporary directory. */
  walPlace(): null {
    return null;
  }

  override _write(ev: BackupEvent, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    switch (ev.type) {
      case 'start':
        // The first member carries the descriptor: restore reads the layout from it.
        this.writer.commentNext(encodeDescriptor(descriptorFromStart(ev)));
        return callback();
      case 'data':
        return this.writer.write(ev.chunk, callback);
      case 'archive':
        this.isBase = ev.kind === 'base';
        this.prefix = ev.kind === 'tablespace' ? `pg_tblspc/${ev.name}/` : ev.kind === 'wal' ? 'pg_wal/' : '';
        if (ev.kind === 'tablespace') {
          return this.writer.add({ name: `pg_tblspc/${ev.name}`, kind: 'directory', size: 0, mode: 0o700, mtime: new Date() }, callback);
        }
        return callback();
      case 'entry':
        // The tablespace's contents are already in the stream under this name.
        this.skipping = this.isBase && ev.kind === 'symlink' && /^pg_tblspc\/\d+$/.test(ev.path);
        if (!this.skipping) return this.writer.add({ ...ev, name: this.prefix + ev.path }, callback);
        return callback();
      case 'entry-end':
        if (this.skipping) {
          this.skipping = false;
          return callback();
        }
        return this.writer.endEntry(callback);
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
    if (!this.sawEnd) return callback(new PgbbError('incomplete', 'backup stream ended before the backup was complete'));
    const finish = () =>
      this.writer.finalize().then(() => {
        this.finished = true;
        callback();
      }, callback);
    if (!this.manifest) return void finish();
    const m = this.manifest;
    const step = (next: () => void) => (err?: Error | null) => (err ? callback(err) : next());
    this.writer.add(
      { name: 'backup_manifest', kind: 'file', size: m.length, mode: 0o600, mtime: new Date() },
      step(() => this.writer.write(m, step(() => this.writer.endEntry(step(finish))))),
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // Also on a destroy without error (an abort): the compressor's context
    // and the tar pack must not outlive the sink.
    if (err || !this.finished) this.writer.destroy(err ?? undefined);
    callback(err);
  }
}

export function stdoutSink(opts?: StdoutSinkOptions): StdoutSink {
  return new StdoutSink(opts);
}
