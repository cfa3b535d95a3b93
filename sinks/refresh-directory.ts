/**
 * Refresh-directory sink: rewrites an existing plain backup in place so that
 * it becomes the backup arriving in the stream, writing only what chunk-diff
 * (transforms/chunk-diff.ts) passes on.
 *
 * In:  member events after chunk-diff: `inPlace` entries with the data of
 *      changed chunks at their offsets, whole entries for new files, the new
 *      chunk map as member `pg_wal/pgbb.chunkmap`, the manifest, `end`.
 *      `prior` is what loadPriorState found in the directory.
 * Out: at `start` (after checking the server is the one the backup is of),
 *      before any other write: the refresh marker (src/refresh/refresh-
 *      journal.ts) is created, backup_manifest and global/pg_control are
 *      removed — from here on the directory is visibly not a backup, and
 *      PostgreSQL refuses to start it. Then: in-place files are opened only
 *      when a byte of theirs changes (its key journaled and fsynced first),
 *      written at offsets, truncated or extended to the entry's size; new
 *      files created; pg_control written as global/pg_control.pgbb-new;
 *      directories and symlinks made to match. At the end (see
 *      refresh-commit.ts): everything the new backup lacks is removed,
 *      written files and changed directories fsynced, then pg_control, the
 *      chunk map and backup_manifest renamed into place, and the marker
 *      removed last.
 * Result: { bytesWritten, filesWritten, filesCreated, filesRemoved,
 *      directoriesRemoved, linksRemoved }.
 * Where it writes: only inside the directory and the tablespace locations
 *      `prior` trusted (src/refresh/tablespace-links.ts) or this refresh
 *      linked, every write through a SafeTree (src/io/safe-tree.ts) in
 *      existing mode: a directory planted as a link is replaced by a real
 *      one, never written through; every file created O_EXCL|O_NOFOLLOW
 *      after any leftover of its name is removed; every in-place file
 *      opened O_NOFOLLOW and only when it is a regular file. Inside a
 *      tablespace, members must lie in its PG_<major>_<catversion> directory.
 * Errors: PgbbError 'refresh' for a server of another system or major
 *      version; IoError naming the path; a stream that stops before `end`
 *      fails. A failure leaves the directory marked incomplete: the next
 *      refresh completes it (nothing is rolled back, nothing looks valid).
 */
import { Writable } from 'node:stream';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { BackupEvent, EntryEvent, StartEvent } from '../src/events';
import { IoError, PgbbError, TarFormatError, UsageError } from '../src/errors';
import { WriteBatcher } from '../src/io/file-writer';
import { showPath } from '../src/codec/path-bytes';
import { pathComponents, SafeTree } from '../src/io/safe-tree';
import { isVersionDir } from '../src/refresh/tablespace-links';
import { CHUNK_MAP_FILE, chunkKey } from '../src/codec/chunkmap/chunk-map';
import type { RefreshJournal } from '../src/refresh/refresh-journal';
import { renameDurably, syncDir, syncPaths, writeDurably } from '../src/io/durable';
import { CONTROL_FILE, PENDING_CONTROL } from '../src/refresh/walk-target';
import type { PriorState } from '../src/refresh/prior-state';
import { checkSymlinkTarget, ioError } from './target-dir';
import { beginRefresh } from './refresh-begin';
import { removeUnseen } from './refresh-commit';
import { ensureDirectory, ensureSymlink, removeLeftover } from './refresh-entries';
import type { BackupSink, WalPlace } from '../src/sink';

export interface RefreshDirectorySinkOptions {
  prior: PriorState;
  /** -T OLD=NEW, for tablespaces the backup does not have yet (existing ones stay where their link points). */
  tablespaceMapping?: Record<string, string>;
  /** fsync (default true). */
  sync?: boolean;
  /** Fault injection for crash tests: called at 'write' (each data write) and before each commit step. */
  onStep?: (step: 'write' | 'remove' | 'control' | 'map' | 'manifest' | 'marker') => void;
}

export interface RefreshDirectoryResult {
  bytesWritten: number;
  filesWritten: number;
  filesCreated: number;
  filesRemoved: number;
  directoriesRemoved: number;
  linksRemoved: number;
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
  mode: number;
}

export class RefreshDirectorySink extends Writable implements BackupSink {
  private readonly prior: PriorState;
  private readonly dir: string;
  private readonly sync: boolean;
  private readonly mapping: Record<string, string>;
  private readonly onStep: RefreshDirectorySinkOptions['onStep'];
  private journal: RefreshJournal | null = null;
  private readonly tablespaceDirs = new Map<string, string>();
  /** The directory and each tablespace location: where this sink may write. */
  private readonly tree: SafeTree;
  private readonly tablespaceTrees = new Map<string, SafeTree>();
  private kind: 'base' | 'tablespace' | 'wal' = 'base';
  private walInPlace = false;
  private archiveName = 'base';
  private archiveTree: SafeTree;
  private file: OpenFile | null = null;
  private capture: Buffer[] | null = null;
  private map: Buffer | null = null;
  /** The manifest's pieces as they came (src/events.ts). */
  private manifestPieces: Buffer[] | null = null;
  private get manifest(): Buffer | null {
    return this.manifestPieces && Buffer.concat(this.manifestPieces);
  }
  private readonly seen = new Set<string>();
  private readonly written = new Set<string>();
  private readonly dirty = new Set<string>();
  private controlWritten = false;
  private inFlight: Promise<void> = Promise.resolve();
  private sawEnd = false;
  private stats: RefreshDirectoryResult = { bytesWritten: 0, filesWritten: 0, filesCreated: 0, filesRemoved: 0, directoriesRemoved: 0, linksRemoved: 0 };

  constructor(opts: RefreshDirectorySinkOptions) {
    super({ objectMode: true, highWaterMark: 16 });
    if (!opts.prior) throw new UsageError('refresh sink needs the prior state of the target');
    this.prior = opts.prior;
    this.dir = opts.prior.dir;
    this.sync = opts.sync ?? true;
    this.mapping = opts.tablespaceMapping ?? {};
    this.onStep = opts.onStep;
    this.tree = new SafeTree(this.dir, true);
    this.archiveTree = this.tree;
  }

  /** The directory was checked, locked and read when its prior state was loaded (src/refresh/prior-state.ts). */
  ready(): Promise<void> {
    return Promise.resolve();
  }

  /** Streamed WAL goes straight into DIR's pg_wal/; the sink keeps it. */
  walPlace(): WalPlace {
    return { walDir: path.join(this.dir, 'pg_wal') };
  }

  get result(): RefreshDirectoryResult {
    return this.stats;
  }

  override _write(ev: BackupEvent, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (ev.type === 'data' && this.file?.batcher && ev.offset === this.file.batcher.end) {
      // The hot path: contiguous bytes of an open file gather into large writes.
      this.onStep?.('write');
      this.stats.bytesWritten += ev.chunk.length;
      const due = this.file.batcher.add(ev.chunk);
      if (due) {
        this.inFlight = due.catch(() => {});
        due.then(() => callback(), callback);
      } else callback();
      return;
    }
    const op = this.handle(ev);
    // _destroy waits for it: a write still in flight must not outlive the stream (nor leak a handle).
    this.inFlight = op.catch(() => {});
    op.then(() => callback(), callback);
  }

  private async handle(ev: BackupEvent): Promise<void> {
    switch (ev.type) {
      case 'start':
        return this.begin(ev);
      case 'archive':
        await this.closeFile();
        this.kind = ev.kind;
        this.archiveName = ev.name;
        // Streamed WAL already written into DIR's pg_wal/ (src/wal/wal-spool.ts): its members are kept, not written twice.
        this.walInPlace = ev.kind === 'wal' && ev.writtenIn !== undefined && path.resolve(ev.writtenIn) === path.resolve(this.dir, 'pg_wal');
        if (ev.kind === 'tablespace') {
          const t = this.tablespaceTrees.get(ev.name);
          if (!t) throw new PgbbError('protocol', `archive for unknown tablespace ${ev.name}`);
          this.archiveTree = t;
        } else this.archiveTree = this.tree;
        if (ev.kind === 'wal') await this.tree.mkdir('pg_wal', 0o700);
        return;
      case 'entry':
        await this.closeFile();
        return this.entry(ev);
      case 'data':
        if (this.walInPlace) return;
        if (this.capture) {
          this.capture.push(ev.chunk);
          return;
        }
        return this.data(ev.offset, ev.chunk);
      case 'entry-end':
      case 'archive-end':
        if (this.capture) {
          this.map = Buffer.concat(this.capture);
          this.capture = null;
        }
        return this.closeFile();
      case 'manifest':
        (this.manifestPieces ??= []).push(ev.data);
        return;
      case 'end':
        this.sawEnd = true;
        return;
      default:
        return;
    }
  }

  /** The point of no return (sinks/refresh-begin.ts): check the server, then mark the directory incomplete before any other write. */
  private async begin(ev: StartEvent): Promise<void> {
    const b = await beginRefresh(this.prior, ev, { mapping: this.mapping, sync: this.sync, cancelled: () => this.destroyed, tree: this.tree });
    this.journal = b.journal;
    for (const [oid, dir] of b.tablespaceDirs) {
      this.tablespaceDirs.set(oid, dir);
      this.tablespaceTrees.set(oid, new SafeTree(dir, true));
    }
    for (const d of b.dirty) this.dirty.add(d);
  }

  private async entry(ev: EntryEvent): Promise<void> {
    if (!this.journal) throw new PgbbError('protocol', 'member before the start of the backup');
    const key = chunkKey(this.kind, this.archiveName, ev.path);
    this.seen.add(key);
    if (this.walInPlace) return;
    if (key === CHUNK_MAP_FILE) {
      this.capture = [];
      return;
    }
    if (this.kind === 'base' && /^pg_tblspc\/[^/]+\/./.test(ev.path)) {
      throw new TarFormatError(`archive member "${ev.path}" lies inside a tablespace link`);
    }
    const parts = pathComponents(ev.path);
    if (this.kind === 'tablespace' && !isVersionDir(parts[0])) {
      throw new TarFormatError(`tablespace ${this.archiveName} member "${showPath(ev.path)}" lies outside its PG_<major>_<catversion> directory`);
    }
    const tree = this.archiveTree;
    const rel = key === CONTROL_FILE ? PENDING_CONTROL : this.kind === 'wal' ? `pg_wal/${parts.join('/')}` : parts.join('/');
    const abs = tree.abs(rel);
    try {
      if (ev.kind === 'file') return await this.openEntry(ev, key, tree, rel);
      // A directory or link already right is kept; anything else in its place (a link, a file) is replaced.
      const changed = ev.kind === 'directory' ? await ensureDirectory(tree, rel, ev.mode & 0o7777 || 0o700) : await this.symlink(ev, tree, rel);
      if (changed) this.dirty.add(changed);
    } catch (err) {
      if (err instanceof PgbbError) throw err;
      throw ioError(`could not update ${ev.kind}`, showPath(abs), err);
    }
  }

  /** A link of the backup: a pg_tblspc/<oid> link points where this refresh keeps that tablespace; others must stay inside. */
  private async symlink(ev: EntryEvent, tree: SafeTree, rel: string): Promise<string | null> {
    const ts = this.kind === 'base' && /^pg_tblspc\/(\d+)$/.exec(ev.path);
    let target = ev.linkTarget ?? '';
    if (ts) {
      const dir = this.tablespaceDirs.get(ts[1]);
      if (!dir) throw new TarFormatError(`symlink "${ev.path}" names tablespace ${ts[1]}, which the backup does not declare`);
      target = dir;
    } else checkSymlinkTarget(ev.path, target);
    return ensureSymlink(tree, rel, target);
  }

  private async openEntry(ev: EntryEvent, key: string, tree: SafeTree, rel: string): Promise<void> {
    const mode = ev.mode & 0o7777 || 0o600;
    const abs = tree.abs(rel);
    if (ev.inPlace) {
      // Opened only if a byte changes (see data): an unchanged file is not touched at all.
      this.file = { key, tree, rel, abs, inPlace: true, size: ev.size, fh: null, batcher: null, mode };
      return;
    }
    if ((await removeLeftover(tree, rel)) !== 'file') this.stats.filesCreated++;
    const fh = await this.adopt(await tree.createFile(rel, mode));
    this.file = { key, tree, rel, abs, inPlace: false, size: ev.size, fh, batcher: new WriteBatcher(fh, abs), mode };
    this.written.add(abs);
    this.dirty.add(path.dirname(abs));
    if (key === CONTROL_FILE) this.controlWritten = true;
  }

  /** Opens an in-place file for writing, its key journaled first. */
  private async openInPlace(f: OpenFile): Promise<void> {
    await this.journal!.record(f.key);
    try {
      f.fh = await this.adopt(await f.tree.openExisting(f.rel));
    } catch (err) {
      if (err instanceof PgbbError) throw err;
      throw ioError('could not open for update', f.abs, err);
    }
    this.written.add(f.abs);
  }

  /** A handle opened while the stream was being destroyed would outlive _destroy: close it at once. */
  private async adopt(fh: fs.FileHandle): Promise<fs.FileHandle> {
    if (!this.destroyed) return fh;
    await fh.close().catch(() => {});
    throw new PgbbError('interrupted', 'refresh sink destroyed');
  }

  private async data(offset: number, chunk: Buffer): Promise<void> {
    const f = this.file;
    if (!f) throw new IoError('data without an open file in refresh sink');
    if (f.inPlace && !f.fh) await this.openInPlace(f);
    if (!f.batcher || f.batcher.end !== offset) {
      if (!f.inPlace) throw new IoError(`data for "${f.abs}" at offset ${offset}, expected ${f.batcher?.end ?? 0}`);
      await f.batcher?.flush();
      f.batcher = new WriteBatcher(f.fh!, f.abs, offset);
    }
    this.onStep?.('write');
    this.stats.bytesWritten += chunk.length;
    await f.batcher.add(chunk);
  }

  private async closeFile(): Promise<void> {
    const f = this.file;
    if (!f) return;
    this.file = null;
    try {
      await f.batcher?.flush();
      const priorSize = this.prior.map.files.get(f.key)?.size;
      if (f.inPlace && priorSize !== f.size) {
        if (!f.fh) await this.openInPlace(f);
        await f.fh!.truncate(f.size);
      }
      if (f.fh) this.stats.filesWritten++;
    } catch (err) {
      throw err instanceof PgbbError ? err : ioError('could not write', f.abs, err);
    } finally {
      await f.fh?.close().catch(() => {});
    }
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.commit().then(() => callback(), callback);
  }

  private async commit(): Promise<void> {
    if (!this.sawEnd) throw new PgbbError('incomplete', 'backup stream ended before the backup was complete');
    await this.closeFile();
    if (!this.map) throw new PgbbError('refresh', `the refresh stream carried no chunk map (chunk-diff must come before the refresh sink)`);
    if (!this.controlWritten) throw new PgbbError('refresh', 'the backup carried no global/pg_control');
    this.onStep?.('remove');
    // A dropped tablespace's files go too when the backup recorded its location; otherwise (pg_basebackup) only its link.
    const walked = new Map([...(this.prior.tablespacesRecorded ? this.prior.tablespaces : []), ...this.tablespaceDirs]);
    const removed = await removeUnseen(this.dir, walked, this.seen, this.dirty);
    this.stats.filesRemoved = removed.files;
    this.stats.directoriesRemoved = removed.directories;
    this.stats.linksRemoved = removed.links;
    if (this.sync) {
      await syncPaths([...this.written].filter((f) => !f.endsWith(PENDING_CONTROL)));
      await syncPaths([...this.dirty]);
    }
    this.onStep?.('control');
    await renameDurably(this.tree, PENDING_CONTROL, CONTROL_FILE, this.sync);
    this.onStep?.('map');
    await writeDurably(this.tree, CHUNK_MAP_FILE, this.map, this.sync);
    this.stats.bytesWritten += this.map.length;
    if (this.manifest) {
      this.onStep?.('manifest');
      await writeDurably(this.tree, 'backup_manifest', this.manifest, this.sync);
      this.stats.bytesWritten += this.manifest.length;
    }
    this.onStep?.('marker');
    await this.journal!.remove();
    this.journal = null;
    if (this.sync) await syncDir(this.dir);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const cleanup = async () => {
      await this.inFlight;
      await this.file?.fh?.close().catch(() => {});
      this.file = null;
      await this.journal?.close().catch(() => {});
    };
    cleanup().then(() => callback(err), () => callback(err));
  }
}

export function refreshDirectorySink(opts: RefreshDirectorySinkOptions): RefreshDirectorySink {
  return new RefreshDirectorySink(opts);
}
