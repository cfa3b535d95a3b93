/**
 * observer: the skeleton every watching stage shares (manifest-build,
 * manifest-verify, page-checksum-verify, wal-verify, chunk-map-build,
 * control-identity-verify, require-complete).
 * It follows the member stream (src/events.ts), knows which archive and
 * entry it is in, and passes every event on unchanged and in order; a
 * subclass only says what to do at each step.
 *
 * Hooks (all optional), called in stream order:
 *   onStart(start)      onArchive(archive)     onArchiveEnd(archive)
 *   onEntry(entry)      onData(data)           onEntryEnd(entry)
 *   onManifest(piece)   onEnd(end)             onOther(progress | warning)
 * onEntryEnd comes exactly once per entry: at its entry-end, or, when a
 * stream leaves that out, before the next entry, archive or archive-end,
 * or `end`. While a hook runs, `this.archive` / `this.entry` are the current
 * ones (null outside), `this.startEvent` the stream's start.
 *
 * A hook returns nothing to pass the event on; HOLD to keep it back (the
 * subclass pushes it, or not, later — e.g. a manifest piece held until it is
 * checked); a Promise of either to pass it once the promise settles
 * (page-checksum-verify re-reading a page). A hook that throws, or whose
 * promise rejects, fails the stream with that error. Extra events a hook
 * pushes go out before the event it was called for.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { ArchiveEvent, BackupEvent, DataEvent, EndEvent, EntryEvent, ManifestEvent, ProgressEvent, StartEvent, WarningEvent } from '../src/events';

export const HOLD = Symbol('hold');
export type Verdict = void | typeof HOLD;
type Hooked = Verdict | Promise<Verdict>;

export abstract class Observer extends Transform {
  protected startEvent: StartEvent | null = null;
  protected archive: ArchiveEvent | null = null;
  protected entry: EntryEvent | null = null;

  constructor() {
    super({ objectMode: true, highWaterMark: 16 });
  }

  protected onStart?(ev: StartEvent): Hooked;
  protected onArchive?(ev: ArchiveEvent): Hooked;
  protected onArchiveEnd?(archive: ArchiveEvent | null): Hooked;
  protected onEntry?(ev: EntryEvent): Hooked;
  protected onData?(ev: DataEvent): Hooked;
  protected onEntryEnd?(entry: EntryEvent): void;
  protected onManifest?(ev: ManifestEvent): Hooked;
  protected onEnd?(ev: EndEvent): Hooked;
  protected onOther?(ev: ProgressEvent | WarningEvent): Hooked;

  override _transform(ev: BackupEvent, _enc: BufferEncoding, cb: TransformCallback): void {
    let verdict: Hooked;
    try {
      verdict = this.dispatch(ev);
    } catch (err) {
      return cb(err as Error);
    }
    if (verdict instanceof Promise) {
      verdict.then(
        (v) => {
          if (!this.destroyed) cb(null, v === HOLD ? undefined : ev);
        },
        (err) => cb(err as Error),
      );
    } else {
      cb(null, verdict === HOLD ? undefined : ev);
    }
  }

  private dispatch(ev: BackupEvent): Hooked {
    switch (ev.type) {
      case 'data':
        return this.onData?.(ev);
      case 'entry':
        this.closeEntry();
        this.entry = ev;
        return this.onEntry?.(ev);
      case 'entry-end':
        this.closeEntry();
        return;
      case 'archive':
        this.closeEntry();
        this.archive = ev;
        return this.onArchive?.(ev);
      case 'archive-end': {
        this.closeEntry();
        const a = this.archive;
        this.archive = null;
        return this.onArchiveEnd?.(a);
      }
      case 'start':
        this.startEvent = ev;
        return this.onStart?.(ev);
      case 'manifest':
        return this.onManifest?.(ev);
      case 'end':
        this.closeEntry();
        return this.onEnd?.(ev);
      default:
        return this.onOther?.(ev);
    }
  }

  private closeEntry(): void {
    const e = this.entry;
    if (!e) return;
    this.entry = null;
    this.onEntryEnd?.(e);
  }
}
