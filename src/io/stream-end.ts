/**
 * Ending and tearing down a stream and waiting for it, the way the sinks and
 * the composer need it:
 *
 *   endAndWait(w)          end() and resolve once finished; reject with what
 *                          ended it instead (end()'s callback gets the error,
 *                          often before 'error': it is no success)
 *   destroyAndWait(s, err) destroy and resolve once closed; at once if it
 *                          closed already (a failure may have closed it: a
 *                          'close' that came before would never come again).
 *                          The error is the caller's to report.
 *   whenClosed(s)          resolve on 'close' (events.once would reject on the
 *                          'error' just before it), at once if closed already
 */
import type { Readable, Writable } from 'node:stream';

export function endAndWait(w: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.end((err?: Error | null) => (err ? reject(err) : resolve()));
  });
}

export function whenClosed(s: Writable | Readable): Promise<void> {
  return s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()));
}

export function destroyAndWait(s: Writable | Readable, err?: Error | null): Promise<void> {
  if (s.closed) return Promise.resolve();
  s.on('error', () => {});
  const closed = whenClosed(s);
  s.destroy(err ?? undefined);
  return closed;
}
