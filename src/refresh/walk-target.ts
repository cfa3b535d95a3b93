/**
 * What a plain backup directory holds, as chunk-map keys: the data
 * directory's tree (not following symlinks), then, for each trusted
 * `pg_tblspc/<oid>` symlink (see walkTarget), the tree at its target under
 * keys `pg_tblspc/<oid>/…` — the same keys chunk-diff gives the members of a
 * backup. Names are read as bytes and kept lossless (src/codec/path-bytes.ts).
 *
 * Also the refresh's own files, which belong to no backup stream and are
 * never deleted nor mapped as data.
 *
 * Errors: IoError naming the directory or file that could not be read.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fsPath, pathFromBytes } from '../codec/path-bytes';
import { walkTree, type TreeEntry, type TreeKind } from '../io/walk-tree';
import { CHUNK_MAP_FILE } from '../codec/chunkmap/chunk-map';
import { REFRESH_MARKER } from '../io/refresh-marker';
import { LOCK_FILE } from '../io/target-lock';
import { isVersionDir } from './tablespace-links';

export const CONTROL_FILE = 'global/pg_control';
/** pg_control of a refresh in progress: renamed into place only at commit, so PostgreSQL cannot start a half-refreshed directory. */
export const PENDING_CONTROL = 'global/pg_control.pgbb-new';

const OWN = new Set(['backup_manifest', 'backup_manifest.tmp', LOCK_FILE, REFRESH_MARKER, CHUNK_MAP_FILE, `${CHUNK_MAP_FILE}.tmp`, PENDING_CONTROL]);

/** Files a refresh manages itself (manifest, map, marker, lock, pending pg_control). */
export function isOwnFile(key: string): boolean {
  return OWN.has(key);
}

export type TargetKind = TreeKind;

export interface TargetEntry {
  key: string;
  /** Where it is on disk (inside a tablespace location for pg_tblspc/<oid>/… keys). */
  abs: string;
  kind: TargetKind;
  size: number;
  ctimeNs: bigint;
  /** For a pg_tblspc/<oid> symlink and everything under its target. */
  tablespace?: string;
}

/** The tree at `root` as entries under `prefix`; a `pg_tblspc/<oid>` link is marked when `stopAtTablespaces`. */
async function* tree(root: string, prefix: string, tablespace: string | undefined, stopAtTablespaces: boolean, versionDirsOnly = false): AsyncGenerator<TargetEntry> {
  // Inside a tablespace location, only its PG_<major>_<catversion> directories.
  const skip = versionDirsOnly ? (e: TreeEntry) => !e.rel.includes('/') && (e.kind !== 'directory' || !isVersionDir(e.rel)) : undefined;
  for await (const e of walkTree(root, { skip })) {
    const key = prefix ? `${prefix}/${e.rel}` : e.rel;
    const ts = stopAtTablespaces && e.kind === 'symlink' && /^pg_tblspc\/\d+$/.test(key) ? key.slice('pg_tblspc/'.length) : tablespace;
    yield { key, abs: e.abs, kind: e.kind, size: Number(e.stats!.size), ctimeNs: e.stats!.ctimeNs, tablespace: ts };
  }
}

/**
 * Every entry of the backup at `dir` (absolute). A `pg_tblspc/<oid>` link is
 * followed only when `tablespaces` (what src/refresh/tablespace-links.ts
 * trusted, and what this refresh linked itself) names that OID and the link
 * still points exactly there; inside a location, only its
 * PG_<major>_<catversion> directories are walked, so nothing a refresh
 * removes there lies outside them.
 */
export async function* walkTarget(dir: string, tablespaces: ReadonlyMap<string, string>): AsyncGenerator<TargetEntry> {
  const links: TargetEntry[] = [];
  for await (const e of tree(dir, '', undefined, true)) {
    if (e.tablespace && e.kind === 'symlink' && e.key === `pg_tblspc/${e.tablespace}`) links.push(e);
    yield e;
  }
  for (const link of links) {
    const location = tablespaces.get(link.tablespace!);
    if (!location) continue;
    const target = await fs.readlink(fsPath(link.abs), { encoding: 'buffer' }).catch(() => null);
    if (!target || path.resolve(path.dirname(link.abs), pathFromBytes(target)) !== location) continue;
    const st = await fs.lstat(fsPath(location)).catch(() => null);
    if (!st?.isDirectory()) continue;
    yield* tree(location, link.key, link.tablespace, false, true);
  }
}
