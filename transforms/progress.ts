/**
 * progress: an observer that turns the member stream into progress reports —
 * bytes done, the total when known, rate, ETA — for a bar (-P) or NDJSON
 * (--json). Every event passes through unchanged.
 *
 * In:  member events. Out: the same events, in order. Calls `onProgress` on
 *      the first event, then at most once per `intervalMs` (checked as events
 *      arrive: no timer), and once more when the stream ends (phase 'done').
 * Result: `result` is the last ProgressInfo, set after the stream ended.
 * Errors: an exception thrown by `onProgress` fails the stream.
 *
 * What counts as done (and why):
 *  - `total` is the server's estimate: `start.totalBytes` (the tablespace
 *    sizes the server sends when asked for PROGRESS, else null), updated by a
 *    `progress` event's total. The server counts tar bytes — headers and
 *    padding included — and not WAL, so WAL files (the streamed pg_wal
 *    archive, pg_wal/ files that `-X fetch` appends to base.tar) are counted
 *    apart, in `walBytes`, never in `done`: the total does not jump by the
 *    WAL at the end. Should `done` still pass the estimate, the total follows
 *    it (as pg_basebackup does) and never reads above 100%; the last report
 *    (phase 'done') has total = done.
 *  - `done` is the server's count when it sends one: the `progress` events
 *    (CopyData 'p', sent on PG 15+ with or without PROGRESS, at most once a
 *    second and at every archive's end) carry the uncompressed archive bytes
 *    done — the same unit as the estimate. Between two of them we add the
 *    `data` bytes seen since the last one, so the count moves smoothly and
 *    never goes backwards. A source that sends no `progress` events (PG 13/14,
 *    other sources) is counted by `data` bytes alone: file contents without
 *    the tar headers, a few per cent under the tar-byte estimate.
 *  - `rateBytesPerSec` is over a moving window (default 5 s) so that the ETA
 *    follows the current speed rather than the run's average (the final
 *    report, phase 'done', gives the average over the run); the clock and
 *    `elapsedSeconds` start at the first event (the `start` event, after the
 *    server's checkpoint), not at construction.
 *  - `phase` is 'wal' from the first WAL file on (a `wal` archive, or
 *    `pg_wal/` files in base.tar with -X fetch), 'done' at the end.
 */
import { Transform } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { BackupEvent } from '../src/events';
import { UsageError } from '../src/errors';
import type { ProgressInfo } from '../src/report/types';

// Defined beside the reporters' interface, which imports no transform.
export type { ProgressInfo };

export interface ProgressOptions {
  onProgress: (p: ProgressInfo) => void;
  /** Least time between two reports, ms; default 1000. */
  intervalMs?: number;
  /** Window for the rate, ms; default 5000. */
  windowMs?: number;
  /** Clock in ms, monotonic; default performance.now(). Injected by tests. */
  now?: () => number;
}

/** Rate samples are taken at most this often, so the window stays short. */
const SAMPLE_EVERY_MS = 100;

export class ProgressTransform extends Transform {
  private readonly onProgress: (p: ProgressInfo) => void;
  private readonly intervalMs: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  private began: number | null = null;
  private lastReport = -Infinity;
  private samples: { t: number; done: number }[] = [];
  private total: number | null = null;
  /** The server's last `progress` count, and the data bytes seen at that moment. */
  private serverDone: number | null = null;
  private dataAtServerDone = 0;
  private dataBytes = 0;
  private walBytes = 0;
  /** The file being read is WAL (counted in walBytes). */
  private inWal = false;
  private doneMax = 0;
  private phase: ProgressInfo['phase'] = 'backup';
  private archive = '';
  private archiveKind = '';
  private currentFile: string | undefined;
  private final: ProgressInfo | null = null;

  constructor(opts: ProgressOptions) {
    super({ objectMode: true, highWaterMark: 16 });
    if (typeof opts?.onProgress !== 'function') throw new UsageError('progress: onProgress must be a function');
    this.onProgress = opts.onProgress;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.windowMs = opts.windowMs ?? 5000;
    if (!(this.intervalMs >= 0) || !(this.windowMs > 0)) throw new UsageError('progress: intervalMs and windowMs must be positive');
    this.now = opts.now ?? (() => performance.now());
  }

  /** The last report, after the stream ended; null before. */
  get result(): ProgressInfo | null {
    return this.final;
  }

  override _transform(ev: BackupEvent, _enc: BufferEncoding, callback: (err?: Error | null, ev?: BackupEvent) => void): void {
    try {
      this.observe(ev);
      const t = this.now();
      this.sample(t);
      if (t - this.lastReport >= this.intervalMs) this.report(t);
    } catch (err) {
      return callback(err as Error);
    }
    callback(null, ev);
  }

  override _flush(callback: (err?: Error | null) => void): void {
    try {
      this.phase = 'done';
      const t = this.now();
      this.sample(t);
      this.final = this.report(t);
    } catch (err) {
      return callback(err as Error);
    }
    callback();
  }

  private observe(ev: BackupEvent): void {
    this.began ??= this.now();
    switch (ev.type) {
      case 'start':
        if (ev.totalBytes !== null) this.total = ev.totalBytes;
        return;
      case 'archive':
        this.archive = ev.name;
        this.archiveKind = ev.kind;
        if (ev.kind === 'wal' && this.phase === 'backup') this.phase = 'wal';
        return;
      case 'entry':
        if (ev.kind !== 'file') return;
        this.currentFile = this.archiveKind === 'tablespace' ? `pg_tblspc/${this.archive}/${ev.path}` : ev.path;
        this.inWal = this.archiveKind === 'wal' || (this.archiveKind === 'base' && ev.path.startsWith('pg_wal/'));
        if (this.phase === 'backup' && this.inWal) this.phase = 'wal';
        return;
      case 'data':
        if (this.inWal) this.walBytes += ev.chunk.length;
        else this.dataBytes += ev.chunk.length;
        return;
      case 'progress':
        this.serverDone = ev.done;
        this.dataAtServerDone = this.dataBytes;
        if (ev.total !== null) this.total = ev.total;
        return;
      case 'end':
        this.phase = 'done';
        return;
      default:
        return;
    }
  }

  private done(): number {
    const d = this.serverDone === null ? this.dataBytes : this.serverDone + (this.dataBytes - this.dataAtServerDone);
    this.doneMax = Math.max(this.doneMax, d);
    return this.doneMax;
  }

  private sample(t: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && t - last.t < SAMPLE_EVERY_MS) return;
    this.samples.push({ t, done: this.done() });
    // Keep one sample at or before the window's start, so the window is full.
    while (this.samples.length > 2 && t - this.samples[1].t >= this.windowMs) this.samples.shift();
  }

  private report(t: number): ProgressInfo {
    this.lastReport = t;
    const done = this.done();
    const total = this.phase === 'done' && this.total !== null ? done : this.total === null ? null : Math.max(this.total, done);
    const first = this.samples[0];
    const span = first ? t - first.t : 0;
    const elapsed = this.began === null ? 0 : (t - this.began) / 1000;
    // The last report gives the run's average rate; the others the window's.
    let rate = span > 0 ? ((done - first.done) * 1000) / span : 0;
    if (this.phase === 'done') rate = elapsed > 0 ? done / elapsed : 0;
    let eta: number | null = null;
    if (this.phase === 'done') eta = 0;
    else if (total !== null && rate > 0) eta = (total - done) / rate;
    const info: ProgressInfo = {
      done,
      total,
      rateBytesPerSec: rate,
      etaSeconds: eta,
      elapsedSeconds: elapsed,
      phase: this.phase,
      walBytes: this.walBytes,
    };
    if (this.currentFile !== undefined && this.phase !== 'done') info.currentFile = this.currentFile;
    this.onProgress(info);
    return info;
  }
}

export function progress(opts: ProgressOptions): ProgressTransform {
  return new ProgressTransform(opts);
}
