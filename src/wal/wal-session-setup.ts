/**
 * The commands the WAL receiver runs before START_REPLICATION: is this the
 * backup's system, which slot to stream from, the timeline's history file.
 * Split from wal-receiver.ts, which keeps the lifecycle and the stream; each
 * here is one round trip with its answer checked, as pg_basebackup does
 * (StartLogStreamer, receivelog.c).
 */
import type { ReplicationConnection } from '../net/replication-connection';
import { ProtocolError, ServerError } from '../errors';
import { checkHistoryRow, createTemporarySlotCommand, readSlotCommand, timelineHistoryCommand } from '../codec/protocol/replication-commands';
import type { WalSpool } from './wal-spool';
import { walStreamError } from './wal-stream-error';

/** IDENTIFY_SYSTEM: the same system as the base backup's connection; resolves with the server's timeline. */
export async function identifySystem(conn: ReplicationConnection, systemIdentifier: string): Promise<number> {
  const id = await conn.query('IDENTIFY_SYSTEM').catch((err) => {
    throw walStreamError(err);
  });
  const row = id.rows[0];
  if (!row || row[0] !== systemIdentifier) {
    throw new ProtocolError('system identifier does not match between base backup and WAL streaming connection');
  }
  return Number(row[1]);
}

/** READ_REPLICATION_SLOT (15+): an -S slot must exist and be physical, or the stream fails late and vaguely. */
export async function checkPhysicalSlot(conn: ReplicationConnection, name: string): Promise<void> {
  const r = await conn.query(readSlotCommand(name)).catch((err) => {
    throw walStreamError(err);
  });
  const type = r.rows[0]?.[0] ?? null;
  if (type === null) throw new ServerError(`replication slot "${name}" does not exist`, '42704', 'slot');
  if (type !== 'physical') throw new ServerError(`replication slot "${name}" is not a physical slot`, '55000', 'slot');
}

/** CREATE_REPLICATION_SLOT … TEMPORARY; resolves with its name (the server drops it when the session ends). */
export async function createTemporarySlot(conn: ReplicationConnection, serverVersion: number): Promise<string> {
  // As pg_basebackup names it: the backend pid is unique on the server while the session lives.
  const name = `pgbb_${conn.backendPid ?? `${process.pid}_${Date.now()}`}`;
  await conn.query(createTemporarySlotCommand(name, serverVersion)).catch((err) => {
    throw walStreamError(err);
  });
  return name;
}

/** TIMELINE_HISTORY for a timeline > 1: restore needs the history file beside the WAL. */
export async function fetchTimelineHistory(conn: ReplicationConnection, timeline: number, spool: WalSpool): Promise<void> {
  const h = await conn.query(timelineHistoryCommand(timeline));
  const row = h.rows[0];
  const file = checkHistoryRow(timeline, row?.[0] ?? null, row?.[1] ?? null);
  spool.writeHistory(file.name, file.content);
}
