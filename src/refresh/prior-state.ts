/**
 * What a refresh may assume about the backup it is about to rewrite: the
 * chunk map of what is on disk *now* (reads only; nothing is written).
 *
 * In:  a plain backup directory (PG_VERSION present).
 * Out: PriorState — an effective ChunkMap with one entry per regular file on
 *      disk (refresh-owned files and global/pg_control excluded: a refresh
 *      deletes pg_control first and rewrites it last), the backup's system
 *      identifier, tablespace links, the manifest when the backup is whole.
 *
 * A file's entry is taken from the stored map (`pg_wal/pgbb.chunkmap`) only
 * when all of these hold, else the file is read and digested again:
 *   - the map decodes (its SHA-256 trailer checks) and describes this backup
 *     (system identifier from pg_control, start LSN from backup_label — both
 *     checked when the directory is not mid-refresh) at the chunk size asked;
 *   - the file's size equals the map's;
 *   - the file's ctime is not later than the map file's (the map is written
 *     after every file it describes: a later ctime means someone — a server
 *     started on the backup, a tool, an interrupted refresh — wrote to it;
 *     ctime cannot be set back by utimes);
 *   - the refresh journal does not name it (an interrupted refresh was
 *     about to change it; see refresh-journal.ts).
 * A directory without any map (e.g. written by pg_basebackup), or with a
 * format 1 map (SHA-256 chunk hashes, an older pgbb's: its header is used,
 * its hashes are not), is digested in full, under a fresh hash key: one read
 * of the backup, and the refresh still writes only changes. Otherwise the
 * effective map keeps the stored map's key (files read again are digested
 * with it), so that its entries and the new backup's compare.
 *
 * Errors: PgbbError 'not_a_backup' for a directory that is not a plain
 * backup; IoError naming the file that could not be read.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ioError, PgbbError } from '../errors';
import { LIMITS, openRegular, readLimited } from '../io/read-limited';
import { parseControlFile } from '../codec/pg-control';
import { parseBackupLabel } from '../codec/backup-label';
import { CHUNK_MAP_FILE, checkChunkSize, decodeChunkMap, DEFAULT_CHUNK_SIZE, hashKeyOf, type ChunkMap, type ChunkMapFile } from '../codec/chunkmap/chunk-map';
import { ChunkHasher, ChunkListBuilder, newHashKey } from '../codec/chunkmap/chunk-hasher';
import { readJournal } from './refresh-journal';
import { CONTROL_FILE, isOwnFile, walkTarget } from './walk-target';
import { trustedTablespaces } from './tablespace-links';
import { versionOfMajor } from '../codec/server-version';

export interface PriorState {
  dir: string;
  map: ChunkMap;
  chunkSize: number;
  /** From pg_control (or the stored map when pg_control is gone); null when neither says. */
  systemIdentifier: string | null;
  /** PG_VERSION's major. */
  major: number;
  /** An earlier refresh did not finish. */
  incomplete: boolean;
  /** backup_manifest, when the directory is a whole backup. */
  manifest: Buffer | null;
  /** The pg_tblspc/<oid> links a refresh may follow (src/refresh/tablespace-links.ts): OID → location. */
  tablespaces: Map<string, string>;
  /** The chunk map recorded those locations (a pgbb backup): a tablespace the server dropped is emptied there, not only unlinked. */
  tablespacesRecorded: boolean;
  /** Every file's entry came from the stored map and the manifest is there: the directory is exactly the backup its manifest describes. */
  pristine: boolean;
  files: number;
  /** Files read and digested again, and their bytes. */
  reread: number;
  rereadBytes: number;
  /** Why the stored map was not used at all, when it was not. */
  mapProblem: string | null;
}

export interface PriorStateOptions {
  /** Default: the stored map's, else 1 MiB. */
  chunkSize?: number;
}

/** Reads a file once and digests it chunk by chunk, with the map's hash key (hex). */
export async function digestFile(abs: string, key: string, size: number, chunkSize: number, hashKey: string): Promise<ChunkMapFile> {
  const list = new ChunkListBuilder(key, chunkSize, size);
  const hasher = new ChunkHasher(hashKeyOf(hashKey), chunkSize);
  const buf = Buffer.allocUnsafe(chunkSize);
  let fh: fs.FileHandle | undefined;
  try {
    fh = await openRegular(abs, 'file'); // the walk saw a regular file: never follow what took its place
    for (let off = 0; off < size; ) {
      const want = Math.min(chunkSize, size - off);
      const { bytesRead } = await fh.read(buf, 0, want, off);
      if (bytesRead !== want) throw new PgbbError('io', `file "${abs}" changed while being read (short read at offset ${off})`);
      hasher.update(buf.subarray(0, want));
      list.push(hasher.digest());
      off += want;
    }
  } catch (err) {
    if (err instanceof PgbbError) throw err;
    throw ioError('could not read', abs, err);
  } finally {
    await fh?.close();
  }
  return list.finish(size);
}

export async function loadPriorState(dir: string, opts: PriorStateOptions = {}): Promise<PriorState> {
  const abs = path.resolve(dir);
  // The backup's small files: capped, not following a link, not blocking on a FIFO.
  const version = await readLimited(path.join(abs, 'PG_VERSION'), LIMITS.pgVersion);
  if (!version) throw new PgbbError('not_a_backup', `"${abs}" is not a plain backup (no PG_VERSION)`);
  const major = parseInt(version.toString('utf8'), 10);
  const journal = await readJournal(abs);

  let stored: ChunkMap | null = null;
  let mapCtime = 0n;
  let mapProblem: string | null = null;
  const mapFile = path.join(abs, CHUNK_MAP_FILE);
  const mapBuf = await readLimited(mapFile, LIMITS.chunkMap);
  if (!mapBuf) mapProblem = `no ${CHUNK_MAP_FILE}`;
  else {
    try {
      stored = decodeChunkMap(mapBuf, mapFile);
      mapCtime = (await fs.stat(mapFile, { bigint: true })).ctimeNs;
    } catch (err) {
      mapProblem = (err as Error).message;
    }
  }
  const chunkSize = checkChunkSize(opts.chunkSize ?? stored?.chunkSize ?? DEFAULT_CHUNK_SIZE);

  const controlBuf = await readLimited(path.join(abs, CONTROL_FILE), LIMITS.pgControl);
  const control = controlBuf ? parseControlFile(controlBuf, path.join(abs, CONTROL_FILE)) : null;
  const labelBuf = journal.present ? null : await readLimited(path.join(abs, 'backup_label'), LIMITS.backupLabel);
  const label = labelBuf ? parseBackupLabel(labelBuf.toString('utf8'), path.join(abs, 'backup_label')) : null;
  if (stored && !mapProblem) {
    if (stored.chunkSize !== chunkSize) mapProblem = `the stored map has chunk size ${stored.chunkSize}, ${chunkSize} was asked for`;
    else if (control && control.systemIdentifier !== stored.header.systemIdentifier) mapProblem = 'the stored map is of another system';
    else if (stored.hashAlgorithm === 'sha256') mapProblem = 'the stored map has SHA-256 chunk hashes (an older pgbb\'s format 1): every file is read again';
    else if (label && label.startLsn !== stored.header.startLsn) mapProblem = `the stored map is of the backup started at ${stored.header.startLsn}, backup_label says ${label.startLsn}`;
  }
  const usable = mapProblem === null ? stored : null;
  // Links are checked before any file is read through them; a map of another system records nothing of this backup.
  const ownMap = stored && !(control && control.systemIdentifier !== stored.header.systemIdentifier) ? stored : null;
  const tablespaces = await trustedTablespaces(abs, { recorded: ownMap?.header.tablespaces ?? null, journaled: journal.tablespaces, major });

  const header = stored?.header ?? { systemIdentifier: control?.systemIdentifier ?? '0', timeline: label?.timeline ?? 0, startLsn: label?.startLsn ?? '0/0', serverVersion: versionOfMajor(major) };
  const hashKey = stored && stored.hashAlgorithm !== 'sha256' ? header.hashKey! : newHashKey();
  const map: ChunkMap = { chunkSize, header: { ...header, hashKey }, files: new Map() };
  let files = 0;
  let reread = 0;
  let rereadBytes = 0;
  for await (const e of walkTarget(abs, tablespaces)) {
    if (e.kind !== 'file' || isOwnFile(e.key) || e.key === CONTROL_FILE) continue;
    files++;
    const entry = usable?.files.get(e.key);
    if (entry && entry.size === e.size && e.ctimeNs <= mapCtime && !journal.keys.has(e.key)) {
      map.files.set(e.key, entry);
      continue;
    }
    map.files.set(e.key, await digestFile(e.abs, e.key, e.size, chunkSize, hashKey));
    reread++;
    rereadBytes += e.size;
  }
  const manifest = journal.present ? null : await readLimited(path.join(abs, 'backup_manifest'), LIMITS.manifest);
  return {
    dir: abs,
    map,
    chunkSize,
    systemIdentifier: control?.systemIdentifier ?? stored?.header.systemIdentifier ?? null,
    major,
    incomplete: journal.present,
    manifest,
    tablespaces,
    tablespacesRecorded: Boolean(ownMap?.header.tablespaces),
    pristine: !journal.present && usable !== null && reread === 0 && manifest !== null && control !== null,
    files,
    reread,
    rereadBytes,
    mapProblem,
  };
}
