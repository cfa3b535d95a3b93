/**
 * `pgbb backup`: the CLI's options onto the builder (src/pipeline/backup.ts),
 * and the result to the reporter.
 */
import { backup, type BackupResult } from '../pipeline/backup';
import type { BackupOptions } from '../pipeline/backup-plan';
import * as path from 'node:path';
import { plainReporter } from '../report/reporters';
import { formatCompressSpec } from '../codec/compression';

/** What the CLI passes: backup's options, parsed (src/cli.ts). */
export type BackupCommandOptions = BackupOptions;
export type { BackupResult };

export async function backupCommand(o: BackupCommandOptions): Promise<BackupResult> {
  const reporter = o.reporter ?? plainReporter();
  const result = await backup({ ...o, reporter });
  reporter.result({
    startLsn: result.start.startLsn,
    endLsn: result.end.endLsn,
    timeline: result.end.timeline,
    bytes: result.bytes,
    files: result.files,
    seconds: result.seconds,
    checkpointSeconds: result.checkpointSeconds,
    walBytes: result.walBytes,
    target: o.target === '-' || o.output ? '-' : path.resolve(o.target),
    format: o.format ?? (o.target === '-' ? 'tar' : 'plain'),
    compression: o.compress ? formatCompressSpec(o.compress) : 'none',
  });
  return result;
}

/** `-v`: one line for people. */
export function backupSummary(r: BackupResult): string {
  return (
    `pgbb: backup complete: ${r.files} files, ${r.bytes} bytes (of them WAL: ${r.walFiles} files, ${r.walBytes} bytes) in ${r.seconds.toFixed(2)} s, ` +
    `start ${r.start.startLsn} end ${r.end.endLsn} on timeline ${r.end.timeline}` +
    (r.location ? `, stored as ${r.location}` : '')
  );
}
