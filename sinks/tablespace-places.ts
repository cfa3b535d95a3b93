/**
 * Where a directory sink writes each tablespace, decided before anything is
 * written there. A tablespace lives outside the data directory, so its
 * location is the one place where an archive could steer writes elsewhere:
 * a crafted descriptor naming /root/.ssh must not get files written there.
 *
 *   -T OLD=NEW maps the recorded location OLD to NEW;
 *   an unmapped tablespace goes to its recorded location only when the
 *   caller accepts recorded locations (`pgbb backup`: the server's own, as
 *   pg_basebackup -Fp does; `pgbb restore --tablespaces-at-recorded-locations`);
 *   otherwise the run is refused, listing the locations and both ways on.
 *
 * Always refused: a location that is not absolute, one inside the data
 * directory or inside another tablespace (or containing either), two
 * tablespaces at one place. Paths are compared after resolving the links in
 * the part that exists already (a location reached through a link into the
 * target is inside it). Non-empty and live locations are refused by
 * target-dir when the directories are prepared.
 *
 * Errors: TablespaceLocationError.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Tablespace } from '../src/events';
import { TablespaceLocationError } from '../src/errors';
import { showPath } from '../src/codec/path-bytes';

export interface TablespacePlace {
  oid: string;
  /** Where the backup says the tablespace was. */
  recorded: string;
  /** Where it is written (absolute). */
  dir: string;
  /** True when -T chose `dir`. */
  mapped: boolean;
}

export type UnmappedTablespaces = 'recorded' | 'refuse';

/** `p` with the links in its existing part resolved, the rest joined on. */
export async function canonical(p: string): Promise<string> {
  const rest: string[] = [];
  let head = path.resolve(p);
  for (;;) {
    const real = await fs.realpath(head).catch(() => null);
    if (real !== null) return path.join(real, ...rest);
    const up = path.dirname(head);
    if (up === head) return path.resolve(p);
    rest.unshift(path.basename(head));
    head = up;
  }
}

export function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
}

export async function placeTablespaces(
  tablespaces: readonly Tablespace[],
  target: string,
  mapping: Readonly<Record<string, string>>,
  unmapped: UnmappedTablespaces,
): Promise<TablespacePlace[]> {
  const places: TablespacePlace[] = [];
  const refused: TablespacePlace[] = [];
  for (const ts of tablespaces) {
    if (ts.oid === null) continue;
    if (!/^\d+$/.test(ts.oid)) throw new TablespaceLocationError(`the backup names a tablespace "${showPath(ts.oid)}", which is not an OID`);
    const recorded = ts.location.replace(/(.)\/+$/, '$1');
    const mapped = mapping[recorded];
    if (mapped === undefined && !path.isAbsolute(recorded)) {
      throw new TablespaceLocationError(`tablespace ${ts.oid}'s recorded location "${showPath(ts.location)}" is not an absolute path: map it with -T OLD=NEW`);
    }
    const place = { oid: ts.oid, recorded, dir: path.resolve(mapped ?? recorded), mapped: mapped !== undefined };
    if (!place.mapped && unmapped === 'refuse') refused.push(place);
    places.push(place);
  }
  if (refused.length) {
    const list = refused.map((p) => `"${showPath(p.recorded)}" (${p.oid})`).join(', ');
    throw new TablespaceLocationError(
      `the backup puts tablespaces outside the data directory, at ${list}: ` +
        'map each with -T OLD=NEW, or pass --tablespaces-at-recorded-locations to restore them there',
    );
  }
  const data = await canonical(target);
  const real = await Promise.all(places.map((p) => canonical(p.dir)));
  places.forEach((p, i) => {
    const at = real[i]!;
    if (within(at, data)) throw new TablespaceLocationError(`tablespace ${p.oid} would be written at "${showPath(p.dir)}", inside the data directory "${showPath(target)}"`);
    if (within(data, at)) throw new TablespaceLocationError(`the data directory "${showPath(target)}" lies inside tablespace ${p.oid}'s location "${showPath(p.dir)}"`);
    for (let j = 0; j < i; j++) {
      if (within(at, real[j]!) || within(real[j]!, at)) {
        throw new TablespaceLocationError(`tablespaces ${places[j]!.oid} ("${showPath(places[j]!.dir)}") and ${p.oid} ("${showPath(p.dir)}") would be written one inside the other`);
      }
    }
  });
  return places;
}
