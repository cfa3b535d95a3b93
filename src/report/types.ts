/**
 * What reporters are fed, and their interface. Imports nothing of
 * src/report/ nor of transforms/: the progress transform
 * (transforms/progress.ts) produces ProgressInfo, the reporters consume it,
 * and neither imports the other.
 */
import type { StartEvent } from '../events';

/** One progress report (see transforms/progress.ts for what counts as done). */
export interface ProgressInfo {
  done: number;
  total: number | null;
  rateBytesPerSec: number;
  etaSeconds: number | null;
  elapsedSeconds: number;
  phase: 'backup' | 'wal' | 'done';
  currentFile?: string;
}

export interface BackupSummary {
  startLsn: string;
  endLsn: string;
  timeline: number;
  /** Bytes of file data written. */
  bytes: number;
  /** Regular files written. */
  files: number;
  seconds: number;
}

export interface Reporter {
  start(ev: StartEvent): void;
  progress(p: ProgressInfo): void;
  warning(code: string, message: string): void;
  result(r: BackupSummary): void;
  error(err: unknown): void;
  /** Stops timers and leaves the terminal on a fresh line; safe to call twice. */
  close(): void;
}
