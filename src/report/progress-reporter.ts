/**
 * Progress reporter (-P): for people watching.
 *
 * On a TTY: a cli-progress bar on one line, redrawn at most 10 times a
 * second — `████░░░░ 21.0 MB of 50.0 MB (42%) | 20.0 MB/s | ETA 1s` (no bar
 * nor percentage while the total is unknown). Warnings are printed above it
 * without tearing it.
 * Not on a TTY (a log file, a pipe): one plain line every `lineIntervalMs`
 * (5 s) and a last one at the end — `pgbb: 21.0 MB of 50.0 MB (42%), 20.0
 * MB/s, ETA 1s` — so a log gets a readable record of a long run.
 * Sizes use PostgreSQL's units (1 kB = 1024 bytes).
 * Before the first byte, while the server runs its start checkpoint (with
 * `-c spread` that can take minutes), it says so at once and how long it has
 * waited: redrawn every second on a TTY, a line every `lineIntervalMs`
 * otherwise. Other steps (pg_basebackup -v's lines) only with `verbose`.
 * close() stops the bar's redraw timer; the command calls it in a finally.
 */
import type { GenericBar, MultiBar, Options, Params } from 'cli-progress';
import type * as CliProgress from 'cli-progress';

/** Loaded with the first bar: its presets cost startup time to every command, -P or not. */
const cliProgress = (): typeof CliProgress => require('cli-progress') as typeof CliProgress;
import { performance } from 'node:perf_hooks';
import type { StartEvent } from '../events';
import type { BackupSummary, ProgressInfo, Reporter, StepInfo } from './types';

export interface ProgressReporterOptions {
  /** Draw a bar (the stream is a terminal) or write plain lines. */
  tty: boolean;
  /** Plain lines: least time between two, ms; default 5000. */
  lineIntervalMs?: number;
  /** Clock in ms (plain lines); default performance.now(). */
  now?: () => number;
  /** -v: print every step, not only the checkpoint wait. */
  verbose?: boolean;
}

export class ProgressReporter implements Reporter {
  private readonly tty: boolean;
  private readonly lineIntervalMs: number;
  private readonly now: () => number;
  private multi: MultiBar | null = null;
  private bar: GenericBar | null = null;
  private last: ProgressInfo | null = null;
  private lastLine = -Infinity;
  private closed = false;
  private readonly verbose: boolean;
  /** The checkpoint wait's ticker, and when the wait began. */
  private waiting: { timer: NodeJS.Timeout; since: number } | null = null;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    opts: ProgressReporterOptions,
  ) {
    this.tty = opts.tty;
    this.lineIntervalMs = opts.lineIntervalMs ?? 5000;
    this.now = opts.now ?? (() => performance.now());
    this.verbose = Boolean(opts.verbose);
  }

  start(_ev: StartEvent): void {
    this.stopWaiting();
    if (this.tty) this.openBar();
  }

  step(st: StepInfo): void {
    if (this.closed) return;
    if (st.code === 'checkpoint') {
      this.stream.write(`pgbb: ${st.message}\n`);
      const since = this.now();
      const every = this.tty ? 1000 : this.lineIntervalMs;
      const timer = setInterval(() => {
        const waited = formatDuration((this.now() - since) / 1000);
        this.stream.write(this.tty ? `\rwaiting for checkpoint: ${waited}` : `pgbb: still waiting for checkpoint (${waited})\n`);
      }, every);
      timer.unref();
      this.stopWaiting();
      this.waiting = { timer, since };
      return;
    }
    if (!this.verbose) return;
    const line = `pgbb: ${st.message}\n`;
    if (this.multi) this.multi.log(line);
    else this.stream.write(line);
  }

  private stopWaiting(): void {
    if (!this.waiting) return;
    clearInterval(this.waiting.timer);
    this.waiting = null;
    if (this.tty) this.stream.write('\r\x1b[2K'); // the ticker's line, cleared for the bar
  }

  private openBar(): void {
    if (this.multi || this.closed) return;
    this.multi = new (cliProgress().MultiBar)({
      stream: this.stream,
      format: formatBarLine,
      fps: 10,
      barsize: 30,
      hideCursor: false,
      // The command handles SIGINT/SIGTERM (abort, clean up, close us).
      gracefulExit: false,
      barCompleteChar: '\u2588',
      barIncompleteChar: '\u2591',
    });
    this.bar = this.multi.create(1, 0, { info: null });
  }

  progress(p: ProgressInfo): void {
    if (this.closed) return;
    this.last = p;
    if (this.tty) {
      this.openBar();
      this.bar!.setTotal(p.total ?? Math.max(1, p.done));
      this.bar!.update(p.done, { info: p });
      return;
    }
    const t = this.now();
    if (p.phase !== 'done' && t - this.lastLine < this.lineIntervalMs) return;
    this.lastLine = t;
    this.stream.write(`pgbb: ${describeProgress(p)}\n`);
  }

  warning(_code: string, message: string): void {
    const line = `pgbb: warning: ${message}\n`;
    if (this.multi) this.multi.log(line);
    else this.stream.write(line);
  }

  result(r: BackupSummary): void {
    if (this.last && this.last.phase !== 'done') this.progress({ ...this.last, phase: 'done', etaSeconds: 0, elapsedSeconds: r.seconds });
    this.close();
  }

  error(_err: unknown): void {
    // The command prints the error line; leave the bar where it stopped.
    this.close();
  }

  close(): void {
    this.stopWaiting();
    this.closed = true;
    const m = this.multi;
    this.multi = null;
    this.bar = null;
    if (!m) return;
    m.update(); // prints warnings still waiting in its log buffer
    m.stop();
  }
}

/** `21.0 MB of 50.0 MB (42%), 20.0 MB/s, ETA 1s` — or without total: `21.0 MB, 20.0 MB/s, 1s elapsed`. */
export function describeProgress(p: ProgressInfo): string {
  const parts: string[] = [];
  if (p.total !== null && p.total > 0) {
    parts.push(`${formatBytes(p.done)} of ${formatBytes(p.total)} (${percent(p.done, p.total)}%)`);
  } else parts.push(formatBytes(p.done));
  parts.push(`${formatBytes(p.rateBytesPerSec)}/s`);
  if (p.phase === 'done') parts.push(`done in ${formatDuration(p.elapsedSeconds)}`);
  else if (p.etaSeconds !== null) parts.push(`ETA ${formatDuration(p.etaSeconds)}`);
  else parts.push(`${formatDuration(p.elapsedSeconds)} elapsed`);
  if (p.walBytes) parts.push(`+ ${formatBytes(p.walBytes)} WAL`);
  else if (p.phase === 'wal') parts.push('WAL');
  // A refresh receives everything but writes what changed: both, so that -P does not read as a full rewrite.
  if (p.writtenBytes !== undefined) parts.push(`wrote ${formatBytes(p.writtenBytes)}`);
  return parts.join(', ');
}

function formatBarLine(options: Options, params: Params, payload: { info: ProgressInfo | null }): string {
  const p = payload.info;
  if (!p) return 'waiting for the server…';
  const text = describeProgress(p).replace(/, /g, ' | ');
  if (p.total === null || p.total <= 0) return text;
  return `${cliProgress().Format.BarFormat(Math.min(1, Math.max(0, params.progress)), options)} ${text}`;
}

function percent(done: number, total: number): number {
  return Math.min(100, Math.floor((done * 100) / total));
}

/** PostgreSQL's units: 1 kB = 1024 bytes. */
export function formatBytes(n: number): string {
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  if (n < 1024) return `${Math.round(n)} bytes`;
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
