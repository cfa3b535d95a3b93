/**
 * What differs between the PostgreSQL majors pgbb talks to (14–18), in one
 * place: every branch on server_version_num in pgbb goes through here.
 *
 *   majorOf(150018) → 15              unsupportedServer(v) → message | null
 *   hasOptionListGrammar(v)  15+: BASE_BACKUP ( … ) and CREATE_REPLICATION_SLOT … ( RESERVE_WAL );
 *                            14: the keyword grammar, one CopyOut per tablespace and the manifest in its own
 *   hasReadReplicationSlot(v)  15+: READ_REPLICATION_SLOT
 *   hasServerCompression(v)    15+: BASE_BACKUP ( COMPRESSION … ), archives named <name>.tar.zst
 *   hasIncrementalBackup(v)    17+: UPLOAD_MANIFEST, BASE_BACKUP ( INCREMENTAL ), summarize_wal
 *   manifestVersionFor(v)      17+: backup_manifest version 2, with System-Identifier; before: 1
 *   strictRelationFileNames(v) 17+: the server checksums only files that parse as relation files
 *   hasRenamedBackupFunctions(v) 15+: pg_backup_start(label, fast) / pg_backup_stop(wait), exclusive mode gone;
 *                            14: pg_start_backup(label, fast, exclusive) / pg_stop_backup(exclusive, wait) (-j's SQL backup)
 *   skipsDsStore(v)            15+: BASE_BACKUP leaves .DS_Store files out
 *   hasWalSummaries(v)         17+: pg_wal/summaries beside pg_wal/archive_status
 *   namesAbsoluteBlocks(v)     17+: a checksum failure names the block by its number in the relation;
 *                            before: by its index in the segment file
 *
 * Facts from PostgreSQL's repl_gram.y, basebackup.c, backup_manifest.c and
 * pg_basebackup.c, xlogfuncs.c of each release. What is the same everywhere (WAL page
 * format as far as pgbb reads it, tar layout, pg_control's tail) is not here.
 * Things that differ only for people running servers (18's initdb turns data
 * checksums on by default) are the test harness's business, not pgbb's.
 */

export const OLDEST_MAJOR = 14;
export const NEWEST_MAJOR = 18;

export function majorOf(serverVersion: number): number {
  return Math.floor(serverVersion / 10000);
}

/** server_version_num of a major's first release, e.g. 17 → 170000. */
export function versionOfMajor(major: number): number {
  return major * 10000;
}

/**
 * Why pgbb will not back up this server, or null. Like pg_basebackup, a
 * server newer than pgbb knows is refused: its protocol may have changed.
 */
export function unsupportedServer(serverVersion: number): string | null {
  if (!Number.isInteger(serverVersion) || serverVersion <= 0) return `server version "${serverVersion}" is not a version number`;
  const major = majorOf(serverVersion);
  if (major < OLDEST_MAJOR) return `server version ${serverVersion} is not supported (PostgreSQL ${OLDEST_MAJOR} or later is required)`;
  if (major > NEWEST_MAJOR) {
    return `incompatible server version ${serverVersion}: pgbb supports PostgreSQL ${OLDEST_MAJOR} to ${NEWEST_MAJOR}`;
  }
  return null;
}

export function hasOptionListGrammar(serverVersion: number): boolean {
  return serverVersion >= 150000;
}

export function hasReadReplicationSlot(serverVersion: number): boolean {
  return serverVersion >= 150000;
}

export function hasServerCompression(serverVersion: number): boolean {
  return serverVersion >= 150000;
}

export function hasIncrementalBackup(serverVersion: number): boolean {
  return serverVersion >= 170000;
}

export function manifestVersionFor(serverVersion: number): 1 | 2 {
  return serverVersion >= 170000 ? 2 : 1;
}

export function strictRelationFileNames(serverVersion: number): boolean {
  return serverVersion >= 170000;
}

export function hasRenamedBackupFunctions(serverVersion: number): boolean {
  return serverVersion >= 150000;
}

export function skipsDsStore(serverVersion: number): boolean {
  return serverVersion >= 150000;
}

export function hasWalSummaries(serverVersion: number): boolean {
  return serverVersion >= 170000;
}

export function namesAbsoluteBlocks(serverVersion: number): boolean {
  return serverVersion >= 170000;
}
