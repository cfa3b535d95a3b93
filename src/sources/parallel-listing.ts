/**
 * Lists a live cluster's data directory and tablespaces over SQL
 * (`pg_ls_dir`, `pg_stat_file`, `pg_tablespace`), with BASE_BACKUP's
 * exclusions (parallel-exclusions.ts): what the parallel source fetches.
 *
 * One query per directory level (every directory of the level at once), so
 * the round trips grow with the tree's depth, not its size. Entries that
 * vanish between listing and stat (missing_ok) are left out, as BASE_BACKUP
 * skips files that vanish.
 *
 * Out: one ListedArchive per tablespace (paths relative to its root) and the
 * data directory last (with `pg_tblspc/<oid>` links to the locations).
 */
import type { SqlSession } from '../net/sql-session';
import { sqlLiteral } from '../net/sql-session';
import { ProtocolError } from '../errors';
import { entryRule, isRelationDir, keepRelationFile, unloggedRelations, walSubdirs } from './parallel-exclusions';

export interface ListedFile {
  /** Relative to the archive's root. */
  path: string;
  /** Relative to the data directory: what pg_read_binary_file is given. */
  serverPath: string;
  size: number;
  mtime: Date;
}

export interface ListedArchive {
  /** Tablespace OID, or null for the data directory. */
  oid: string | null;
  location: string;
  dirs: { path: string; mtime: Date }[];
  files: ListedFile[];
  links: { path: string; target: string }[];
}

export async function listCluster(s: SqlSession, serverVersion: number): Promise<ListedArchive[]> {
  const spaces = await s.rows(`SELECT oid::text, pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid`);
  const out: ListedArchive[] = [];
  for (const [oid, location] of spaces) {
    if (!oid || !location) continue;
    const a = await listTree(s, `pg_tblspc/${oid}`, serverVersion, true);
    out.push({ oid, location, ...a, links: [] });
  }
  const base = await listTree(s, '.', serverVersion, false);
  for (const w of walSubdirs(serverVersion)) base.dirs.push({ path: w, mtime: new Date() });
  const links = out.map((t) => ({ path: `pg_tblspc/${t.oid}`, target: t.location }));
  out.push({ oid: null, location: '', ...base, links });
  return out;
}

async function listTree(s: SqlSession, root: string, serverVersion: number, inTablespace: boolean): Promise<Pick<ListedArchive, 'dirs' | 'files'>> {
  const dirs: ListedArchive['dirs'] = [];
  const files: ListedFile[] = [];
  const rel = (serverPath: string) => (root === '.' ? serverPath : serverPath.slice(root.length + 1));
  let level = [root];
  while (level.length > 0) {
    const rows = await s.rows(
      `SELECT d, n, st.size::text, st.isdir::text, extract(epoch FROM st.modification)::text ` +
        `FROM unnest(ARRAY[${level.map(sqlLiteral).join(',')}]::text[]) d, LATERAL pg_ls_dir(d, true, false) n, ` +
        `LATERAL pg_stat_file(CASE WHEN d = '.' THEN n ELSE d || '/' || n END, true) st WHERE st.size IS NOT NULL ORDER BY d, n`,
    );
    const byDir = new Map<string, { name: string; size: number; isDir: boolean; mtime: Date }[]>();
    for (const [d, n, size, isdir, epoch] of rows) {
      if (d === null || n === null || size === null || isdir === null || epoch === null) throw new ProtocolError('unexpected NULL in the directory listing');
      if (n.includes('/') || n === '.' || n === '..') throw new ProtocolError(`server listed an impossible file name "${n}"`);
      let list = byDir.get(d);
      if (!list) byDir.set(d, (list = []));
      list.push({ name: n, size: Number(size), isDir: isdir === 'true', mtime: new Date(Number(epoch) * 1000) });
    }
    const next: string[] = [];
    for (const [d, list] of byDir) {
      const dirRel = d === root ? '' : rel(d);
      const relationDir = isRelationDir(dirRel, inTablespace);
      const unlogged = relationDir ? unloggedRelations(list.map((e) => e.name)) : new Set<string>();
      for (const e of list) {
        const serverPath = d === '.' ? e.name : `${d}/${e.name}`;
        const path = rel(serverPath);
        const rule = inTablespace ? (e.name.startsWith('pgsql_tmp') ? 'skip' : 'keep') : entryRule(dirRel, e.name, serverVersion);
        if (rule === 'skip') continue;
        if (e.isDir) {
          dirs.push({ path, mtime: e.mtime });
          if (rule === 'keep') next.push(serverPath);
        } else if (!relationDir || keepRelationFile(e.name, unlogged)) {
          files.push({ path, serverPath, size: e.size, mtime: e.mtime });
        }
      }
    }
    level = next;
  }
  return { dirs, files };
}
