/**
 * pg_basebackup's own tar backups (`-Ft`, with `-z`/`--compress
 * [client-|server-]gzip|zstd`, `-X fetch|stream`, tablespaces) as a source:
 * they carry no pgbb descriptor, so what it holds is derived from what
 * PostgreSQL put in base.tar:
 *
 *   backup_label      start LSN, timeline, label
 *   tablespace_map    tablespace OIDs and locations (pg_basebackup -Ft asks
 *                     for the map, so base.tar has no pg_tblspc links);
 *                     else pg_tblspc/<oid> symlink members
 *   PG_VERSION        the major version
 *   global/pg_control system identifier, block and WAL segment sizes,
 *                     whether data checksums are on
 *
 * pg_control comes last among base.tar's data files, so base is read once
 * up to it before the backup is streamed (a second read of base.tar, the
 * price of a backup without a descriptor; WAL after pg_control is not read).
 * For a restore, the tablespaces then get pg_tblspc/<oid> links at the end
 * of base (mapLinks, also for pgbb's own -F tar archives), and restore drops the map
 * (transforms/drop-tablespace-map.ts) so that PostgreSQL keeps those links.
 *
 * Errors: not_a_backup naming the archive when base.tar lacks backup_label,
 * PG_VERSION or pg_control; a member over its size cap is refused.
 */
import type { BackupEvent } from '../events';
import { PgbbError } from '../errors';
import { LIMITS } from '../io/read-limited';
import { parseBackupLabel } from '../codec/backup-label';
import { parseControlFile } from '../codec/pg-control';
import { parseTablespaceMap } from '../codec/tablespace-map';
import { versionOfMajor } from '../codec/server-version';
import type { BackupDescriptor } from '../codec/backup-descriptor';
import { tarMembers } from './tar-members';

const WANTED: Record<string, number> = {
  backup_label: LIMITS.backupLabel.maxBytes,
  tablespace_map: LIMITS.tablespaceMap.maxBytes,
  PG_VERSION: LIMITS.pgVersion.maxBytes,
  'global/pg_control': LIMITS.pgControl.maxBytes,
};

/** Reads base archive `where` up to global/pg_control and derives the descriptor pgbb would have written. */
export async function deriveFromBase(base: AsyncIterable<Buffer>, where: string): Promise<BackupDescriptor> {
  const files = new Map<string, Buffer[]>();
  const links: { oid: string; location: string }[] = [];
  let current: string | null = null;
  const members = tarMembers(base, where);
  for await (const ev of members) {
    if (ev.type === 'entry') {
      current = ev.kind === 'file' && ev.path in WANTED ? ev.path : null;
      if (current && ev.size > WANTED[current]) throw new PgbbError('not_a_backup', `"${where}": ${current} is ${ev.size} bytes, larger than ${WANTED[current]}`);
      if (current) files.set(current, []);
      const link = ev.kind === 'symlink' ? /^pg_tblspc\/(\d+)\/?$/.exec(ev.path) : null;
      if (link && ev.linkTarget) links.push({ oid: link[1], location: ev.linkTarget });
    } else if (ev.type === 'data' && current) {
      files.get(current)!.push(ev.chunk);
    } else if (ev.type === 'entry-end' && current === 'global/pg_control') {
      break; // the last data file: what follows (WAL with -X fetch) is not needed here
    }
  }
  const need = (name: string): Buffer => {
    const f = files.get(name);
    if (!f) throw new PgbbError('not_a_backup', `"${where}" carries neither a pgbb backup descriptor nor ${name}: not a base backup`);
    return Buffer.concat(f);
  };
  const label = parseBackupLabel(need('backup_label').toString('utf8'), `${where}: backup_label`);
  const major = parseInt(need('PG_VERSION').toString('utf8'), 10);
  if (!Number.isSafeInteger(major) || major < 9) throw new PgbbError('not_a_backup', `"${where}": PG_VERSION does not hold a major version`);
  const control = parseControlFile(need('global/pg_control'), `${where}: global/pg_control`);
  const map = files.has('tablespace_map') ? parseTablespaceMap(need('tablespace_map').toString('utf8'), `${where}: tablespace_map`) : [];
  const linked = new Set(links.map((l) => l.oid));
  return {
    version: 1,
    serverVersion: versionOfMajor(major),
    systemIdentifier: control.systemIdentifier,
    timeline: label.timeline,
    startLsn: label.startLsn,
    label: label.label,
    walSegmentSize: control.walSegmentSize,
    blockSize: control.blockSize,
    segmentBlocks: control.segmentBlocks,
    dataChecksums: control.dataChecksums,
    tablespaces: [...links, ...map.filter((t) => !linked.has(t.oid))].sort((a, b) => Number(a.oid) - Number(b.oid)),
  };
}

/** pg_tblspc/<oid> links as members, for a base archive that has a tablespace_map instead (at base's end, once pg_tblspc/ exists). */
export function* mapLinks(links: { oid: string; location: string }[]): Generator<BackupEvent> {
  const mtime = new Date();
  for (const l of links) {
    yield { type: 'entry', path: `pg_tblspc/${l.oid}`, kind: 'symlink', size: 0, mode: 0o777, mtime, linkTarget: l.location };
    yield { type: 'entry-end' };
  }
}

/**
 * base.tar of `pg_basebackup -D - -Ft` (saved to a file) ends with the
 * backup_manifest member: its bytes become `manifest` events (fed to
 * `scanner` for the end LSN), as if the manifest were a file beside it.
 */
export async function* manifestMemberAsManifest(
  base: AsyncIterable<BackupEvent>,
  onPiece: (piece: Buffer) => void,
  where: string,
): AsyncGenerator<BackupEvent> {
  let state: 'members' | 'manifest' | 'after' = 'members';
  for await (const ev of base) {
    if (ev.type === 'entry') {
      if (state !== 'members') throw new PgbbError('not_a_backup', `"${where}" has member "${ev.path}" after backup_manifest`);
      if (ev.kind === 'file' && ev.path === 'backup_manifest') {
        if (ev.size > LIMITS.manifest.maxBytes) throw new PgbbError('not_a_backup', `"${where}": backup_manifest member holds ${ev.size} bytes, more than ${LIMITS.manifest.maxBytes}`);
        state = 'manifest';
        continue;
      }
    } else if (state === 'manifest') {
      if (ev.type === 'data') {
        onPiece(ev.chunk);
        yield { type: 'manifest', data: ev.chunk };
      } else if (ev.type === 'entry-end') state = 'after';
      continue;
    }
    yield ev;
  }
}
