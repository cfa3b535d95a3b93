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
  /**
   * WAL file bytes seen (the streamed pg_wal archive, or pg_wal/ files in
   * base.tar with -X fetch). Counted apart from `done`: the server's
   * estimate does not include WAL, and a total that jumped by the WAL at the
   * end would say the backup was further along than it was.
   */
  walBytes?: number;
  /** refresh: bytes written into the backup so far (what changed, of the `done` received). */
  writtenBytes?: number;
}

export interface BackupSummary {
  startLsn: string;
  endLsn: string;
  timeline: number;
  /** Bytes of file data written (WAL included). */
  bytes: number;
  /** Regular files written. */
  files: number;
  /** The whole run: from the command's start (the checkpoint included) to the manifest on disk. */
  seconds: number;
  /** The run's parts, when known: waiting for the start checkpoint; moving data (start to end). */
  checkpointSeconds?: number;
  /** Where it went and how: the target (`-` for stdout), plain or tar, and the compression spec ('none'). */
  target?: string;
  format?: 'plain' | 'tar';
  compression?: string;
  /** Of `bytes`, WAL file bytes. */
  walBytes?: number;
}

/**
 * What a run does, step by step (pg_basebackup -v's lines): `code` is stable
 * for scripts (checkpoint, started, wal_receiver, ended, sync, manifest,
 * done), `message` is for people.
 */
export interface StepInfo {
  code: string;
  message: string;
}

export interface Reporter {
  start(ev: StartEvent): void;
  progress(p: ProgressInfo): void;
  warning(code: string, message: string): void;
  /** A step of the run (optional: reporters written before steps existed have none). */
  step?(s: StepInfo): void;
  result(r: BackupSummary): void;
  error(err: unknown): void;
  /** Stops timers and leaves the terminal on a fresh line; safe to call twice. */
  close(): void;
}
