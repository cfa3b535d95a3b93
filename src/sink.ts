/**
 * The sink contract: what every destination of a backup implements —
 * directory, refresh, tar files, stdout, tee, and S3 next. A new sink is one
 * file implementing it.
 *
 *   ready()      opens lazily and at most once: checks and creates the target
 *                (refusing a bad one untouched) before the server is
 *                contacted. Idempotent; _construct awaits it too, so a sink
 *                nobody readied opens on first use.
 *   _write(ev)   takes the member stream (src/events.ts) in object mode.
 *   _final       commits: everything durable (fsync unless told not to),
 *                the manifest last, so that a backup that looks whole is
 *                whole. Refuses a stream that ended without `end`.
 *   _destroy     aborts: waits for its own writers, frees native contexts
 *                (compressors) explicitly, and removes what it made — unless
 *                it already committed. Closes only once all that is done.
 *
 * The manifest may arrive as several `manifest` events in a row (pieces, in
 * order, see src/events.ts); a sink must not assume one.
 */
import type { Writable } from 'node:stream';

/** Where a live source should write WAL it streams beside the backup. */
export type WalPlace =
  /** Straight into this directory (a plain target's pg_wal/), where it stays. */
  | { walDir: string }
  /** Spooled under this directory (inside a tar target) and read back into the pg_wal archive. */
  | { walSpool: string };

export interface BackupSink extends Writable {
  /** Checks and creates the target; rejects (and cleans up) if it cannot. */
  ready(): Promise<void>;
  /** Where streamed WAL should go for this sink; null: the source chooses (a spool in a temporary directory). */
  walPlace(): WalPlace | null;
}

/** True for a Writable that implements the sink contract (tee uses it to ready its sinks). */
export function isBackupSink(w: Writable): w is BackupSink {
  const s = w as Partial<BackupSink>;
  return typeof s.ready === 'function' && typeof s.walPlace === 'function';
}
