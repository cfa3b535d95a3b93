/**
 * Text of the replication commands the WAL receiver sends (repl_gram.y),
 * and what their results mean. Pure functions.
 *
 *   CREATE_REPLICATION_SLOT "name" TEMPORARY PHYSICAL ( RESERVE_WAL )   15+
 *   CREATE_REPLICATION_SLOT "name" TEMPORARY PHYSICAL RESERVE_WAL       13/14 (15+ still accept it)
 *   READ_REPLICATION_SLOT "name"                                        15+
 *   TIMELINE_HISTORY n
 *   START_REPLICATION [SLOT "name"] PHYSICAL X/X TIMELINE n
 *
 * Slot names are checked the way the server checks them
 * (ReplicationSlotValidateName: 1–63 of [a-z0-9_]), so a bad -S fails as a
 * usage error before anything is sent; quoting then cannot change them.
 * Errors: UsageError for a bad slot name, ProtocolError for a history file
 * name that does not match its timeline.
 */
import { ProtocolError, UsageError } from '../../errors';
import { formatLsn } from '../lsn';
import { hasOptionListGrammar } from '../server-version';

/** NAMEDATALEN - 1. */
const MAX_SLOT_NAME = 63;

export function validateSlotName(name: string): void {
  if (name.length === 0) throw new UsageError('replication slot name is empty');
  if (name.length > MAX_SLOT_NAME) throw new UsageError(`replication slot name "${name}" is too long (at most ${MAX_SLOT_NAME} characters)`);
  if (!/^[a-z0-9_]+$/.test(name)) {
    throw new UsageError(
      `replication slot name "${name}" contains invalid character (only lower case letters, numbers and the underscore are allowed)`,
    );
  }
}

export function createTemporarySlotCommand(name: string, serverVersion: number): string {
  validateSlotName(name);
  return hasOptionListGrammar(serverVersion)
    ? `CREATE_REPLICATION_SLOT "${name}" TEMPORARY PHYSICAL ( RESERVE_WAL )`
    : `CREATE_REPLICATION_SLOT "${name}" TEMPORARY PHYSICAL RESERVE_WAL`;
}

/** 15+ only: one row (slot_type, restart_lsn, restart_tli), all NULL when the slot does not exist. */
export function readSlotCommand(name: string): string {
  validateSlotName(name);
  return `READ_REPLICATION_SLOT "${name}"`;
}

export function timelineHistoryCommand(timeline: number): string {
  checkTimeline(timeline);
  return `TIMELINE_HISTORY ${timeline}`;
}

export function startReplicationCommand(start: bigint, timeline: number, slot?: string): string {
  checkTimeline(timeline);
  if (slot !== undefined) validateSlotName(slot);
  const slotPart = slot === undefined ? '' : `SLOT "${slot}" `;
  return `START_REPLICATION ${slotPart}PHYSICAL ${formatLsn(start)} TIMELINE ${timeline}`;
}

/** `00000002.history`: TLHistoryFileName. */
export function historyFileName(timeline: number): string {
  checkTimeline(timeline);
  return `${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
}

/** The server's TIMELINE_HISTORY row must name the file we asked for. */
export function checkHistoryRow(timeline: number, filename: string | null, content: string | null): { name: string; content: string } {
  const expected = historyFileName(timeline);
  if (filename !== expected || content === null) {
    throw new ProtocolError(`server reported unexpected history file name for timeline ${timeline}: ${filename ?? 'NULL'}`);
  }
  return { name: expected, content };
}

function checkTimeline(timeline: number): void {
  if (!Number.isInteger(timeline) || timeline < 1 || timeline > 0xffffffff) {
    throw new ProtocolError(`invalid timeline ${timeline}`);
  }
}
