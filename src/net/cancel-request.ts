/**
 * CancelRequest (protocol: length 16, code 80877102, pid, secret key) on a
 * new connection, as libpq's PQcancel: the server stops a command at once
 * even where it does not look at the session's socket (a walsender waiting
 * for a checkpoint). Best effort: resolves once the request is sent or could
 * not be, within about a second.
 */
import { connect } from 'node:net';
import type { CancelKey } from './pg-session';

export const CANCEL_REQUEST_CODE = 80877102;

export function sendCancelRequest(key: CancelKey, limitMs = 1000): Promise<void> {
  const msg = Buffer.alloc(16);
  msg.writeInt32BE(16, 0);
  msg.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  msg.writeInt32BE(key.pid, 8);
  msg.writeInt32BE(key.secret, 12);
  return new Promise((resolve) => {
    const sock = key.host?.startsWith('/') ? connect(`${key.host}/.s.PGSQL.${key.port}`) : connect(key.port, key.host);
    const timer = setTimeout(() => sock.destroy(), limitMs);
    timer.unref();
    sock.on('connect', () => sock.end(msg));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
