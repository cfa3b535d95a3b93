/**
 * require-complete: refuses to let a backup that lacks what a restore needs
 * reach the sink's commit (observer: every event passes through unchanged).
 *
 * In:  member events. Watched: base's `backup_label` and `global/pg_control`
 *      (files), and the `manifest` event.
 * Out: the same events; `end` is passed on only when base held both files
 *      and, with `manifest: true`, a manifest came. Without `end` the sink
 *      never commits and removes what it wrote: the directory is not left
 *      looking like a restored cluster.
 * Errors: IncompleteBackupError naming what is missing.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { BackupEvent } from '../src/events';
import { IncompleteBackupError } from '../src/errors';

export interface RequireCompleteOptions {
  /** Require a backup_manifest (default true; `restore --no-manifest` turns it off). */
  manifest?: boolean;
}

const REQUIRED = ['backup_label', 'global/pg_control'];

export function requireComplete(opts: RequireCompleteOptions = {}): Transform {
  const needManifest = opts.manifest ?? true;
  const seen = new Set<string>();
  let inBase = false;
  let sawManifest = false;
  return new Transform({
    objectMode: true,
    highWaterMark: 16,
    transform(ev: BackupEvent, _enc, cb: TransformCallback) {
      if (ev.type === 'archive') inBase = ev.kind === 'base';
      else if (ev.type === 'entry' && inBase && ev.kind === 'file' && REQUIRED.includes(ev.path)) seen.add(ev.path);
      else if (ev.type === 'manifest') sawManifest = true;
      else if (ev.type === 'end') {
        const missing = REQUIRED.filter((p) => !seen.has(p));
        if (missing.length) {
          return cb(new IncompleteBackupError(`the backup holds no ${missing.join(' and no ')}: it is not a complete base backup, refusing to restore it`));
        }
        if (needManifest && !sawManifest) {
          return cb(new IncompleteBackupError('the backup has no backup_manifest, so its files cannot be checked: pass --no-manifest to restore it unchecked'));
        }
      }
      cb(null, ev);
    },
  });
}
