/**
 * Where a plain backup puts each tablespace (pure): a location the target
 * already uses for that OID (refresh), else the NEW of a `-T OLD=NEW`, else
 * the server's location. The chunk map records the result in its header
 * (`tablespaces`), and a later refresh follows a `pg_tblspc/<oid>` link only
 * to the location recorded there (src/refresh/tablespace-links.ts).
 *
 * Only absolute locations are returned: the sinks refuse the others.
 */
import * as path from 'node:path';
import type { StartEvent } from '../../events';

export function tablespaceLocations(
  tablespaces: StartEvent['tablespaces'],
  mapping: Record<string, string> = {},
  existing: ReadonlyMap<string, string> = new Map(),
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const ts of tablespaces) {
    if (ts.oid === null) continue;
    const to = existing.get(ts.oid) ?? mapping[ts.location.replace(/\/+$/, '')] ?? ts.location;
    if (path.isAbsolute(to)) out[ts.oid] = path.resolve(to);
  }
  return out;
}
