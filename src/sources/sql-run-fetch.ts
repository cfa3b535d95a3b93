/**
 * The parallel source's worker fetch over SQL: a run of consecutive pieces
 * (parallel-fetch.ts) in ONE query, whose rows stream back one file range
 * each — a chunk is one row, a batch one row per file — and are handed on
 * as they arrive. The server reads the next range while the last one is on
 * the wire, so on a link with a long round trip a worker waits for the
 * network once per run instead of once per piece.
 *
 *   COPY (SELECT pg_read_binary_file(p, o, l, true), i
 *         FROM unnest(paths, offsets, lengths) WITH ORDINALITY AS x(p, o, l, i))
 *   TO STDOUT (FORMAT binary)
 *
 * No ORDER BY: a sort would hold every row on the server before the first
 * is sent. A function scan returns rows in ordinality order; each row
 * carries its ordinal and one out of order is a ProtocolError, never a file
 * range filled with another's bytes.
 */
import { ProtocolError } from '../errors';
import { sqlLiteral, type SqlSession } from '../net/sql-session';
import type { Piece, RunFetch } from './parallel-fetch';

export const fetchRunOverSql: RunFetch<SqlSession> = async (s, run, deliver) => {
  const paths: string[] = [];
  const offsets: number[] = [];
  const lengths: number[] = [];
  /** Per range: its piece, and for a batch the file's index in it. */
  const owner: [number, number][] = [];
  run.forEach((p: Piece, k) => {
    if (p.kind === 'chunk') {
      paths.push(sqlLiteral(p.file.serverPath));
      offsets.push(p.offset);
      lengths.push(p.length);
      owner.push([k, -1]);
      return;
    }
    p.files.forEach((f, j) => {
      paths.push(sqlLiteral(f.serverPath));
      offsets.push(0);
      lengths.push(f.size);
      owner.push([k, j]);
    });
    if (p.files.length === 0) deliver(k, []);
  });
  if (paths.length === 0) return;
  let batch: (Buffer | null)[] = [];
  let row = 0;
  await s.copyEach(
    `SELECT pg_read_binary_file(p, o, l, true), i FROM unnest(ARRAY[${paths.join(',')}]::text[], ARRAY[${offsets.join(',')}]::bigint[], ` +
      `ARRAY[${lengths.join(',')}]::bigint[]) WITH ORDINALITY AS x(p, o, l, i)`,
    ([data, ordinal]) => {
      if (row >= owner.length || !ordinal || ordinal.length !== 8 || Number(ordinal.readBigInt64BE(0)) !== row + 1) {
        throw new ProtocolError(`pg_read_binary_file rows out of order (row ${row + 1} of ${owner.length})`);
      }
      const [k, j] = owner[row++];
      const p = run[k];
      if (p.kind === 'chunk') return deliver(k, data ?? null);
      batch.push(data ?? null);
      if (j === p.files.length - 1) {
        deliver(k, batch);
        batch = [];
      }
    },
  );
  if (row !== owner.length) throw new ProtocolError(`pg_read_binary_file returned ${row} of ${owner.length} rows`);
};
