/**
 * require-complete: notes whether a backup holds what a restore needs
 * (observer: every event passes through unchanged), for the sink to ask
 * before it commits.
 *
 * In:  member events. Watched: base's `backup_label` and `global/pg_control`
 *      (files), and the `manifest` event.
 * Out: the same events. `check()` throws unless base held both files and,
 *      with `manifest: true`, a manifest came. The directory sink calls it
 *      from `beforeCommit`, after every member was written (so an error of
 *      the sink's own, about a member, is the one reported), and removes
 *      what it wrote when it throws: the directory is not left looking like
 *      a restored cluster. (Failing at `end` here instead would race the
 *      sink, which may still be writing the members buffered before it.)
 * Errors: IncompleteBackupError naming what is missing.
 */
import type { EntryEvent } from '../src/events';
import { IncompleteBackupError } from '../src/errors';
import { Observer } from './observer';

export interface RequireCompleteOptions {
  /** Require a backup_manifest (default true; `restore --no-manifest` turns it off). */
  manifest?: boolean;
}

const REQUIRED = ['backup_label', 'global/pg_control'];

export class RequireComplete extends Observer {
  private readonly needManifest: boolean;
  private readonly seen = new Set<string>();
  private sawManifest = false;

  constructor(opts: RequireCompleteOptions = {}) {
    super();
    this.needManifest = opts.manifest ?? true;
  }

  protected override onEntry(ev: EntryEvent): void {
    if (this.archive?.kind === 'base' && ev.kind === 'file' && REQUIRED.includes(ev.path)) this.seen.add(ev.path);
  }

  protected override onManifest(): void {
    this.sawManifest = true;
  }

  /** Throws IncompleteBackupError unless everything required has passed. */
  check(): void {
    const missing = REQUIRED.filter((p) => !this.seen.has(p));
    if (missing.length) {
      throw new IncompleteBackupError(`the backup holds no ${missing.join(' and no ')}: it is not a complete base backup, refusing to restore it`);
    }
    if (this.needManifest && !this.sawManifest) {
      throw new IncompleteBackupError('the backup has no backup_manifest, so its files cannot be checked: pass --no-manifest to restore it unchecked');
    }
  }
}

export function requireComplete(opts?: RequireCompleteOptions): RequireComplete {
  return new RequireComplete(opts);
}
