/**
 * Makes an empty DATADIR the start of a refresh, so that the standby's first
 * backup is resumable: a refresh that is cut off (network, kill -9) leaves
 * its marker, and the next run completes the directory instead of starting
 * over (a plain backup would remove what it wrote).
 *
 * The seed is the refresh marker (created first, durably: from then on the
 * directory is never taken for a backup) and PG_VERSION with the primary's
 * major version (what a refresh needs to know it is refreshing a PostgreSQL
 * of that version), and an empty global/; a seed cut off between the two is finished by the next
 * run. Both are created without following links (O_EXCL / O_NOFOLLOW).
 *
 * Errors: IoError naming the file.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ioError, type IoError } from '../errors';
import { syncDir, writeNewFile } from '../io/durable';
import { RefreshJournal } from '../refresh/refresh-journal';

export async function seedDataDirectory(dir: string, major: number, sync: boolean): Promise<void> {
  const abs = path.resolve(dir);
  await fs.mkdir(abs, { mode: 0o700 }).catch((err) => {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('could not create directory', abs, err);
  });
  const journal = await RefreshJournal.open(abs, sync);
  await journal.close();
  // global/ as every data directory has it: a refresh makes pg_control durable there.
  await fs.mkdir(path.join(abs, 'global'), { mode: 0o700 }).catch((err) => {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('could not create directory', path.join(abs, 'global'), err);
  });
  const file = path.join(abs, 'PG_VERSION');
  try {
    await writeNewFile(file, `${major}\n`, sync);
  } catch (err) {
    if (((err as IoError).cause as NodeJS.ErrnoException | undefined)?.code === 'EEXIST') return; // a seed cut off after this step, or a refresh's own
    throw err;
  }
  if (sync) await syncDir(abs);
}
