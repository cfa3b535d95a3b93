/**
 * Files planted where pgbb expects small regular ones, for the tests of every
 * read site (src/io/read-limited.ts is the one way in):
 *
 *   plant(file, kind)    replaces `file` with a FIFO, a symlink to /dev/zero,
 *                        or a sparse file just over `maxBytes`
 *   releaseFifos()       opens every planted FIFO for writing once, so that a
 *                        reader blocked on one (the bug under test) returns
 *                        and the test process can end
 *   within(p, ms)        p, or a rejection "still waiting after ms" (a hang
 *                        becomes a failure, not a stuck test run)
 *   tinyPlainBackup(dir) the smallest plain backup the plain source reads,
 *                        for planting into
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backupLabel, fakeControlFile } from './chunk-fixtures';

export type Hostile = 'fifo' | 'dev-zero-link' | 'oversize';

const fifos: string[] = [];

export function plant(file: string, kind: Hostile, maxBytes = 0): void {
  rmSync(file, { force: true });
  if (kind === 'fifo') {
    execFileSync('mkfifo', [file]);
    fifos.push(file);
  } else if (kind === 'dev-zero-link') symlinkSync('/dev/zero', file);
  else {
    writeFileSync(file, '');
    truncateSync(file, maxBytes + 1); // sparse: costs no disk
  }
}

export function releaseFifos(): void {
  for (const f of fifos.splice(0)) {
    try {
      closeSync(openSync(f, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // No reader waits on it (ENXIO) or it is gone: nothing to release.
    }
  }
}

export async function within<T>(p: Promise<T>, ms = 3000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms (a read blocked?)`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** pg_control, backup_label, PG_VERSION, one data file (base/1/100) and a manifest, in `dir` (created). */
export function tinyPlainBackup(dir: string): string {
  mkdirSync(join(dir, 'global'), { recursive: true });
  mkdirSync(join(dir, 'base/1'), { recursive: true });
  writeFileSync(join(dir, 'global/pg_control'), fakeControlFile());
  writeFileSync(join(dir, 'backup_label'), backupLabel('0/2000028'));
  writeFileSync(join(dir, 'PG_VERSION'), '15\n');
  writeFileSync(join(dir, 'base/1/100'), 'data');
  writeFileSync(join(dir, 'backup_manifest'), '{}');
  return dir;
}
