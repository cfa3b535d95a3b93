/**
 * The refresh sink's regular files (sinks/refresh-directory.ts), one at a
 * time: an `inPlace` entry is opened only when data for it arrives (O_NOFOLLOW,
 * a regular file with no other link: SafeTree.openExisting); the data of its
 * changed chunks is compared page by page with what the file holds and
 * only differing pages are written (refresh-page-writer.ts), its key
 * journaled and fsynced before the first of them; at its end it is
 * truncated or extended to the entry's size (journaled first too). A new
 * file is created O_EXCL|O_NOFOLLOW after any leftover of its name is
 * removed; its bytes gather into large writes (src/io/file-writer.ts).
 *
 * Errors: IoError naming the path; PgbbError 'interrupted' for a handle
 * opened once the sink is being destroyed (it is closed at once).
 */
import * as path from 'node:path';
import type { promises as fs } from 'node:fs';
import type { EntryEvent } from '../src/events';
import { IoError, PgbbError } from '../src/errors';
import { DATA_FILE_BATCH, WriteBatcher } from '../src/io/file-writer';
import { PageDiffWriter } from './refresh-page-writer';
import type { SafeTree } from '../src/io/safe-tree';
import type { RefreshJournal } from '../src/refresh/refresh-journal';
import { CONTROL_FILE } from '../src/refresh/walk-target';
import type { PriorState } from '../src/refresh/prior-state';
import { ioError } from './target-dir';
import { removeLeftover } from './refresh-entries';

export interface RefreshFileStats {
  bytesWritten: number;
  filesWritten: number;
  filesCreated: number;
  /** Bytes of changed chunks that were already on disk, page by page (not written). */
  bytesSame: number;
}

interface OpenFile {
  key: string;
  tree: SafeTree;
  rel: string;
  abs: string;
  inPlace: boolean;
  size: number;
  fh: fs.FileHandle | null;
  batcher: WriteBatcher | null;
  /** In-place files: compares with the file and writes differing pages. */
  pages: PageDiffWriter | null;
  journaled: boolean;
}

export class RefreshFiles {
  private file: OpenFile | null = null;
  /** Every file opened for writing (fsynced at commit). */
  readonly written = new Set<string>();
  controlWritten = false;

  constructor(
    private readonly o: {
      prior: PriorState;
      journal: () => RefreshJournal;
      /** Directories whose entries changed. */
      dirty: Set<string>;
      stats: RefreshFileStats;
      onWrite?: () => void;
      destroyed: () => boolean;
    },
  ) {}

  /** Starts regular file `key` at `rel` in `tree`. */
  async open(ev: EntryEvent, key: string, tree: SafeTree, rel: string): Promise<void> {
    const mode = ev.mode & 0o7777 || 0o600;
    const abs = tree.abs(rel);
    if (ev.inPlace) {
      // Opened only if a byte changes (see data): an unchanged file is not touched at all.
      this.file = { key, tree, rel, abs, inPlace: true, size: ev.size, fh: null, batcher: null, pages: null, journaled: false };
      return;
    }
    if ((await removeLeftover(tree, rel)) !== 'file') this.o.stats.filesCreated++;
    const fh = await this.adopt(await tree.createFile(rel, mode));
    this.file = { key, tree, rel, abs, inPlace: false, size: ev.size, fh, batcher: new WriteBatcher(fh, abs, 0, DATA_FILE_BATCH), pages: null, journaled: false };
    this.written.add(abs);
    this.o.dirty.add(path.dirname(abs));
    if (key === CONTROL_FILE) this.controlWritten = true;
  }

  /** The hot path: contiguous bytes of an open file gather into large writes. False: not contiguous, take `data`. */
  hot(offset: number, chunk: Buffer): Promise<void> | null | false {
    const b = this.file?.batcher;
    if (!b || offset !== b.end) return false;
    this.o.onWrite?.();
    this.o.stats.bytesWritten += chunk.length;
    return b.add(chunk);
  }

  async data(offset: number, chunk: Buffer): Promise<void> {
    const f = this.file;
    if (!f) throw new IoError('data without an open file in refresh sink');
    if (f.inPlace) {
      if (!f.pages) await this.openInPlace(f);
      this.o.onWrite?.();
      await f.pages!.add(offset, chunk);
      return;
    }
    if (!f.batcher || f.batcher.end !== offset) throw new IoError(`data for "${f.abs}" at offset ${offset}, expected ${f.batcher?.end ?? 0}`);
    this.o.onWrite?.();
    this.o.stats.bytesWritten += chunk.length;
    await f.batcher.add(chunk);
  }

  /** Ends the current file: what is gathered written, an in-place one set to its new size. */
  async close(): Promise<void> {
    const f = this.file;
    if (!f) return;
    this.file = null;
    try {
      await f.batcher?.flush();
      await f.pages?.flush();
      if (f.pages) {
        this.o.stats.bytesWritten += f.pages.bytesWritten;
        this.o.stats.bytesSame += f.pages.bytesSame;
      }
      const priorSize = this.o.prior.map.files.get(f.key)?.size;
      if (f.inPlace && priorSize !== f.size) {
        if (!f.pages) await this.openInPlace(f);
        await this.journal(f);
        await f.fh!.truncate(f.size);
      }
      if (!f.inPlace || f.journaled) this.o.stats.filesWritten++;
    } catch (err) {
      throw err instanceof PgbbError ? err : ioError('could not write', f.abs, err);
    } finally {
      f.pages?.close();
      await f.fh?.close().catch(() => {});
    }
  }

  /** Abort: closes the current file's handles, writing nothing more. */
  async abort(): Promise<void> {
    this.file?.pages?.close();
    await this.file?.fh?.close().catch(() => {});
    this.file = null;
  }

  /** Opens an in-place file to compare and update; nothing is written (nor journaled) yet. */
  private async openInPlace(f: OpenFile): Promise<void> {
    try {
      f.fh = await this.adopt(await f.tree.openExisting(f.rel));
      const { size } = await f.fh.stat();
      f.pages = new PageDiffWriter(f.fh, f.abs, size, () => this.journal(f));
    } catch (err) {
      if (err instanceof PgbbError) throw err;
      throw ioError('could not open for update', f.abs, err);
    }
  }

  /** Before the first byte of an existing file changes: its key journaled (and fsynced), the file to be fsynced at commit. */
  private async journal(f: OpenFile): Promise<void> {
    if (f.journaled) return;
    await this.o.journal().record(f.key);
    f.journaled = true;
    this.written.add(f.abs);
  }

  /** A handle opened while the stream was being destroyed would outlive _destroy: close it at once. */
  async adopt<T extends { close(): Promise<void> }>(fh: T): Promise<T> {
    if (!this.o.destroyed()) return fh;
    await fh.close().catch(() => {});
    throw new PgbbError('interrupted', 'refresh sink destroyed');
  }
}
