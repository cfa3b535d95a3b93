/**
 * UPLOAD_MANIFEST (PostgreSQL 17+): hands the server the manifest of a prior
 * backup, so that the next BASE_BACKUP on the same connection can be
 * INCREMENTAL (PROTOCOL.md §4).
 *
 *   UPLOAD_MANIFEST → CopyInResponse → CopyData… CopyDone → CommandComplete
 *
 * incrementalAvailable says whether asking makes sense at all: server 17+
 * with summarize_wal on. Whether the WAL summaries reach back to the prior
 * backup's start only BASE_BACKUP itself can tell (it fails before sending
 * anything if not).
 *
 * Errors: the server's (ServerError: a manifest of another system, not
 * version 2, unparsable).
 */
import type { ReplicationConnection } from './replication-connection';
import { ProtocolError } from '../errors';
import { hasIncrementalBackup } from '../codec/server-version';

/** CopyData messages of at most this many bytes. */
const PIECE = 64 * 1024;

export async function incrementalAvailable(conn: ReplicationConnection, serverVersion: number): Promise<boolean> {
  if (!hasIncrementalBackup(serverVersion)) return false;
  return (await conn.show('summarize_wal')) === 'on';
}

export async function uploadManifest(conn: ReplicationConnection, manifest: Buffer): Promise<void> {
  let sent = false;
  await conn.run('UPLOAD_MANIFEST', {
    copyStart: (kind) => {
      if (kind !== 'in') throw new ProtocolError(`UPLOAD_MANIFEST answered with a copy-${kind} response`);
      for (let off = 0; off < manifest.length; off += PIECE) conn.sendCopyData(manifest.subarray(off, off + PIECE));
      conn.sendCopyDone();
      sent = true;
    },
  });
  if (!sent) throw new ProtocolError('UPLOAD_MANIFEST completed without asking for the manifest');
}
