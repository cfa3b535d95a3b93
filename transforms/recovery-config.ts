/**
 * recovery-config (`-R`): makes the data directory being written start as a
 * standby, the way pg_basebackup -R does (src/fe_utils/recovery_gen.c):
 * `primary_conninfo = '…'` (and `primary_slot_name` with a slot) appended to
 * postgresql.auto.conf, and an empty `standby.signal`.
 *
 * In: member events. postgresql.auto.conf of the base archive is held (it is
 * small), rewritten and re-emitted; standby.signal (and postgresql.auto.conf
 * when the backup had none) are added at the end of the base archive.
 * Everything else passes through unchanged. With primary_conninfo (which
 * may hold a password) postgresql.auto.conf goes out with mode 0600 and
 * `secret` set, whatever mode the archive gave it: sinks keep it owner-only.
 * Put it after manifest-verify:
 * the files it changes no longer match the server's manifest (pg_verifybackup
 * ignores both by default).
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { BackupEvent, EntryEvent } from '../src/events';
import { IoError, UsageError } from '../src/errors';
import { LIMITS } from '../src/io/read-limited';
import { configQuote, conninfoValue, recoveryLines, type RecoverySettings } from '../src/codec/recovery-settings';

/** What -R writes: see src/codec/recovery-settings.ts. */
export type RecoveryConfigOptions = RecoverySettings;
export { configQuote, conninfoValue, recoveryLines };

export function recoveryConfig(opts: RecoveryConfigOptions): Transform {
  if (opts.slot !== undefined && !/^[a-z0-9_]{1,63}$/.test(opts.slot)) {
    throw new UsageError(`invalid replication slot name "${opts.slot}"`);
  }
  const extra = Buffer.from(recoveryLines(opts));
  /** The rewritten postgresql.auto.conf: owner-only once it holds a connection string. */
  const autoConf = (entry: EntryEvent): EntryEvent =>
    opts.primaryConninfo === undefined ? entry : { ...entry, mode: 0o600, secret: true };
  let inBase = false;
  let held: { entry: EntryEvent; chunks: Buffer[]; bytes: number } | null = null;
  let sawAutoConf = false;
  let sawSignal = false;

  const emitFile = (t: Transform, entry: EntryEvent, body: Buffer) => {
    t.push({ ...entry, size: body.length } satisfies EntryEvent);
    if (body.length) t.push({ type: 'data', offset: 0, chunk: body } satisfies BackupEvent);
    t.push({ type: 'entry-end' } satisfies BackupEvent);
  };

  return new Transform({
    objectMode: true,
    highWaterMark: 16,
    transform(ev: BackupEvent, _enc, cb: TransformCallback) {
      if (ev.type === 'archive') inBase = ev.kind === 'base';
      if (held) {
        if (ev.type === 'data') {
          // Held in memory to be rewritten: capped, whatever the archive claims.
          held.bytes += ev.chunk.length;
          if (held.bytes > LIMITS.autoConf.maxBytes) {
            return cb(new IoError(`postgresql.auto.conf in the backup is larger than ${LIMITS.autoConf.maxBytes} bytes: refusing to rewrite it for -R`));
          }
          held.chunks.push(ev.chunk);
        } else if (ev.type === 'entry-end') {
          let body = Buffer.concat(held.chunks);
          if (body.length && body[body.length - 1] !== 0x0a) body = Buffer.concat([body, Buffer.from('\n')]);
          emitFile(this, autoConf(held.entry), Buffer.concat([body, extra]));
          held = null;
        }
        return cb();
      }
      if (inBase && ev.type === 'entry' && ev.kind === 'file') {
        if (ev.path === 'postgresql.auto.conf') {
          sawAutoConf = true;
          held = { entry: ev, chunks: [], bytes: 0 };
          return cb();
        }
        if (ev.path === 'standby.signal') sawSignal = true;
      }
      if (inBase && ev.type === 'archive-end') {
        const now = new Date();
        if (!sawAutoConf) emitFile(this, autoConf({ type: 'entry', path: 'postgresql.auto.conf', kind: 'file', size: 0, mode: 0o600, mtime: now }), extra);
        if (!sawSignal) emitFile(this, { type: 'entry', path: 'standby.signal', kind: 'file', size: 0, mode: 0o600, mtime: now }, Buffer.alloc(0));
        inBase = false;
      }
      cb(null, ev);
    },
  });
}
