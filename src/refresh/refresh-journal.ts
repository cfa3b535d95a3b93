/**
 * The refresh marker and journal: one file, `pgbb_refresh_incomplete`, at the
 * top of a plain backup while a refresh is rewriting it.
 *
 * Its presence says "this directory is not a backup right now": `pgbb
 * verify` refuses it with "incomplete refresh, run refresh again", and the
 * next refresh knows the old chunk map is no longer the whole truth. Its
 * lines name the files (chunk map keys, JSON strings) that a refresh was
 * about to modify in place: each is appended and fsynced *before* the first
 * byte of that file changes, so after a crash — even a power loss, where a
 * rewritten data block can reach the disk without the inode's new ctime —
 * the next refresh re-reads exactly those files instead of trusting the map.
 * The journal accumulates across interrupted refreshes and goes away only
 * when a refresh commits. A line `{"tablespace": OID, "location": DIR}`
 * records a tablespace link the refresh is about to make, so that the next
 * refresh follows that link although the old chunk map does not record it.
 * The marker is opened without following links (a link planted at its name
 * is refused, never appended through).
 *
 * The marker's name, and the check that refuses a directory holding it, are
 * src/io/refresh-marker.ts's (readers of a backup need them, not refresh).
 *
 * Errors: IoError naming the file.
 */
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { IoError, ioError, PgbbError } from '../errors';
import { LIMITS, readLimited } from '../io/read-limited';
import { syncDir } from '../io/durable';
import { REFRESH_MARKER } from '../io/refresh-marker';

const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

const FIRST_LINE = 'pgbb refresh in progress: this directory is not a usable backup until a refresh completes';

export interface JournalState {
  /** The marker exists: a refresh started and did not commit. */
  present: boolean;
  /** Keys recorded as (about to be) modified in place. */
  keys: Set<string>;
  /** Tablespace links (OID → location) a refresh recorded before making them. */
  tablespaces: Map<string, string>;
}

export async function readJournal(dir: string): Promise<JournalState> {
  const file = path.join(dir, REFRESH_MARKER);
  // Capped, not following a link, not blocking on a FIFO planted under the marker's name.
  const buf = await readLimited(file, LIMITS.refreshJournal);
  if (!buf) return { present: false, keys: new Set(), tablespaces: new Map() };
  const text = buf.toString('utf8');
  const keys = new Set<string>();
  const tablespaces = new Map<string, string>();
  for (const line of text.split('\n').slice(1)) {
    if (!line) continue;
    try {
      const key = JSON.parse(line);
      if (typeof key === 'string') keys.add(key);
      else if (/^\d+$/.test(key?.tablespace) && typeof key.location === 'string' && key.location.startsWith('/')) tablespaces.set(key.tablespace, key.location);
    } catch {
      // A torn last line: its fsync never returned, so its file was never written.
    }
  }
  return { present: true, keys, tablespaces };
}

export class RefreshJournal {
  private constructor(
    private fh: fs.FileHandle | null,
    readonly file: string,
    private readonly sync: boolean,
  ) {}

  /** Creates the marker (or reopens it to append), durably, before anything else is touched. */
  static async open(dir: string, sync = true): Promise<RefreshJournal> {
    const file = path.join(dir, REFRESH_MARKER);
    let fh: fs.FileHandle;
    try {
      // An interrupted refresh's journal is appended to; a new one is created O_EXCL. Never through a link, never a FIFO.
      fh = await fs.open(file, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK).catch((err) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        return fs.open(file, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      });
      const st = await fh.stat();
      if (!st.isFile() || st.nlink > 1) {
        await fh.close();
        // A hard link would carry the appended journal into a file elsewhere.
        throw new IoError(`refresh marker "${file}" is ${st.isFile() ? `a file with ${st.nlink} hard links` : 'not a regular file'}: refusing to write to it`);
      }
      if (st.size === 0) await fh.write(`${FIRST_LINE}\n`);
      if (sync) {
        await fh.sync();
        await syncDir(dir);
      }
    } catch (err) {
      if (err instanceof IoError) throw err;
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new IoError(`refresh marker "${file}" is a symbolic link: refusing to follow it`, { cause: err });
      throw ioError('could not write refresh marker', file, err);
    }
    return new RefreshJournal(fh, file, sync);
  }

  /** Records that `key` is about to change; returns once that is on disk. */
  async record(key: string): Promise<void> {
    await this.append(JSON.stringify(key));
  }

  private async append(line: string): Promise<void> {
    if (!this.fh) throw new PgbbError('io', `refresh journal "${this.file}" is closed`);
    try {
      await this.fh.write(`${line}\n`);
      if (this.sync) await this.fh.datasync();
    } catch (err) {
      throw ioError('could not write refresh journal', this.file, err);
    }
  }

  /** Records a tablespace link about to be made (see the top of this file). */
  async recordTablespace(oid: string, location: string): Promise<void> {
    await this.append(JSON.stringify({ tablespace: oid, location }));
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }

  /** The refresh committed: the directory is a backup again. */
  async remove(): Promise<void> {
    await this.close();
    try {
      await fs.unlink(this.file);
      if (this.sync) await syncDir(path.dirname(this.file));
    } catch (err) {
      throw ioError('could not remove refresh marker', this.file, err);
    }
  }
}
