/**
 * Stdout sink (`-D -`): the whole backup as one tar stream on a Writable
 * (process.stdout by default): tarPack() → [zstdCompress()] → output
 * (./packed-output.ts). For a destination of your own, compose those two
 * transforms yourself; this sink adds the sink contract (src/sink.ts).
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
import type { CompressSpec } from '../src/codec/compression';
import type { BackupSink } from '../src/sink';
import { PackedOutput } from './packed-output';
import { stdoutOutput } from '../src/io/stdout-output';
import { encryptedTo } from './encrypted-output';
import type { EncryptKey } from '../src/crypto/age-keys';

export interface StdoutSinkOptions {
  /** Where the tar bytes go (default standard output: see src/io/stdout-output.ts). */
  output?: NodeJS.WritableStream;
  /** Compress the whole stream (default none). */
  compress?: CompressSpec;
  /** Encrypt the whole stream, after compression (age: `… | age -d | zstd -d | tar -x`). */
  encrypt?: EncryptKey | null;
}

export class StdoutSink extends Writable implements BackupSink {
  private readonly packed: PackedOutput;
  private sawEnd = false;
  private finished = false;

  constructor(opts: StdoutSinkOptions = {}) {
    super({ objectMode: true, highWaterMark: 16 });
    // A file or /dev/null on stdout is written with one writev per 256 KiB (src/io/stdout-output.ts).
    // A bad zstd level fails here, in zstdCompress()'s constructor.
    this.packed = new PackedOutput(encryptedTo((opts.output as Writable | undefined) ?? stdoutOutput(), opts.encrypt ?? null), opts.compress);
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
    if (ev.type === 'end') this.sawEnd = true;
    this.packed.write(ev, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    // Without `end` the pack is not ended: no end-of-archive marker, the stream stays truncated.
    if (!this.sawEnd) return callback(new PgbbError('incomplete', 'backup stream ended before the backup was complete'));
    this.packed.finish().then(() => {
      this.finished = true;
      callback();
    }, callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // Also on a destroy without error (an abort): the compressor's context
    // and the tar pack must not outlive the sink.
    if (this.finished) return callback(err);
    this.packed.abort(err ?? undefined).then(() => callback(err));
  }
}

export function stdoutSink(opts?: StdoutSinkOptions): StdoutSink {
  return new StdoutSink(opts);
}
