/**
 * One run at a time on a backup directory: a refresh holds `.pgbb-lock` (the
 * name sinks/target-dir.ts's lockTarget uses, so a refresh and a backup into
 * the same directory exclude each other) from before it reads the directory
 * until it has committed or failed.
 *
 * A refresh killed with SIGKILL cannot remove its lock; the next refresh takes
 * over a lock whose pid no longer runs (the marker and journal, not the lock,
 * carry what the dead run left unfinished).
 *
 * Errors: TargetLockedError when a live process holds the lock; IoError.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ioError, TargetLockedError } from '../errors';

export const LOCK_FILE = '.pgbb-lock';

export interface RefreshLock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function lockForRefresh(dir: string): Promise<RefreshLock> {
  const file = path.join(path.resolve(dir), LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('could not create lock file', file, err);
      const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      if (attempt === 0 && Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid)) {
        await fs.unlink(file).catch(() => {});
        continue;
      }
      throw new TargetLockedError(path.dirname(file), Number.isInteger(pid) && pid > 0 ? `pid ${pid}` : `lock file "${file}"`);
    }
    let ino: number;
    try {
      await fh.writeFile(`${process.pid}\n`);
      ino = (await fh.stat()).ino;
    } finally {
      await fh.close();
    }
    return {
      release: async () => {
        const st = await fs.lstat(file).catch(() => null);
        if (st && st.ino === ino) await fs.unlink(file).catch(() => {});
      },
    };
  }
}
