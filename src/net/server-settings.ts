/**
 * What a backup needs to know about the server before it starts: identity
 * (IDENTIFY_SYSTEM), version and the sizes that shape WAL and relation files.
 */
import type { ReplicationConnection } from './replication-connection';
import { PgbbError, ProtocolError } from '../errors';
import { unsupportedServer } from '../codec/server-version';

export interface ServerSettings {
  serverVersion: number;
  systemIdentifier: string;
  timeline: number;
  /** Current WAL insert position at IDENTIFY_SYSTEM. */
  xlogpos: string;
  walSegmentSize: number;
  blockSize: number;
  segmentBlocks: number;
  dataChecksums: boolean;
  /** data_directory_mode is 0750: the cluster is group-readable (initdb -g), and a backup of it is 0750/0640 throughout, as pg_basebackup writes it. */
  groupReadable: boolean;
}

const UNITS: Record<string, number> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** Parses a size as SHOW prints it: `16MB`, `1GB`, `8192`. */
export function parseShowSize(text: string): number {
  const m = /^(\d+)\s*(B|kB|MB|GB|TB)?$/.exec(text.trim());
  if (!m) throw new ProtocolError(`unexpected size "${text}" from server`);
  return Number(m[1]) * (m[2] ? UNITS[m[2]] : 1);
}

export async function readServerSettings(conn: ReplicationConnection): Promise<ServerSettings> {
  const serverVersion = Number(await conn.show('server_version_num'));
  const unsupported = unsupportedServer(serverVersion);
  if (unsupported !== null) throw new PgbbError('unsupported', unsupported);
  const id = await conn.query('IDENTIFY_SYSTEM');
  const row = id.rows[0];
  if (!row || row.length < 3) throw new ProtocolError('IDENTIFY_SYSTEM returned no row');
  const blockSize = parseShowSize(await conn.show('block_size'));
  return {
    serverVersion,
    systemIdentifier: row[0] ?? '',
    timeline: Number(row[1]),
    xlogpos: row[2] ?? '',
    walSegmentSize: parseShowSize(await conn.show('wal_segment_size')),
    blockSize,
    segmentBlocks: parseShowSize(await conn.show('segment_size')) / blockSize,
    dataChecksums: (await conn.show('data_checksums')) === 'on',
    // As pg_basebackup (RetrieveDataDirCreatePerm): group access when the group may read and search.
    groupReadable: (parseInt(await conn.show('data_directory_mode'), 8) & 0o750) === 0o750,
  };
}
