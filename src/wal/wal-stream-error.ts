/**
 * The WAL connection's failures, named for what failed: too few WAL senders
 * (with the way out), slot problems (code 'slot'), the session gone
 * ("WAL streaming connection lost: …"), anything else the server said.
 */
import { ConnectionError, PgbbError, ServerError } from '../errors';

export function walStreamError(err: unknown): Error {
  if (!(err instanceof Error)) return new PgbbError('wal_stream', `WAL streaming failed: ${String(err)}`);
  if (err instanceof PgbbError && err.code === 'wal_senders') {
    return new PgbbError(
      'wal_senders',
      `${err.message}; -X stream needs a second replication connection (raise max_wal_senders or use -X fetch)`,
      { cause: err },
    );
  }
  if (err instanceof ServerError && err.code !== 'slot') {
    const slotProblem = ['42704', '55006', '53400'].includes(err.sqlstate ?? '') || /replication slot/.test(err.message);
    if (slotProblem) return new ServerError(err.message, err.sqlstate, 'slot', { cause: err });
    // 57P01 terminated by an administrator, 57P03 shutting down, 08xxx: the session is gone.
    if (/^(57|08)/.test(err.sqlstate ?? '')) {
      return new ConnectionError(`WAL streaming connection lost: ${err.message}`, { cause: err });
    }
    return new ServerError(`WAL streaming failed: ${err.message}`, err.sqlstate, err.code, { cause: err });
  }
  if (err instanceof ConnectionError && !/^WAL streaming/.test(err.message)) {
    // "connection to server at … lost: why" (src/net/replication-connection.ts) → "WAL streaming connection lost: why"
    const lost = /^connection to server at "[^"]*" lost: (.*)$/s.exec(err.message);
    return new ConnectionError(lost ? `WAL streaming connection lost: ${lost[1]}` : `WAL streaming: ${err.message}`, { cause: err });
  }
  return err;
}
