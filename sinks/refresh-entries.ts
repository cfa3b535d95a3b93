/**
 * The refresh sink's changes to one name in a tree it rewrites in place
 * (sinks/refresh-directory.ts), each through a SafeTree in existing mode, so
 * that whatever was planted at the name is removed, never followed:
 *
 *   removeLeftover   clear a name before creating a file there O_EXCL
 *   ensureDirectory  a real directory at the name (a link or file in its place is replaced)
 *   ensureSymlink    a link with this target at the name
 *   ensureMemberLink a symlink member of the backup: pg_tblspc/<oid> points
 *                    where this refresh keeps that tablespace; others must
 *                    stay inside the directory
 *
 * ensure* return the directory whose entries changed, or null.
 * Errors: IoError naming the path; TarFormatError for a link pgbb does not make.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { EntryEvent } from '../src/events';
import { TarFormatError } from '../src/errors';
import { fsPath } from '../src/codec/path-bytes';
import type { SafeTree } from '../src/io/safe-tree';
import { clearName } from '../src/io/durable';
import { checkSymlinkTarget } from './target-dir';

/**
 * Removes whatever is at `rel` (a leftover of an interrupted run, or
 * something planted there: a link is removed, never followed), so that the
 * name can be created O_EXCL. Returns what was there.
 */
export function removeLeftover(tree: SafeTree, rel: string): Promise<'none' | 'file' | 'other'> {
  return clearName(tree, rel);
}

export async function ensureDirectory(tree: SafeTree, rel: string, mode: number): Promise<string | null> {
  const abs = tree.abs(await tree.parentOf(rel));
  const st = await fs.lstat(fsPath(abs)).catch(() => null);
  if (st?.isDirectory()) return null;
  if (st) await removeLeftover(tree, rel);
  await tree.mkdir(rel, mode);
  return path.dirname(abs);
}

export async function ensureSymlink(tree: SafeTree, rel: string, target: string): Promise<string | null> {
  const abs = tree.abs(await tree.parentOf(rel));
  const st = await fs.lstat(fsPath(abs)).catch(() => null);
  if (st?.isSymbolicLink() && (await fs.readlink(fsPath(abs), { encoding: 'utf8' })) === target) return null;
  if (st) await removeLeftover(tree, rel);
  await tree.symlink(rel, target);
  return path.dirname(abs);
}

export async function ensureMemberLink(tree: SafeTree, rel: string, ev: EntryEvent, isBase: boolean, tablespaceDirs: ReadonlyMap<string, string>): Promise<string | null> {
  const ts = isBase && /^pg_tblspc\/(\d+)$/.exec(ev.path);
  let target = ev.linkTarget ?? '';
  if (ts) {
    const dir = tablespaceDirs.get(ts[1]);
    if (!dir) throw new TarFormatError(`symlink "${ev.path}" names tablespace ${ts[1]}, which the backup does not declare`);
    target = dir;
  } else checkSymlinkTarget(ev.path, target);
  return ensureSymlink(tree, rel, target);
}
