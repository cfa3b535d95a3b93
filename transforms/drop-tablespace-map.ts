/**
 * drop-tablespace-map: leaves base's `tablespace_map` out of a restore.
 *
 * In:  member events. Out: the same, without base's `tablespace_map`
 *      member (its entry, data and entry-end).
 * Why: a restore makes pg_tblspc/<oid> links where -T put each tablespace
 * (from the map, for pg_basebackup -Ft backups: src/sources/pg-basebackup-tar.ts).
 * Left in place, the map would have PostgreSQL replace those links at its
 * first start with links to the locations the backup recorded. It runs after
 * the manifest check, which still sees the file the manifest lists.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { BackupEvent } from '../src/events';

export function dropTablespaceMap(): Transform {
  let inBase = false;
  let dropping = false;
  return new Transform({
    objectMode: true,
    highWaterMark: 16,
    transform(ev: BackupEvent, _enc, cb: TransformCallback) {
      if (ev.type === 'archive') inBase = ev.kind === 'base';
      if (ev.type === 'entry') dropping = inBase && ev.kind === 'file' && ev.path === 'tablespace_map';
      if (dropping) {
        if (ev.type === 'entry-end') dropping = false;
        return cb();
      }
      cb(null, ev);
    },
  });
}
