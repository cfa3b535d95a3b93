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
 *      directories and symlinks made to match (files: refresh-files.ts).
 *      The chunk map and the manifest are written as their pieces come,
 *      under temporary names (never held whole: pending-file.ts). At the
 *      end (see refresh-commit.ts): everything the new backup lacks is
 *      removed, written files and changed directories fsynced, then
 *      pg_control, the chunk map and backup_manifest renamed into place,
 *      and the marker removed last.
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
import { release } from '../src/io/slab-pool';
import * as path from 'node:path';
import type { BackupEvent, EntryEvent, StartEvent } from '../src/events';
import { PgbbError, TarFormatError, UsageError } from '../src/errors';
import { fsPath, showPath } from '../src/codec/path-bytes';
import { pathComponents, SafeTree } from '../src/io/safe-tree';
import { isVersionDir } from '../src/refresh/tablespace-links';
import { CHUNK_MAP_FILE, chunkKey } from '../src/codec/chunkmap/chunk-map';
import type { RefreshJournal } from '../src/refresh/refresh-journal';
import { renameDurably, syncDir, syncPaths } from '../src/io/durable';
import { CONTROL_FILE, PENDING_CONTROL } from '../src/refresh/walk-target';
import type { PriorState } from '../src/refresh/prior-state';
import { ioError } from './target-dir';
import { beginRefresh } from './refresh-begin';
import { removeUnseen } from './refresh-commit';
import { ensureDirectory, ensureMemberLink, removeLeftover } from './refresh-entries';
import { RefreshFiles } from './refresh-files';
import { PendingFile } from './pending-file';
import type { BackupSink, WalPlace } from '../src/sink';
import { GROUP_READABLE, OWNER_ONLY, type DataModes } from './data-modes';

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
  /** Bytes of changed chunks found already on disk, page by page, and not written. */
  bytesSame: number;
  filesWritten: number;
  filesCreated: number;
  filesRemoved: number;
  directoriesRemoved: number;
  linksRemoved: number;
}

const MAP_TMP = `${CHUNK_MAP_FILE}.tmp`;
const MANIFEST_TMP = 'backup_manifest.tmp';

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
  private readonly files: RefreshFiles;
  /** The new chunk map, written to its temporary file as it comes; `capturing` while its member's data flows. */
  private map: PendingFile | null = null;
  private capturing = false;
  /** backup_manifest.tmp, written as the manifest's pieces come (src/events.ts). */
  private manifest: PendingFile | null = null;
  private readonly seen = new Set<string>();
  private readonly dirty = new Set<string>();
  private inFlight: Promise<void> = Promise.resolve();
  private sawEnd = false;
  private modes: DataModes = OWNER_ONLY;
  /** Bytes written into the backup so far (for -P while the refresh runs). */
  get bytesWritten(): number {
    return this.stats.bytesWritten;
  }

  private stats: RefreshDirectoryResult = { bytesWritten: 0, bytesSame: 0, filesWritten: 0, filesCreated: 0, filesRemoved: 0, directoriesRemoved: 0, linksRemoved: 0 };

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
    this.files = new RefreshFiles({
      prior: this.prior, journal: () => this.journal!, dirty: this.dirty, stats: this.stats,
      onWrite: this.onStep && (() => this.onStep!('write')), destroyed: () => this.destroyed,
    });
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
    let hot: Promise<void> | null | false;
    try {
      hot = ev.type === 'data' && !this.capturing && !this.walInPlace ? this.files.hot(ev.offset, ev.chunk) : false;
    } catch (err) {
      // A throwing onStep (fault injection) fails the stream, like any failed write.
      return callback(err as Error);
    }
    if (hot === null) return callback();
    const op = hot || this.handle(ev);
    // _destroy waits for it: a write still in flight must not outlive the stream (nor leak a handle).
    this.inFlight = op.catch(() => {});
    op.then(() => callback(), callback);
  }

  private async handle(ev: BackupEvent): Promise<void> {
    switch (ev.type) {
      case 'start':
        return this.begin(ev);
      case 'archive':
        await this.endEntry();
        this.kind = ev.kind;
        this.archiveName = ev.name;
        // Streamed WAL already written into DIR's pg_wal/ (src/wal/wal-spool.ts): its members are kept, not written twice.
        this.walInPlace = ev.kind === 'wal' && ev.writtenIn !== undefined && path.resolve(ev.writtenIn) === path.resolve(this.dir, 'pg_wal');
        if (ev.kind === 'tablespace') {
          const t = this.tablespaceTrees.get(ev.name);
          if (!t) throw new PgbbError('protocol', `archive for unknown tablespace ${ev.name}`);
          this.archiveTree = t;
        } else this.archiveTree = this.tree;
        if (ev.kind === 'wal') await this.tree.mkdir('pg_wal', this.modes.dir);
        return;
      case 'entry':
        await this.endEntry();
        return this.entry(ev);
      case 'data':
        if (this.walInPlace) return release(ev.chunk); // the WAL receiver wrote it already: given back, as the directory sink does
        if (this.capturing) return this.map!.write(ev.chunk);
        return this.files.data(ev.offset, ev.chunk);
      case 'entry-end':
      case 'archive-end':
        return this.endEntry();
      case 'manifest':
        // Nothing is written before the marker (begin), the manifest included.
        if (!this.journal) throw new PgbbError('protocol', 'manifest before the start of the backup');
        this.manifest ??= await this.pending(MANIFEST_TMP);
        return this.manifest.write(ev.data);
      case 'end':
        this.sawEnd = true;
        return;
      default:
        return;
    }
  }

  /** The point of no return (sinks/refresh-begin.ts): check the server, then mark the directory incomplete before any other write. */
  private async begin(ev: StartEvent): Promise<void> {
    // The server says how its cluster is laid out: what the refresh adds follows it (0750/0640 when group-readable).
    this.modes = ev.groupReadable ? GROUP_READABLE : OWNER_ONLY;
    const b = await beginRefresh(this.prior, ev, { mapping: this.mapping, sync: this.sync, cancelled: () => this.destroyed, tree: this.tree, modes: this.modes });
    this.journal = b.journal;
    for (const [oid, dir] of b.tablespaceDirs) {
      this.tablespaceDirs.set(oid, dir);
      this.tablespaceTrees.set(oid, new SafeTree(dir, true));
    }
    for (const d of b.dirty) this.dirty.add(d);
  }

  private async endEntry(): Promise<void> {
    if (this.capturing) {
      this.capturing = false;
      // fsynced when it is renamed into place (renameDurably).
      await this.map!.close(false);
    }
    return this.files.close();
  }

  /** A temporary file of the base tree (any leftover of its name removed first, never followed). */
  private async pending(rel: string): Promise<PendingFile> {
    await removeLeftover(this.tree, rel);
    const f = await PendingFile.create(this.tree, rel, this.modes.file);
    if (!this.destroyed) return f;
    await f.discard();
    throw new PgbbError('interrupted', 'refresh sink destroyed');
  }

  private async entry(ev: EntryEvent): Promise<void> {
    if (!this.journal) throw new PgbbError('protocol', 'member before the start of the backup');
    const key = chunkKey(this.kind, this.archiveName, ev.path);
    this.seen.add(key);
    if (this.walInPlace) return;
    if (key === CHUNK_MAP_FILE) {
      await this.map?.discard();
      this.map = await this.pending(MAP_TMP);
      this.capturing = true;
      return;
    }
    // As the directory sink: only a declared tablespace's link is off limits; an in-place one is base's own directory.
    const inTablespace = this.kind === 'base' ? /^pg_tblspc\/([^/]+)\/./.exec(ev.path) : null;
    if (inTablespace && this.tablespaceDirs.has(inTablespace[1])) {
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
      if (ev.kind === 'file') return await this.files.open(ev, key, tree, rel);
      // A directory or link already right is kept; anything else in its place (a link, a file) is replaced.
      const changed = ev.kind === 'directory' ? await ensureDirectory(tree, rel, ev.mode & 0o7777 || 0o700) : await ensureMemberLink(tree, rel, ev, this.kind === 'base', this.tablespaceDirs);
      if (changed) this.dirty.add(changed);
    } catch (err) {
      if (err instanceof PgbbError) throw err;
      throw ioError(`could not update ${ev.kind}`, showPath(abs), err);
    }
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.commit().then(() => callback(), callback);
  }

  private async commit(): Promise<void> {
    if (!this.sawEnd) throw new PgbbError('incomplete', 'backup stream ended before the backup was complete');
    await this.endEntry();
    if (!this.map) throw new PgbbError('refresh', `the refresh stream carried no chunk map (chunk-diff must come before the refresh sink)`);
    if (!this.files.controlWritten) throw new PgbbError('refresh', 'the backup carried no global/pg_control');
    this.onStep?.('remove');
    // A dropped tablespace's files go too when the backup recorded its location; otherwise (pg_basebackup) only its link.
    const walked = new Map([...(this.prior.tablespacesRecorded ? this.prior.tablespaces : []), ...this.tablespaceDirs]);
    const removed = await removeUnseen(this.dir, walked, this.seen, this.dirty);
    this.stats.filesRemoved = removed.files;
    this.stats.directoriesRemoved = removed.directories;
    this.stats.linksRemoved = removed.links;
    if (this.sync) {
      await syncPaths([...this.files.written].filter((f) => !f.endsWith(PENDING_CONTROL)));
      await syncPaths([...this.dirty]);
    }
    this.onStep?.('control');
    await renameDurably(this.tree, PENDING_CONTROL, CONTROL_FILE, this.sync);
    this.onStep?.('map');
    await renameDurably(this.tree, MAP_TMP, CHUNK_MAP_FILE, this.sync);
    this.stats.bytesWritten += this.map.bytes;
    if (this.manifest) {
      this.onStep?.('manifest');
      await this.manifest.close(false);
      await renameDurably(this.tree, MANIFEST_TMP, 'backup_manifest', this.sync);
      this.stats.bytesWritten += this.manifest.bytes;
    }
    this.onStep?.('marker');
    await this.journal!.remove();
    this.journal = null;
    if (this.sync) await syncDir(this.dir);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const cleanup = async () => {
      await this.inFlight;
      await this.files.abort();
      // Its temporary files are of no use to the next refresh (which would remove them): gone now.
      for (const [f, rel] of [[this.map, MAP_TMP], [this.manifest, MANIFEST_TMP]] as const) {
        if (f) await f.discard().then(() => fs.unlink(fsPath(this.tree.abs(rel)))).catch(() => {});
      }
      await this.journal?.close().catch(() => {});
    };
    cleanup().then(() => callback(err), () => callback(err));
  }
}

export function refreshDirectorySink(opts: RefreshDirectorySinkOptions): RefreshDirectorySink {
  return new RefreshDirectorySink(opts);
}
