/**
 * CREATE_REPLICATION_SLOT for a slot that outlives the session (the standby
 * command's `--create-slot`, as pg_basebackup -C): the same two grammars as
 * the temporary slot (replication-commands.ts), without TEMPORARY.
 */
import { validateSlotName } from './replication-commands';
import { hasOptionListGrammar } from '../server-version';

export function createPermanentSlotCommand(name: string, serverVersion: number): string {
  validateSlotName(name);
  return hasOptionListGrammar(serverVersion)
    ? `CREATE_REPLICATION_SLOT "${name}" PHYSICAL ( RESERVE_WAL )`
    : `CREATE_REPLICATION_SLOT "${name}" PHYSICAL RESERVE_WAL`;
}

/** SQLSTATE duplicate_object: the slot exists already (a resumed standby run made it). */
export const SLOT_EXISTS = '42710';
