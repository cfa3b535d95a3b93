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
import { ioError } from '../errors';
import { fsPath, pathFromBytes } from '../codec/path-bytes';
import { CHUNK_MAP_FILE } from '../codec/chunkmap/chunk-map';
import { REFRESH_MARKER } from './refresh-journal';
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

export type TargetKind = 'file' | 'directory' | 'symlink' | 'other';

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

async function lstat(abs: string) {
  try {
    return await fs.lstat(fsPath(abs), { bigint: true });
  } catch (err) {
    throw ioError('could not stat', abs, err);
  }
}

function kindOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): TargetKind {
  return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other';
}

async function* tree(root: string, prefix: string, tablespace: string | undefined, stopAtTablespaces: boolean, versionDirsOnly = false): AsyncGenerator<TargetEntry> {
  let names: Buffer[];
  try {
    names = await fs.readdir(fsPath(root), { encoding: 'buffer' });
  } catch (err) {
    throw ioError('could not read directory', root, err);
  }
  for (const raw of names.sort(Buffer.compare)) {
    const name = pathFromBytes(raw);
    const abs = path.join(root, name);
    const key = prefix ? `${prefix}/${name}` : name;
    const st = await lstat(abs);
    const kind = kindOf(st);
    if (versionDirsOnly && (kind !== 'directory' || !isVersionDir(name))) continue;
    const ts = stopAtTablespaces && kind === 'symlink' && /^pg_tblspc\/\d+$/.test(key) ? key.slice('pg_tblspc/'.length) : tablespace;
    yield { key, abs, kind, size: Number(st.size), ctimeNs: st.ctimeNs, tablespace: ts };
    if (kind === 'directory') yield* tree(abs, key, tablespace, stopAtTablespaces);
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
