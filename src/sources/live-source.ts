/**
 * What a live source (one that takes a backup from a running server: the
 * replication source today, a parallel SQL source and a local-disk source
 * next) exposes so that WAL streaming (src/sources/streamed-wal-source.ts)
 * can wrap it without knowing how it takes the backup.
 *
 * A live source is built by a factory that receives these hooks, and is a
 * Readable of member events (src/events.ts) that
 *   1. connects, reads the server's settings, then awaits
 *      `beforeBackup(settings)` BEFORE it starts the backup (BASE_BACKUP,
 *      pg_backup_start(), …): the wrapper opens the WAL connection and checks
 *      the slot there, so that a missing slot or too few WAL senders fail
 *      before a checkpoint is forced or anything is written. A rejection fails
 *      the source; it starts nothing.
 *   2. calls `started(lsn, tli)` as soon as it knows the backup's start
 *      position (WAL is streamed from there while the files are sent),
 *   3. calls `ended(lsn, tli)` as soon as it knows the end position (streaming
 *      stops there, not later),
 *   4. emits start, its archives, its manifest as `manifest` piece events and
 *      `end` — the wrapper holds the manifest and `end`, appends the `pg_wal`
 *      archive after the source's archives, then emits the manifest and `end`.
 * Destroying the wrapper destroys the source; the source's destroy must give
 * up a pending connect at once and cancel the backup on the server.
 */
import type { Readable } from 'node:stream';
import type { ServerSettings } from '../net/server-settings';

export interface LiveSourceHooks {
  beforeBackup(settings: ServerSettings): Promise<void>;
  started(lsn: string, timeline: number): void;
  ended(lsn: string, timeline: number): void;
}

/** Builds a live source wired to the given hooks. */
export type LiveSourceFactory = (hooks: LiveSourceHooks) => Readable;

/** Hooks of a source that is not wrapped. */
export const NO_HOOKS: LiveSourceHooks = {
  beforeBackup: async () => {},
  started: () => {},
  ended: () => {},
};
