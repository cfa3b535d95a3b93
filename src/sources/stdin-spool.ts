/**
 * `pg_basebackup -D - -Ft | pgbb verify -` (or `restore - -D DIR`): the
 * stream is spooled to disk, then read as a directory holding it as
 * base.tar (./tar-backup-source.ts, ./pg-basebackup-tar.ts).
 *
 * Why a spool: pg_basebackup's stream carries no pgbb descriptor, and what
 * it would say (system identifier, block and segment sizes, whether data
 * checksums are on) is in global/pg_control, the last data file of the
 * stream. Page checks need it before the first relation file, restore
 * needs the system identifier, and holding the stream in memory until
 * pg_control is unbounded. Verifying on guesses and settling at the end
 * would have every check hold its verdicts; a spool is one sequential
 * write and costs disk the size of the (decompressed) stream, not memory.
 *
 * Where: $TMPDIR or /var/tmp, the first on disk (src/wal/spool-place.ts),
 * in a fresh 0700 directory, the file 0600 (O_EXCL); removed when the run
 * ends or fails, and at once (synchronously) when the source is destroyed:
 * a CLI that exits as soon as its pipeline rejects (SIGTERM) leaves none. On a memory-backed filesystem (no disk
 * candidate) the spool is capped at spoolBudget() and refused past it.
 *
 * Recognised by its first tar header: a regular file named backup_label,
 * where pgbb's own stream begins with its descriptor's pax header.
 */
import { createWriteStream, promises as fs, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupEvent } from '../events';
import { ioError, IoError, PgbbError } from '../errors';
import { defaultSpoolParent, memoryFilesystem, spoolBudget } from '../wal/spool-place';
import { makeTempDir } from '../io/temp-dirs';

/** A tar stream whose first member is a regular file `backup_label`: pg_basebackup's. */
export function isPgBasebackupStream(head: Buffer): boolean {
  if (head.length < 512) return false;
  const end = head.indexOf(0, 0);
  const name = head.subarray(0, end >= 0 && end < 100 ? end : 100).toString('latin1');
  const type = head[156];
  return name === 'backup_label' && (type === 0x30 || type === 0);
}

/** Where a spool is, so that destroying its source removes it at once. */
export class SpoolPlace {
  dir: string | null = null;
  discarded = false;

  discard(): void {
    this.discarded = true;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The stream's bytes written to a spool file, then `read(dir)`'s events; the spool goes at the end whatever happens. */
export async function* spooledEvents(
  bytes: AsyncIterable<Buffer>,
  name: string,
  read: (dir: string) => AsyncIterable<BackupEvent>,
  place: SpoolPlace = new SpoolPlace(),
): AsyncGenerator<BackupEvent> {
  const parent = defaultSpoolParent();
  let dir: string;
  try {
    dir = makeTempDir(parent, 'stdin');
  } catch (err) {
    throw ioError('could not create a spool directory in', parent, err);
  }
  place.dir = dir;
  // Destroyed while the directory was being made.
  if (place.discarded) place.discard();
  try {
    const file = path.join(dir, 'base.tar');
    const budget = memoryFilesystem(parent) ? spoolBudget(parent) : Infinity;
    let total = 0;
    const capped = new Transform({
      transform(chunk: Buffer, _e, cb) {
        total += chunk.length;
        if (total > budget) {
          return cb(new IoError(`${name} is larger than the ${budget} bytes a spool may take in "${parent}" (${memoryFilesystem(parent)}): set TMPDIR to a directory on disk`));
        }
        cb(null, chunk);
      },
    });
    try {
      await pipeline(Readable.from(bytes, { objectMode: false }), capped, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      if (err instanceof PgbbError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      // Errors of the file itself (ENOSPC, EIO) name the spool; the stream's own (a truncated gzip) pass as they are.
      if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) throw ioError(`could not spool ${name} to`, file, err);
      throw err;
    }
    yield* read(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
