/**
 * `pgbb backup`: the CLI's options onto the builder (src/pipeline/backup.ts),
 * and the result to the reporter.
 */
import { backup, type BackupResult } from '../pipeline/backup';
import type { BackupOptions } from '../pipeline/backup-plan';
import { plainReporter } from '../report/reporters';

/** What the CLI passes: backup's options, parsed (src/cli.ts). */
export type BackupCommandOptions = BackupOptions;
export type { BackupResult };

export async function backupCommand(o: BackupCommandOptions): Promise<BackupResult> {
  const reporter = o.reporter ?? plainReporter();
  const result = await backup({ ...o, reporter });
  reporter.result({ startLsn: result.start.startLsn, endLsn: result.end.endLsn, timeline: result.end.timeline, bytes: result.bytes, files: result.files, seconds: result.seconds });
  return result;
}

/** `-v`: one line for people. */
export function backupSummary(r: BackupResult): string {
  return (
    `pgbb: backup complete: ${r.bytes} bytes in ${r.seconds.toFixed(2)} s, ` +
    `start ${r.start.startLsn} end ${r.end.endLsn} on timeline ${r.end.timeline}` +
    (r.location ? `, stored as ${r.location}` : '')
  );
}
