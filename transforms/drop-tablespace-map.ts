/**
 * drop-tablespace-map: leaves base's `tablespace_map` out of a restore.
 *
 * In:  member events. Out: the same, without base's `tablespace_map`
 *      member (its entry, data and entry-end); when one was left out, the
 *      `manifest` events are the manifest without its entry, written again
 *      with its own checksum (src/codec/manifest-filter.ts), just before `end`.
 * Why: a restore makes pg_tblspc/<oid> links where -T put each tablespace
 * (from the map: src/sources/pg-basebackup-tar.ts). Left in place, the map
 * would have PostgreSQL replace those links at its first start with links
 * to the locations the backup recorded; and a manifest still listing it
 * would fail pg_verifybackup on the restored directory. It runs after the
 * manifest check, which still sees the file and manifest the backup has.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { BackupEvent } from '../src/events';
import { ManifestFilter } from '../src/codec/manifest-filter';

export function dropTablespaceMap(): Transform {
  let inBase = false;
  let dropping = false;
  let filter: ManifestFilter | null = null;
  /** No manifest (--no-manifest without one): nothing to write again. */
  let manifestSeen = false;
  return new Transform({
    objectMode: true,
    highWaterMark: 16,
    transform(ev: BackupEvent, _enc, cb: TransformCallback) {
      if (ev.type === 'archive') inBase = ev.kind === 'base';
      if (ev.type === 'entry') dropping = inBase && ev.kind === 'file' && ev.path === 'tablespace_map';
      if (dropping) {
        filter ??= new ManifestFilter((p) => p === 'tablespace_map');
        if (ev.type === 'entry-end') dropping = false;
        return cb();
      }
      if (!filter || (ev.type !== 'manifest' && ev.type !== 'end')) return cb(null, ev);
      try {
        if (ev.type === 'manifest') {
          manifestSeen = true;
          filter.write(ev.data);
          return cb();
        }
        if (manifestSeen) for (const data of filter.end()) this.push({ type: 'manifest', data } satisfies BackupEvent);
      } catch (err) {
        return cb(err as Error);
      }
      cb(null, ev);
    },
  });
}
