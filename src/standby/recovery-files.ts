/**
 * Makes a data directory start as a standby (what `pg_basebackup -R` leaves
 * behind): pgbb's block of primary_conninfo / primary_slot_name in
 * postgresql.auto.conf (replacing an earlier run's block, keeping the rest)
 * and an empty standby.signal. postgresql.auto.conf may hold a password, so
 * it is written 0600, to a temporary name first and renamed over the old
 * one; neither file is ever opened through a link.
 *
 * Errors: IoError naming the file.
 */
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { IoError, ioError } from '../errors';
import { syncDir, writeNewFile } from '../io/durable';
import { LIMITS, readLimited } from '../io/read-limited';
import { withRecoveryBlock, type RecoverySettings } from '../codec/recovery-settings';

const { O_WRONLY, O_CREAT, O_NOFOLLOW, O_TRUNC } = constants;

export async function writeRecoveryFiles(dataDir: string, settings: RecoverySettings, sync: boolean): Promise<void> {
  const dir = path.resolve(dataDir);
  const conf = path.join(dir, 'postgresql.auto.conf');
  const old = await readLimited(conf, LIMITS.autoConf);
  const tmp = `${conf}.pgbb-tmp`;
  await fs.unlink(tmp).catch(() => {}); // an earlier run's, cut off before its rename
  await writeNewFile(tmp, withRecoveryBlock(old ? old.toString('utf8') : '', settings), sync);
  await fs.rename(tmp, conf).catch((err) => {
    throw ioError('could not rename', tmp, err);
  });
  const signal = path.join(dir, 'standby.signal');
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(signal, O_WRONLY | O_CREAT | O_NOFOLLOW | O_TRUNC, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new IoError(`"${signal}" is a symbolic link: refusing to follow it`);
    throw ioError('could not create', signal, err);
  }
  try {
    if (!(await fh.stat()).isFile()) throw new IoError(`"${signal}" is not a regular file`);
    if (sync) await fh.sync();
  } finally {
    await fh.close();
  }
  if (sync) await syncDir(dir);
}
