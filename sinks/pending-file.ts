/**
 * A file a sink writes piece by piece as the stream brings it and renames
 * into place at commit: backup_manifest (directory and refresh sinks) and
 * the refresh's chunk map. Neither is ever held whole in memory: each piece
 * is written (batched, src/io/file-writer.ts) as it comes.
 *
 * Created O_EXCL|O_NOFOLLOW through the sink's SafeTree, like every other
 * file the sink writes (the caller clears any leftover of the name first);
 * `close` writes what is gathered and, with `sync`, fsyncs; `publish`
 * closes, renames it to its final name and (sync) fsyncs that directory.
 * `discard` (abort) closes without writing more.
 * Errors: IoError naming the file.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { IoError, ioError, PgbbError } from '../src/errors';
import { fsPath, showPath } from '../src/codec/path-bytes';
import { WriteBatcher } from '../src/io/file-writer';
import type { SafeTree } from '../src/io/safe-tree';
import { syncPaths } from '../src/io/durable';

export class PendingFile {
  /** Bytes written so far. */
  bytes = 0;
  private readonly batcher: WriteBatcher;

  private constructor(
    readonly abs: string,
    private fh: fs.FileHandle | null,
  ) {
    this.batcher = new WriteBatcher(fh!, abs);
  }

  static async create(tree: SafeTree, rel: string, mode: number): Promise<PendingFile> {
    return new PendingFile(tree.abs(rel), await tree.createFile(rel, mode));
  }

  get open(): boolean {
    return this.fh !== null;
  }

  async write(chunk: Buffer): Promise<void> {
    if (!this.fh) throw new IoError(`could not write "${showPath(this.abs)}": already closed`);
    this.bytes += chunk.length;
    await this.batcher.add(chunk);
  }

  async close(sync: boolean): Promise<void> {
    const fh = this.fh;
    if (!fh) return;
    this.fh = null;
    try {
      await this.batcher.flush();
      if (sync) await fh.sync();
    } catch (err) {
      throw err instanceof PgbbError ? err : ioError('could not write', showPath(this.abs), err);
    } finally {
      await fh.close().catch(() => {});
    }
  }

  async publish(finalAbs: string, sync: boolean): Promise<void> {
    await this.close(sync);
    try {
      await fs.rename(fsPath(this.abs), fsPath(finalAbs));
      if (sync) await syncPaths([path.dirname(finalAbs)]);
    } catch (err) {
      throw ioError('could not rename into place', showPath(finalAbs), err);
    }
  }

  async discard(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => {});
  }
}
