/**
 * Member names in the archives of an S3 incremental backup (pure codec).
 * Such an archive holds what chunk-diff passed on, which tar cannot say
 * directly (a file of which only some chunks follow), so every member's
 * path carries a prefix that says what it is:
 *
 *   w/<path>        a member as a full backup has it (directory, link, new file)
 *   p/<path>        empty: a file the parent holds, updated in place (its size
 *                   is the chunk map's, its mode and mtime this member's)
 *   c/<k>/<path>    chunk k of the p/ file just before it, whole
 *
 * Every member has a prefix, so no path in a data directory can be taken
 * for another: a name without one is refused.
 */
import { PgbbError } from '../errors';

export type DeltaMember = { kind: 'whole'; path: string } | { kind: 'in-place'; path: string } | { kind: 'chunk'; path: string; chunk: number };

export function wholeName(path: string): string {
  return `w/${path}`;
}

export function inPlaceName(path: string): string {
  return `p/${path}`;
}

export function chunkName(path: string, chunk: number): string {
  return `c/${chunk}/${path}`;
}

/** What member `name` of `where` is. */
export function parseDeltaName(name: string, where: string): DeltaMember {
  const rest = name.slice(2);
  if (rest !== '' && name.startsWith('w/')) return { kind: 'whole', path: rest };
  if (rest !== '' && name.startsWith('p/')) return { kind: 'in-place', path: rest };
  const m = /^c\/(\d{1,10})\/(.+)$/s.exec(name);
  if (m) return { kind: 'chunk', path: m[2], chunk: Number(m[1]) };
  throw new PgbbError('not_a_backup', `member "${name}" of ${where} is not one an incremental backup holds`);
}
