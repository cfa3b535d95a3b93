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
 * when a refresh commits.
 *
 * Errors: IoError naming the file; PgbbError 'incomplete_refresh' from
 * assertComplete.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ioError, PgbbError } from '../errors';
import { LIMITS, readLimited } from '../io/read-limited';

export const REFRESH_MARKER = 'pgbb_refresh_incomplete';
const FIRST_LINE = 'pgbb refresh in progress: this directory is not a usable backup until a refresh completes';

export interface JournalState {
  /** The marker exists: a refresh started and did not commit. */
  present: boolean;
  /** Keys recorded as (about to be) modified in place. */
  keys: Set<string>;
}

export async function readJournal(dir: string): Promise<JournalState> {
  const file = path.join(dir, REFRESH_MARKER);
  // Capped, not following a link, not blocking on a FIFO planted under the marker's name.
  const buf = await readLimited(file, LIMITS.refreshJournal);
  if (!buf) return { present: false, keys: new Set() };
  const text = buf.toString('utf8');
  const keys = new Set<string>();
  for (const line of text.split('\n').slice(1)) {
    if (!line) continue;
    try {
      const key = JSON.parse(line);
      if (typeof key === 'string') keys.add(key);
    } catch {
      // A torn last line: its fsync never returned, so its file was never written.
    }
  }
  return { present: true, keys };
}

/** Fails when `dir` holds the marker of an interrupted refresh. */
export async function assertComplete(dir: string): Promise<void> {
  try {
    await fs.access(path.join(dir, REFRESH_MARKER));
  } catch {
    return;
  }
  throw new PgbbError('incomplete_refresh', `"${path.resolve(dir)}": incomplete refresh, run refresh again`);
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
      fh = await fs.open(file, 'a', 0o600);
      if ((await fh.stat()).size === 0) await fh.write(`${FIRST_LINE}\n`);
      if (sync) {
        await fh.sync();
        await syncDir(dir);
      }
    } catch (err) {
      throw ioError('could not write refresh marker', file, err);
    }
    return new RefreshJournal(fh, file, sync);
  }

  /** Records that `key` is about to change; returns once that is on disk. */
  async record(key: string): Promise<void> {
    if (!this.fh) throw new PgbbError('io', `refresh journal "${this.file}" is closed`);
    try {
      await this.fh.write(`${JSON.stringify(key)}\n`);
      if (this.sync) await this.fh.datasync();
    } catch (err) {
      throw ioError('could not write refresh journal', this.file, err);
    }
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

export async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
