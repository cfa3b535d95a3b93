/**
 * The last steps of a refresh (sinks/refresh-directory.ts), in the order that
 * keeps the directory honest at every instant:
 *
 *   removeUnseen   files, links and directories the new backup does not have
 *   (fsync what was written and the directories whose entries changed)
 *   renameDurably  pg_control, then the chunk map, then backup_manifest
 *                  (written to temporary files as they came), each fsynced
 *                  and renamed into place (src/io/durable.ts); the caller then removes the
 *                  refresh marker, which is what makes it a backup again
 *
 * Errors: IoError naming the path.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ioError } from '../src/errors';
import { fsPath, showPath } from '../src/codec/path-bytes';
import { isOwnFile, walkTarget, type TargetEntry } from '../src/refresh/walk-target';

export interface RemovedCounts {
  files: number;
  directories: number;
  links: number;
}

/**
 * Removes what `seen` does not name, in `dir` and in the tablespace locations
 * `tablespaces` names (only those: see walkTarget). Entries are listed first,
 * then removed: removing a dropped tablespace's link must not hide its files
 * from the walk. Every directory that lost an entry is added to `dirty`.
 */
export async function removeUnseen(dir: string, tablespaces: ReadonlyMap<string, string>, seen: Set<string>, dirty: Set<string>): Promise<RemovedCounts> {
  const entries: TargetEntry[] = [];
  // Tablespace entries carry their real location, not a path through the link.
  for await (const e of walkTarget(dir, tablespaces)) entries.push(e);
  const counts: RemovedCounts = { files: 0, directories: 0, links: 0 };
  const gone: string[] = [];
  for (const e of entries) {
    if (seen.has(e.key) || isOwnFile(e.key)) continue;
    if (gone.some((g) => e.key.startsWith(`${g}/`))) {
      if (e.kind === 'file') counts.files++;
      continue;
    }
    try {
      if (e.kind === 'directory') {
        // rm does not follow the links it meets: it removes them.
        await fs.rm(fsPath(e.abs), { recursive: true, force: true });
        gone.push(e.key);
        counts.directories++;
      } else {
        await fs.unlink(fsPath(e.abs));
        if (e.kind === 'symlink') counts.links++;
        else counts.files++;
      }
    } catch (err) {
      throw ioError('could not remove', showPath(e.abs), err);
    }
    dirty.add(path.dirname(e.abs));
  }
  return counts;
}
