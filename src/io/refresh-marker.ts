/**
 * The refresh marker's name and the check every reader of a backup makes:
 * a directory holding `pgbb_refresh_incomplete` is a refresh interrupted
 * mid-way, a mix of old and new files, and is never read as a backup.
 *
 * Here, below sources and refresh alike, so that opening a backup
 * (src/sources/open-backup.ts) need not import refresh; the marker's content
 * (the journal) is src/refresh/refresh-journal.ts's.
 *
 * Errors: PgbbError 'incomplete_refresh' naming the directory.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PgbbError } from '../errors';

export const REFRESH_MARKER = 'pgbb_refresh_incomplete';

export function incompleteRefresh(dir: string): PgbbError {
  return new PgbbError('incomplete_refresh', `"${path.resolve(dir)}": incomplete refresh, run refresh again`);
}

/** Fails when `dir` holds the marker of an interrupted refresh. */
export async function assertComplete(dir: string): Promise<void> {
  try {
    await fs.access(path.join(dir, REFRESH_MARKER));
  } catch {
    return;
  }
  throw incompleteRefresh(dir);
}
