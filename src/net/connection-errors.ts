/**
 * How a replication connection's failures read: connecting (unreachable,
 * refused, TLS, authentication, too many WAL senders), a session the server
 * ended (shutdown, crash, pg_terminate_backend), a silent server.
 */
import { AuthError, ConnectionError, InterruptedError, PgbbError, ServerError, systemReason } from '../errors';
import { tlsReason } from './tls-options';

/** A failed connection attempt to `where`; SQLSTATEs 28xxx and 42501 mean "not allowed in", as opposed to "could not reach". */
export function connectError(err: unknown, where: string, timeoutMs: number): PgbbError {
  const e = err as { code?: string; message?: string };
  // Ours, from the password lookup (conninfo.ts).
  if (err instanceof AuthError) return new AuthError(`connection to server at ${where} failed: ${err.message}`, { cause: err });
  if (err instanceof PgbbError) return err;
  let reason = e.code && /^E[A-Z]+$/.test(e.code) ? systemReason(err) : e.message ?? String(err);
  reason = tlsReason(e.code, reason);
  if (reason === 'timeout expired') reason = `timeout expired${timeoutMs ? ` after ${timeoutMs / 1000} s` : ''}`;
  else if (reason === 'Connection terminated unexpectedly') reason = 'server closed the connection unexpectedly';
  const msg = `connection to server at ${where} failed: ${reason}`;
  if (e.code && /^28/.test(e.code)) return new AuthError(msg, { cause: err });
  if (e.code === '42501') return new AuthError(msg, { cause: err });
  if (e.code === '53300') return new PgbbError('wal_senders', msg, { cause: err });
  if (e.code && /^[0-9A-Z]{5}$/.test(e.code)) return new ServerError(msg, e.code, 'connection', { cause: err });
  return new ConnectionError(msg, { cause: err });
}

/** The abort's reason, or an InterruptedError. */
export function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new InterruptedError();
}

/** SQLSTATEs of a server that ends the session: operator intervention (57P0x) or a connection exception (08xxx). */
export function isSessionEnd(sqlstate: string): boolean {
  return /^57P0/.test(sqlstate) || /^08/.test(sqlstate);
}

/** The error for a socket that went away: the server's own words (`farewell`) when it said why. */
export function lostError(where: string, farewell: string | null, err?: Error): ConnectionError {
  let why = farewell;
  if (!why && err) {
    const e = err as NodeJS.ErrnoException;
    why = e.code && /^E[A-Z]+$/.test(e.code) ? systemReason(err) : err.message;
    if (why === 'Connection terminated unexpectedly') why = null;
  }
  return new ConnectionError(`connection to server at ${where} lost: ${why ?? 'server closed the connection unexpectedly (it shut down or crashed, or the network failed)'}`, {
    cause: err,
  });
}

export function silenceError(where: string, silentMs: number, timeoutMs: number): ConnectionError {
  return new ConnectionError(
    `no response from server at ${where} for ${Math.round(silentMs / 1000)} s (limit ${timeoutMs / 1000} s, --timeout); ` +
      'the server or the network is not responding',
  );
}
