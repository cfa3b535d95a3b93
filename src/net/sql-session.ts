/**
 * A plain SQL session (no replication) for the parallel source: the same
 * connection machinery as the replication connection (TLS, passwords,
 * watchdog, cancel), speaking simple queries, one at a time — callers that
 * share a session (the leader: backup start/stop and checksum re-reads) are
 * queued, never interleaved.
 *
 *   rows(sql)      text results of the last result set
 *   copyRows(sql)  `COPY (…) TO STDOUT (FORMAT binary)`: bytea arrives as its
 *                  bytes (src/codec/protocol/binary-copy.ts), not hex
 *   copyEach(sql, onRow)  the same, row by row as they arrive
 *
 * Errors: the server's (ServerError with its SQLSTATE), lost connections
 * (ConnectionError), as ReplicationConnection reports them.
 */
import type { PgbbClientConfig } from './conninfo';
import { ReplicationConnection } from './replication-connection';
import { BinaryCopyDecoder } from '../codec/protocol/binary-copy';

export class SqlSession {
  private queue: Promise<unknown> = Promise.resolve();
  /** Bytes of COPY output received: what crossed the network as file data. */
  copyBytes = 0;

  private constructor(readonly conn: ReplicationConnection) {}

  /** `config` must be a non-replication one (clientConfig(…, false)). */
  static async connect(config: PgbbClientConfig, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<SqlSession> {
    const conn = await ReplicationConnection.connect(config, opts);
    const s = new SqlSession(conn);
    // Literals are written with '' doubling only: make sure backslashes mean themselves.
    await s.rows('SET standard_conforming_strings = on');
    return s;
  }

  get pid(): number | undefined {
    return this.conn.backendPid;
  }

  rows(sql: string): Promise<(string | null)[][]> {
    return this.serial(async () => (await this.conn.query(sql)).rows);
  }

  copyRows(sql: string): Promise<(Buffer | null)[][]> {
    const out: (Buffer | null)[][] = [];
    return this.copyEach(sql, (fields) => out.push(fields)).then(() => out);
  }

  /** copyRows, each row handed over as soon as it is decoded: one query streams many (the parallel source's runs). */
  copyEach(sql: string, onRow: (fields: (Buffer | null)[]) => void): Promise<void> {
    return this.serial(async () => {
      const decoder = new BinaryCopyDecoder(onRow);
      const take = (p: Buffer) => {
        this.copyBytes += p.length;
        decoder.write(p);
      };
      // A 1 MiB row spans many socket reads: taken in parts, the decoder copies it once into its own buffer.
      await this.conn.run(`COPY (${sql}) TO STDOUT (FORMAT binary)`, { copyData: take, copyDataPart: take });
      decoder.end();
    });
  }

  /** While true, the server may stay silent during a command (a spread checkpoint in pg_backup_start). */
  allowSilence(on: boolean): void {
    this.conn.allowSilence(on);
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  destroy(err?: Error): void {
    this.conn.destroy(err);
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.queue.then(f, f);
    this.queue = next.catch(() => {});
    return next;
  }
}

/** A standard-conforming SQL string literal: quotes doubled (the session sets standard_conforming_strings). */
export function sqlLiteral(s: string): string {
  if (s.includes('\0')) throw new TypeError('a SQL literal cannot hold a NUL byte');
  return `'${s.replace(/'/g, "''")}'`;
}
