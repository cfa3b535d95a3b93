/**
 * tap: passes every member event through unchanged and shows each one to a
 * callback first. The simplest observer; the pipeline builder's tally
 * (src/pipeline/observers.ts) uses it to collect the result (LSNs, bytes)
 * without a second consumer on the source.
 */
import { Transform } from 'node:stream';
import type { BackupEvent } from '../src/events';

export function tap(fn: (ev: BackupEvent) => void): Transform {
  return new Transform({
    objectMode: true,
    highWaterMark: 16,
    transform(ev: BackupEvent, _enc, cb) {
      try {
        fn(ev);
      } catch (err) {
        return cb(err as Error);
      }
      cb(null, ev);
    },
  });
}
