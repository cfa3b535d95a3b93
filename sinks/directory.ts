/**
 * Directory sink: writes the member stream as a plain data directory, what
 * `pg_basebackup -Fp` writes.
 *
 * In:  member events. Tablespace archives go to their server location, or the
 *      one `tablespaceMapping` (-T OLD=NEW) gives; base's `pg_tblspc/<oid>`
 *      symlinks point at wherever the tablespace was written. The `wal`
 *      archive (-X stream) goes under `<target>/pg_wal/`, whose directories
 *      base.tar has already created.
 * Out: files (member modes, normally 0600/0700), `backup_manifest` written
 *      last under a temporary name and renamed once everything is fsynced.
 * Errors: a non-empty target or tablespace directory before anything is
 *      written; any failure or a stream that stops before `end` removes what
 *      the sink created (empties directories that existed empty).
 */
import { Writable } from 'node:stream';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { BackupEvent, EntryEvent, StartEvent } from '../src/events';
import { IoError, PgbbError, TarFormatError, UsageError } from '../src/errors';
import { WriteBatcher } from '../src/io/file-writer';
// Member paths carry non-UTF-8 names as escaped bytes: fs calls get their bytes.
import { fsPath, showPath } from '../src/path-bytes';
import {
  checkEmptyOrMissing,
  checkSymlinkTarget,
  discardDir,
  ioError,
  memberPath,
  prepareEmptyDir,
  releaseHeldLock,
  syncPaths,
  syncTree,
  type PreparedDir,
} from './target-dir';

export interface DirectorySinkOptions {
  /** The data directory to create (must be missing or empty). */
  target: string;
  /** -T OLD=NEW: tablespace locations to write elsewhere. */
  tablespaceMapping?: Record<string, string>;
  /** fsync files and directories at the end (default true; --no-sync turns it off). */
  sync?: boolean;
}

export class DirectorySink extends Writable {
  private readonly opts: Required<DirectorySinkOptions>;
  private prepared: PreparedDir[] = [];
  /** Where each tablespace OID is written. */
  private tablespaceDirs = new Map<string, string>();
  private root = '';
  private isBase = false;
  private walInPlace = false;
  private file: fs.FileHandle | null = null;
  private batcher: WriteBatcher | null = null;
  private filePath = '';
  private manifest: Buffer | null = null;
  private sawEnd = false;
  private committed = false;

  constructor(opts: DirectorySinkOptions) {
    super({ objectMode: true, highWaterMark: 16 });
    if (!opts.target) throw new UsageError('no target directory given');
    this.opts = { sync: true, tablespaceMapping: {}, ...opts };
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
      this.prepared.push(await prepareEmptyDir(this.opts.target));
    })();
    return this.opened;
  }

  override _construct(callback: (err?: Error | null) => void): void {
    this.ready().then(() => callback(), callback);
  }


  override _write(ev: BackupEvent, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.walInPlace && (ev.type === 'entry' || ev.type === 'data' || ev.type === 'entry-end')) return callback();
    if (ev.type === 'data') {
      // The hot path: chunks gather into large positioned writes.
      const b = this.batcher;
      if (!b) return callback(new IoError('data without an open file in directory sink'));
      if (ev.offset !== b.end) return callback(new IoError(`data for "${this.filePath}" at offset ${ev.offset}, expected ${b.end}`));
      const due = b.add(ev.chunk);
      if (due) due.then(() => callback(), callback);
      else callback();
      return;
    }
    this.handle(ev).then(() => callback(), callback);
  }

  private async handle(ev: BackupEvent): Promise<void> {
    switch (ev.type) {
      case 'start':
        return this.prepareTablespaces(ev);
      case 'archive':
        this.isBase = ev.kind === 'base';
        // Streamed WAL already written into this target's pg_wal/ (src/wal/wal-spool.ts): not written twice.
        this.walInPlace = ev.kind === 'wal' && ev.writtenIn !== undefined && path.resolve(ev.writtenIn) === path.resolve(this.prepared[0].path, 'pg_wal');
        if (ev.kind === 'tablespace') {
          const dir = this.tablespaceDirs.get(ev.name);
          if (!dir) throw new PgbbError('protocol', `archive for unknown tablespace ${ev.name}`);
          this.root = dir;
        } else if (ev.kind === 'wal') {
          this.root = path.join(this.prepared[0].path, 'pg_wal');
          await fs.mkdir(this.root, { recursive: true, mode: 0o700 }).catch((err) => {
            throw ioError('could not create directory', this.root, err);
          });
        } else {
          this.root = this.prepared[0].path;
        }
        return;
      case 'entry':
        return this.openEntry(ev);
      case 'entry-end':
        if (this.file) {
          const f = this.file;
          this.file = null;
          await this.batcher!.flush();
          this.batcher = null;
          try {
            await f.close();
          } catch (err) {
            throw ioError('could not close file', this.filePath, err);
          }
        }
        return;
      case 'archive-end':
        this.walInPlace = false;
        return;
      case 'manifest':
        this.manifest = ev.data;
        return;
      case 'end':
        this.sawEnd = true;
        return;
      default:
        return;
    }
  }

  private async prepareTablespaces(ev: StartEvent): Promise<void> {
    const mapping = this.opts.tablespaceMapping;
    for (const ts of ev.tablespaces) {
      if (ts.oid === null) continue;
      const dir = mapping[ts.location.replace(/\/+$/, '')] ?? ts.location;
      if (!path.isAbsolute(dir)) throw new UsageError(`tablespace location "${dir}" is not absolute`);
      this.prepared.push(await prepareEmptyDir(dir));
      this.tablespaceDirs.set(ts.oid, path.resolve(dir));
    }
  }

  private async openEntry(ev: EntryEvent): Promise<void> {
    const p = memberPath(this.root, ev.path);
    // Tablespace contents come in their own archives; in base they would be written through the link.
    if (this.isBase && /^pg_tblspc\/[^/]+\/./.test(ev.path)) {
      throw new TarFormatError(`archive member "${ev.path}" lies inside a tablespace link`);
    }
    try {
      switch (ev.kind) {
        case 'directory':
          try {
            await fs.mkdir(fsPath(p), { mode: ev.mode & 0o7777 || 0o700 });
          } catch (err) {
            // As tar does: a directory met again (pg_wal/ and pg_wal/archive_status/
            // come with base and with the WAL) is fine — but not a symlink posing as one.
            if (!((err as NodeJS.ErrnoException).code === 'EEXIST' && (await fs.lstat(fsPath(p))).isDirectory())) throw err;
          }
          return;
        case 'symlink': {
          const ts = this.isBase && /^pg_tblspc\/(\d+)$/.exec(ev.path);
          let target = ev.linkTarget ?? '';
          if (ts) {
            // Tablespace links point where this sink put the tablespace, never where the archive says.
            const dir = this.tablespaceDirs.get(ts[1]);
            if (!dir) throw new TarFormatError(`symlink "${ev.path}" names tablespace ${ts[1]}, which the backup does not declare`);
            target = dir;
          } else {
            checkSymlinkTarget(ev.path, target);
          }
          await fs.symlink(fsPath(target), fsPath(p));
          return;
        }
        case 'file':
          this.filePath = p;
          this.file = await fs.open(fsPath(p), 'wx', ev.mode & 0o7777 || 0o600);
          this.batcher = new WriteBatcher(this.file, p);
          return;
      }
    } catch (err) {
      throw ioError(`could not create ${ev.kind}`, showPath(p), err);
    }
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.commit().then(() => callback(), callback);
  }

  private async commit(): Promise<void> {
    if (!this.sawEnd) throw new PgbbError('incomplete', 'backup stream ended before the backup was complete');
    const root = this.prepared[0].path;
    if (this.opts.sync) {
      for (const d of this.prepared) await syncTree(d.path);
    }
    // A finished backup holds no lock file (pg_verifybackup would list it);
    // the directory is not empty any more, which keeps other runs out.
    await releaseHeldLock(root);
    if (this.manifest) {
      // Last, and atomically: a backup_manifest means the backup is whole.
      const tmp = path.join(root, 'backup_manifest.tmp');
      const final = path.join(root, 'backup_manifest');
      try {
        await fs.writeFile(tmp, this.manifest, { mode: 0o600 });
        if (this.opts.sync) await syncPaths([tmp]);
        await fs.rename(tmp, final);
        if (this.opts.sync) await syncPaths([root]);
      } catch (err) {
        throw ioError('could not write manifest', final, err);
      }
    }
    this.committed = true;
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const cleanup = async () => {
      await this.file?.close().catch(() => {});
      this.file = null;
      if (!this.committed) {
        for (const d of this.prepared.reverse()) await discardDir(d).catch(() => {});
      }
    };
    cleanup().then(() => callback(err), () => callback(err));
  }
}

export function directorySink(opts: DirectorySinkOptions): DirectorySink {
  return new DirectorySink(opts);
}
