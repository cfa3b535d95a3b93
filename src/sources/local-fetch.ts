/**
 * The local source's transfer (`--local-pgdata DIR`, pgbb on the database
 * host): the pieces the parallel source would fetch over SQL
 * (parallel-fetch.ts) read straight from the data directory, so the server
 * spends no CPU on file transfer. The leader protocol (start, listing, stop)
 * stays on SQL.
 *
 *   checkLocalDataDir(session, dir)  DIR is the server's data directory: the
 *                                    system identifier in its global/pg_control
 *                                    is the server's, and data_directory names it
 *   readPiece(dir, piece)            a piece's bytes (null: the file is gone)
 *
 * Safety: every file is opened O_NOFOLLOW|O_NONBLOCK and must be a regular
 * file (src/io/read-limited.ts openRegular); only the links PostgreSQL keeps
 * in the listed paths (pg_tblspc/<oid>) are followed. Reads never exceed the
 * listed size.
 */
import { realpathSync } from 'node:fs';
import * as path from 'node:path';
import { PgbbError, ioError } from '../errors';
import { openRegular } from '../io/read-limited';
import type { SqlSession } from '../net/sql-session';
import type { Piece, PieceData } from './parallel-fetch';
import type { ListedFile } from './parallel-listing';

export async function checkLocalDataDir(s: SqlSession, dir: string): Promise<void> {
  const [row] = await s.rows(`SELECT (SELECT system_identifier::text FROM pg_control_system()), current_setting('data_directory')`);
  const [sysid, dataDirectory] = row ?? [];
  const control = await readRange(path.join(dir, 'global/pg_control'), 0, 8);
  if (control === null || control.length < 8) throw new PgbbError('local_pgdata', `"${dir}" is not a data directory: it has no global/pg_control`);
  const onDisk = control.readBigUInt64LE(0).toString();
  if (onDisk !== sysid) throw new PgbbError('local_pgdata', `"${dir}" is not the server's data directory (its system identifier is ${onDisk}, the server's ${sysid})`);
  if (dataDirectory && realpathSync(dir) !== realpathSync(dataDirectory)) {
    throw new PgbbError('local_pgdata', `"${dir}" is not the server's data directory ("${dataDirectory}")`);
  }
}

export async function readPiece(dir: string, p: Piece): Promise<PieceData> {
  if (p.kind === 'chunk') return readRange(path.join(dir, p.file.serverPath), p.offset, p.length);
  const out: (Buffer | null)[] = [];
  for (const f of p.files) out.push(await readWhole(dir, f));
  return out;
}

function readWhole(dir: string, f: ListedFile): Promise<Buffer | null> {
  return readRange(path.join(dir, f.serverPath), 0, f.size);
}

/** Up to `length` bytes at `offset`; null when the file is gone. */
export async function readRange(file: string, offset: number, length: number): Promise<Buffer | null> {
  let fh;
  try {
    fh = await openRegular(file, 'data file');
  } catch (err) {
    if (((err as PgbbError).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return null;
    throw err;
  }
  try {
    const buf = Buffer.alloc(length);
    let have = 0;
    while (have < length) {
      const { bytesRead } = await fh.read(buf, have, length - have, offset + have);
      if (bytesRead === 0) break;
      have += bytesRead;
    }
    return have === length ? buf : buf.subarray(0, have);
  } catch (err) {
    throw ioError('could not read data file', file, err);
  } finally {
    await fh.close().catch(() => {});
  }
}
