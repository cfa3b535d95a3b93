/**
 * The directory sink's symbolic link members (sinks/directory.ts): links are
 * made only where PostgreSQL has them. Base's `pg_tblspc/<oid>` points
 * wherever the sink put that tablespace (never where the archive says); a
 * `pg_wal` link (WAL relocated on the server, initdb -X) becomes a real
 * directory; any other link is refused, naming it.
 * Errors: TarFormatError.
 */
import type { EntryEvent } from '../src/events';
import { TarFormatError } from '../src/errors';
import { showPath } from '../src/codec/path-bytes';
import type { SafeTree } from '../src/io/safe-tree';

export async function placeLink(tree: SafeTree, ev: EntryEvent, isBase: boolean, tablespaceTrees: ReadonlyMap<string, SafeTree>, dirMode: number): Promise<void> {
  const ts = isBase && /^pg_tblspc\/(\d+)$/.exec(ev.path);
  if (ts) {
    const dir = tablespaceTrees.get(ts[1]);
    if (!dir) throw new TarFormatError(`symlink "${showPath(ev.path)}" names tablespace ${ts[1]}, which the backup does not declare`);
    return tree.symlink(ev.path, dir.root);
  }
  if (isBase && ev.path === 'pg_wal') return tree.mkdir('pg_wal', dirMode, true);
  throw new TarFormatError(
    `archive member "${showPath(ev.path)}" is a symbolic link (to "${showPath(ev.linkTarget ?? '')}"): ` +
      'a data directory holds links only at pg_tblspc/<oid>, refusing it',
  );
}
