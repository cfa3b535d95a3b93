/**
 * A physical replication slot that outlives the session, as pg_basebackup -C
 * and `pgbb standby --create-slot` make it (RESERVE_WAL: the primary keeps
 * WAL from now on), and dropping it again when the run that made it fails.
 *
 * Errors: ServerError from the server (other than "exists" for ensure), connection errors.
 */
import { ServerError } from '../errors';
import { createPermanentSlotCommand, SLOT_EXISTS } from '../codec/protocol/permanent-slot';
import { validateSlotName } from '../codec/protocol/replication-commands';
import type { ReplicationConnection } from './replication-connection';

/** Creates the slot; resolves true, or false when `reuse` and it exists already. */
export async function createPermanentSlot(conn: ReplicationConnection, name: string, serverVersion: number, reuse: boolean): Promise<boolean> {
  try {
    await conn.query(createPermanentSlotCommand(name, serverVersion));
    return true;
  } catch (err) {
    if (reuse && err instanceof ServerError && err.sqlstate === SLOT_EXISTS) return false;
    throw err;
  }
}

export async function dropSlot(conn: ReplicationConnection, name: string): Promise<void> {
  validateSlotName(name);
  await conn.query(`DROP_REPLICATION_SLOT "${name}"`);
}
