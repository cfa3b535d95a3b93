/**
 * What the parallel source's leader reads about the server over SQL: the
 * ServerSettings a replication connection gets from IDENTIFY_SYSTEM and SHOW
 * (src/net/server-settings.ts), and the current timeline.
 */
import { PgbbError } from '../errors';
import { unsupportedServer } from '../codec/server-version';
import { parseShowSize, type ServerSettings } from './server-settings';
import type { SqlSession } from './sql-session';

export async function currentTimeline(s: SqlSession): Promise<number> {
  const [row] = await s.rows('SELECT timeline_id::text FROM pg_control_checkpoint()');
  return Number(row?.[0]);
}

/** The ServerSettings a replication connection reads (src/net/server-settings.ts), over SQL. */
export async function readSqlSettings(s: SqlSession): Promise<ServerSettings> {
  const [row] = await s.rows(
    `SELECT current_setting('server_version_num'), (SELECT system_identifier::text FROM pg_control_system()), ` +
      `(SELECT timeline_id::text FROM pg_control_checkpoint()), pg_current_wal_lsn()::text, current_setting('wal_segment_size'), ` +
      `current_setting('block_size'), current_setting('segment_size'), current_setting('data_checksums'), current_setting('data_directory_mode')`,
  );
  const [version, sysid, tli, lsn, walSeg, block, seg, checksums, dirMode] = (row ?? []).map((v) => v ?? '');
  const serverVersion = Number(version);
  const unsupported = unsupportedServer(serverVersion);
  if (unsupported) throw new PgbbError('unsupported', unsupported);
  const blockSize = parseShowSize(block);
  return {
    serverVersion,
    systemIdentifier: sysid,
    timeline: Number(tli),
    xlogpos: lsn,
    walSegmentSize: parseShowSize(walSeg),
    blockSize,
    segmentBlocks: parseShowSize(seg) / blockSize,
    dataChecksums: checksums === 'on',
    groupReadable: (parseInt(dirMode, 8) & 0o750) === 0o750,
  };
}
