/**
 * `pgbb refresh -j N`: the parallel source's pieces (parallel-fetch.ts) with
 * only changed bytes crossing the network. For each piece, the bytes the
 * backup being refreshed (DIR) holds at that place are read locally and
 * hashed here (SHA-256); the server is sent that hash and compares it with
 * `sha256(pg_read_binary_file(path, offset, length))` of its own copy, in one
 * query per piece (a batch of small files: one query for all of them). Equal:
 * it answers NULL and DIR's bytes stand for the piece; different: it sends its
 * bytes. Pieces DIR lacks (new or resized files) are fetched whole.
 *
 * Why a hash of DIR's bytes, not the chunk map's: the map may have been
 * written with another chunk hash or chunk size, and DIR's bytes are what
 * the refresh compares and keeps; a full SHA-256 of them is what the server
 * confirms, so a stale local chunk is practically impossible to keep.
 * What follows downstream (manifest-build, chunk-diff, the refresh sink) sees
 * every byte, as from any source.
 *
 * Works on any PostgreSQL with sha256() (11+), for roles the parallel source
 * accepts.
 */
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { sqlLiteral, type SqlSession } from '../net/sql-session';
import { readRange } from './local-fetch';
import { fetchPiece, type Piece, type PieceData } from './parallel-fetch';

export function remoteHashFetch(dir: string): (s: SqlSession, p: Piece) => Promise<PieceData> {
  return async (s, p) => {
    if (p.kind === 'chunk') {
      const local = await readRange(path.join(dir, p.file.serverPath), p.offset, p.length);
      if (!local || local.length !== p.length) return fetchPiece(s, p);
      const [row] = await s.copyRows(
        `SELECT d IS NULL, CASE WHEN sha256(d) = ${hashLiteral(local)} THEN NULL ELSE d END ` +
          `FROM (SELECT pg_read_binary_file(${sqlLiteral(p.file.serverPath)}, ${p.offset}, ${p.length}, true) AS d) r`,
      );
      return answer(row, local);
    }
    const locals: (Buffer | null)[] = [];
    for (const f of p.files) {
      const b = await readRange(path.join(dir, f.serverPath), 0, f.size);
      locals.push(b && b.length === f.size ? b : null);
    }
    const paths = p.files.map((f) => sqlLiteral(f.serverPath)).join(',');
    const sizes = p.files.map((f) => f.size).join(',');
    const hashes = locals.map((b) => (b ? hashLiteral(b) : 'NULL')).join(',');
    const rows = await s.copyRows(
      `SELECT d IS NULL, CASE WHEN h IS NOT NULL AND sha256(d) = h THEN NULL ELSE d END ` +
        `FROM unnest(ARRAY[${paths}]::text[], ARRAY[${sizes}]::bigint[], ARRAY[${hashes}]::bytea[]) WITH ORDINALITY AS x(p, l, h, i), ` +
        `LATERAL (SELECT pg_read_binary_file(p, 0, l, true) AS d) r ORDER BY i`,
    );
    return p.files.map((_, i) => answer(rows[i], locals[i]));
  };
}

/** (gone, bytes-or-NULL) → the piece's bytes: the server's, DIR's when they matched, null when gone. */
function answer(row: (Buffer | null)[] | undefined, local: Buffer | null): Buffer | null {
  const gone = row?.[0]?.[0] === 1;
  if (!row || gone) return null;
  return row[1] ?? local;
}

function hashLiteral(b: Buffer): string {
  return `'\\x${createHash('sha256').update(b).digest('hex')}'::bytea`;
}
