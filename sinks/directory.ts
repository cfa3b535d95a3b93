/**
 * Directory sink: writes the member stream as a plain data directory, what
 * `pg_basebackup -Fp` writes.
 *
 * In:  member events. Tablespace archives go to the location `start` records,
 *      or the one `tablespaceMapping` (-T OLD=NEW) gives; an unmapped one is
 *      refused when `unmappedTablespaces` is 'refuse' (see
 *      tablespace-places.ts). The `wal` archive (-X stream) goes under
 *      `<target>/pg_wal/`, whose directories base.tar has already created.
 * Out: files and directories with the cluster's modes (data-modes.ts:
 *      0600/0700, or 0640/0750 for a group-readable cluster; `secret`
 *      members 0600), `backup_manifest` written under a temporary name as
 *      its pieces come (never held whole) and renamed last, once everything
 *      is fsynced.
 *
 * No write goes through a link. Each root (the target, each tablespace
 * directory) is a SafeTree: a member's parent must be a directory this run
 * created, and files are created O_EXCL|O_NOFOLLOW — checked in memory, no
 * extra system call per file. Links are made only where PostgreSQL has them
 * (directory-links.ts).
 *
 * Errors: a live, non-empty or misplaced target or tablespace directory
 *      before anything is written; TarFormatError naming a member that is
 *      not a plain relative path or a symlink pgbb does not make; IoError for
 *      a member whose parent is not a directory of this run. Any failure or a
 *      stream that stops before `end` removes what the sink created
 *      (empties directories that existed empty).
 */
import { Writable } from 'node:stream';
import { closeSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { BackupEvent, EntryEvent, StartEvent } from '../src/events';
import { IoError, PgbbError, TarFormatError, UsageError } from '../src/errors';
import { DATA_FILE_BATCH, WriteBatcher } from '../src/io/file-writer';
import { release } from '../src/io/slab-pool';
import { SafeTree } from '../src/io/safe-tree';
import { showPath } from '../src/codec/path-bytes';
import { modesFromMember, OWNER_ONLY, SECRET_FILE_MODE, type DataModes } from './data-modes';
import { placeTablespaces, type TablespacePlace, type UnmappedTablespaces } from './tablespace-places';
import {
  checkEmptyOrMissing,
  discardDir,
  ioError,
  lockTarget,
  prepareEmptyDir,
  type PreparedDir,
} from './target-dir';
import { releaseHeldLock, type TargetLock } from '../src/io/target-lock';
import { syncTree } from '../src/io/durable';
import type { BackupSink, WalPlace } from '../src/sink';
import { PendingFile } from './pending-file';
import { placeLink } from './directory-links';

const MANIFEST_TMP = 'backup_manifest.tmp';

/** Directories of base that the WAL receiver writing into `<target>/pg_wal` makes itself. */
const WAL_RECEIVER_DIRS = new Set(['pg_wal', 'pg_wal/archive_status']);

export interface DirectorySinkOptions {
  /** The data directory to create (must be missing or empty). */
  target: string;
  /** -T OLD=NEW: tablespace locations to write elsewhere. */
  tablespaceMapping?: Record<string, string>;
  /**
   * Tablespaces -T does not map: 'recorded' (default) writes them at the
   * location the stream records (a backup: the server's own); 'refuse'
   * fails before writing anything there (restore, unless the user accepts).
   */
  unmappedTablespaces?: UnmappedTablespaces;
  /** Told where each tablespace goes, before anything is written there. */
  onTablespace?: (place: TablespacePlace) => void;
  /**
   * Called once every member is written, before anything is fsynced or the
   * manifest written; throwing fails the run and removes what was written
   * (restore: transforms/require-complete.ts).
   */
  beforeCommit?: () => void | Promise<void>;
  /** fsync files and directories at the end (default true; --no-sync turns it off). */
  sync?: boolean;
  /** --waldir: WAL goes here, and pg_wal is a link to it, as pg_basebackup --waldir makes it. */
  walDirectory?: string;
}

export class DirectorySink extends Writable implements BackupSink {
  private readonly opts: Required<Omit<DirectorySinkOptions, 'onTablespace' | 'beforeCommit' | 'walDirectory'>> & Pick<DirectorySinkOptions, 'onTablespace' | 'beforeCommit' | 'walDirectory'>;
  /** --waldir's tree, which base's pg_wal/ members and the WAL archive go into. */
  private walTree: SafeTree | null = null;
  private prepared: PreparedDir[] = [];
  /** Each tablespace directory is locked as the target is: a second run aimed at it is refused, never empties it. */
  private tablespaceLocks: TargetLock[] = [];
  /** The tree of each tablespace OID. */
  private tablespaceTrees = new Map<string, SafeTree>();
  private baseTree: SafeTree | null = null;
  /** Where the current archive's members go: a tree, and a path prefix inside it (the WAL archive: `pg_wal/`). */
  private tree: SafeTree | null = null;
  private prefix = '';
  private isBase = false;
  /** Decided by the first directory or file member (data-modes.ts). */
  private modes: DataModes | null = null;
  private walInPlace = false;
  /** The file being written: a bare descriptor (opened and closed synchronously, as its writes are; no FileHandle per file). */
  private file: number | null = null;
  private batcher: WriteBatcher | null = null;
  private filePath = '';
  /** backup_manifest.tmp, written piece by piece as the manifest comes (src/events.ts), renamed at commit. */
  private manifest: PendingFile | null = null;
  private sawEnd = false;
  private committed = false;
  /** The write in progress: a destroy waits for it, lest it create something after the cleanup. */
  private inflight: Promise<void> | null = null;

  constructor(opts: DirectorySinkOptions) {
    // Refused before super(): Writable schedules _construct (which creates the target) from its own constructor.
    if (!opts.target) throw new UsageError('no target directory given');
    super({ objectMode: true, highWaterMark: 16 });
    this.opts = { sync: true, tablespaceMapping: {}, unmappedTablespaces: 'recorded', ...opts };
  }

  private opened: Promise<void> | null = null;

  /**
   * Resolves once the target is checked and created; a caller awaits it to
   * refuse a bad target before contacting the server.
   */
  ready(): Promise<void> {
    this.opened ??= (async () => {
      // -T targets too (created only once the server names its tablespaces, at start).
      for (const dir of Object.values(this.opts.tablespaceMapping)) await checkEmptyOrMissing(dir);
      if (this.opts.walDirectory !== undefined) await checkEmptyOrMissing(this.opts.walDirectory);
      const target = await prepareEmptyDir(this.opts.target);
      this.prepared.push(target);
      this.baseTree = new SafeTree(target.path);
      if (this.opts.walDirectory !== undefined) {
        // Locked and emptied-if-failed as a tablespace directory is; the one link pgbb makes besides pg_tblspc/<oid>.
        this.tablespaceLocks.push(await lockTarget(this.opts.walDirectory));
        const wal = await prepareEmptyDir(this.opts.walDirectory);
        this.prepared.push(wal);
        this.walTree = new SafeTree(wal.path);
        await this.baseTree.symlink('pg_wal', wal.path);
      }
    })();
    return this.opened;
  }

  override _construct(callback: (err?: Error | null) => void): void {
    this.ready().then(() => callback(), callback);
  }

  /** Streamed WAL goes straight into the target's pg_wal/ (written once). */
  walPlace(): WalPlace {
    return { walDir: this.walRoot() };
  }

  private walRoot(): string {
    return this.opts.walDirectory !== undefined ? path.resolve(this.opts.walDirectory) : path.join(path.resolve(this.opts.target), 'pg_wal');
  }

  override _write(ev: BackupEvent, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.walInPlace && (ev.type === 'entry' || ev.type === 'data' || ev.type === 'entry-end')) {
      // Already in this target's pg_wal/: the read-back bytes end here (src/io/slab-pool.ts).
      if (ev.type === 'data') release(ev.chunk);
      return callback();
    }
    if (ev.type === 'data') {
      // The hot path: chunks gather into large positioned writes.
      const b = this.batcher;
      if (!b) return callback(new IoError('data without an open file in directory sink'));
      if (ev.offset !== b.end) return callback(new IoError(`data for "${this.filePath}" at offset ${ev.offset}, expected ${b.end}`));
      const due = b.add(ev.chunk);
      if (due) this.track(due, callback);
      else callback();
      return;
    }
    this.track(this.handle(ev), callback);
  }

  private track(p: Promise<void>, callback: (err?: Error | null) => void): void {
    this.inflight = p;
    p.then(() => callback(), callback).finally(() => {
      if (this.inflight === p) this.inflight = null;
    });
  }

  private async handle(ev: BackupEvent): Promise<void> {
    switch (ev.type) {
      case 'start':
        return this.prepareTablespaces(ev);
      case 'archive':
        this.isBase = ev.kind === 'base';
        this.prefix = '';
        // Streamed WAL already written into this target's pg_wal/ (src/wal/wal-spool.ts): not written twice.
        this.walInPlace = ev.kind === 'wal' && ev.writtenIn !== undefined && path.resolve(ev.writtenIn) === this.walRoot();
        if (ev.kind === 'tablespace') {
          const tree = this.tablespaceTrees.get(ev.name);
          if (!tree) throw new PgbbError('protocol', `archive for unknown tablespace ${ev.name}`);
          this.tree = tree;
        } else if (ev.kind === 'wal' && this.walTree) {
          this.tree = this.walTree;
        } else if (ev.kind === 'wal') {
          // Streamed WAL: into base's pg_wal/ (made here if base.tar had none).
          this.tree = this.baseTree!;
          this.prefix = 'pg_wal/';
          await this.tree.mkdir('pg_wal', (this.modes ?? OWNER_ONLY).dir, true);
        } else {
          this.tree = this.baseTree!;
        }
        return;
      case 'entry':
        return this.openEntry(ev);
      case 'entry-end':
        if (this.file !== null) {
          const fd = this.file;
          this.file = null;
          const batcher = this.batcher!;
          this.batcher = null;
          try {
            await batcher.flush();
          } catch (err) {
            closeFile(fd, this.filePath, false);
            throw err;
          }
          closeFile(fd, this.filePath);
        }
        return;
      case 'archive-end':
        this.walInPlace = false;
        return;
      case 'manifest':
        return this.manifestPiece(ev.data);
      case 'end':
        this.sawEnd = true;
        return;
      default:
        return;
    }
  }

  private async prepareTablespaces(ev: StartEvent): Promise<void> {
    const places = await placeTablespaces(ev.tablespaces, this.prepared[0].path, this.opts.tablespaceMapping, this.opts.unmappedTablespaces);
    // All refused or accepted before any is created.
    for (const p of places) await checkEmptyOrMissing(p.dir);
    for (const p of places) {
      this.opts.onTablespace?.(p);
      this.tablespaceLocks.push(await lockTarget(p.dir));
      const prepared = await prepareEmptyDir(p.dir);
      this.prepared.push(prepared);
      this.tablespaceTrees.set(p.oid, new SafeTree(prepared.path));
    }
  }

  /** The cluster's modes, decided once by the first directory or file; the roots this sink made follow them. */
  private async modesFor(ev: EntryEvent): Promise<DataModes> {
    if (this.modes) return this.modes;
    this.modes = modesFromMember(ev.kind, ev.mode);
    if (this.modes.groupReadable) {
      for (const d of this.prepared) {
        if (d.created) await fs.chmod(d.path, this.modes.dir).catch((err) => {
          throw ioError('could not set the mode of', d.path, err);
        });
      }
    }
    return this.modes;
  }

  private async openEntry(ev: EntryEvent): Promise<void> {
    let tree = this.tree;
    if (!tree) throw new PgbbError('protocol', `archive member "${showPath(ev.path)}" outside an archive`);
    let rel = this.prefix + ev.path;
    if (this.isBase && this.walTree && (ev.path === 'pg_wal' || ev.path.startsWith('pg_wal/'))) {
      // --waldir: pg_wal is the link made at ready(); what is below it goes into the WAL directory.
      if (ev.path === 'pg_wal') return;
      tree = this.walTree;
      rel = ev.path.slice('pg_wal/'.length);
    }
    // A declared tablespace's contents come in its own archive; in base they would be written through its link.
    // An in-place tablespace (allow_in_place_tablespaces, LOCATION '') is declared by none: base holds it as a directory.
    const inTablespace = this.isBase ? /^pg_tblspc\/([^/]+)\/./.exec(ev.path) : null;
    if (inTablespace && this.tablespaceTrees.has(inTablespace[1])) {
      throw new TarFormatError(`archive member "${showPath(ev.path)}" lies inside a tablespace link`);
    }
    if (ev.kind === 'symlink') return placeLink(tree, ev, this.isBase, this.tablespaceTrees, (this.modes ?? OWNER_ONLY).dir);
    const modes = await this.modesFor(ev);
    if (ev.kind === 'directory') {
      // A directory met again (pg_wal/ comes with base and with the WAL) is fine, if this run made it;
      // pg_wal/ and its archive_status/ may come from this run's WAL receiver (src/wal/wal-spool.ts), before base.tar has them.
      const byReceiver = tree === this.walTree ? rel === 'archive_status' : tree === this.baseTree && WAL_RECEIVER_DIRS.has(rel);
      await tree.mkdir(rel, modes.dir, byReceiver);
      return;
    }
    this.filePath = tree.abs(rel);
    const fd = tree.createFileSync(rel, ev.secret ? SECRET_FILE_MODE : modes.file);
    this.file = fd;
    this.batcher = new WriteBatcher({ fd }, this.filePath, 0, DATA_FILE_BATCH);
  }

  /** The manifest comes after every member; its first piece creates backup_manifest.tmp (any member of that name removed first). */
  private async manifestPiece(data: Buffer): Promise<void> {
    if (!this.manifest) {
      const tree = this.baseTree!;
      await fs.unlink(tree.abs(MANIFEST_TMP)).catch(() => {});
      this.manifest = await PendingFile.create(tree, MANIFEST_TMP, (this.modes ?? OWNER_ONLY).file);
    }
    await this.manifest.write(data);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.commit().then(() => callback(), callback);
  }

  private async commit(): Promise<void> {
    if (!this.sawEnd) throw new PgbbError('incomplete', 'backup stream ended before the backup was complete');
    const root = this.prepared[0].path;
    await this.opts.beforeCommit?.();
    if (this.opts.sync) {
      for (const d of this.prepared) await syncTree(d.path);
    }
    // A finished backup holds no lock file (pg_verifybackup would list it);
    // the directory is not empty any more, which keeps other runs out.
    await releaseHeldLock(root);
    for (const l of this.tablespaceLocks) await releaseHeldLock(l.path);
    this.tablespaceLocks = []; // released: nothing for a later destroy to remove
    // Last, and atomically: a backup_manifest means the backup is whole.
    await this.manifest?.publish(this.baseTree!.abs('backup_manifest'), this.opts.sync);
    this.committed = true;
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const cleanup = async () => {
      await this.inflight?.catch(() => {});
      if (this.file !== null) closeFile(this.file, this.filePath, false);
      this.file = null;
      await this.manifest?.discard();
      if (!this.committed) {
        for (const d of this.prepared.reverse()) await discardDir(d).catch(() => {});
      }
      // After the cleanup: removes each lock, and the directory when this run made it.
      for (const l of this.tablespaceLocks) await l.release().catch(() => {});
    };
    cleanup().then(() => callback(err), () => callback(err));
  }
}

/** Closes a file this sink wrote; `report` false: on abort, where only the first error counts. */
function closeFile(fd: number, file: string, report = true): void {
  try {
    closeSync(fd);
  } catch (err) {
    if (report) throw ioError('could not close file', file, err);
  }
}

export function directorySink(opts: DirectorySinkOptions): DirectorySink {
  return new DirectorySink(opts);
}
