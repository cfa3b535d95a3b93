/**
 * `pgbb restore SOURCE -D DATADIR`: the CLI's options onto the builder
 * (src/pipeline/restore.ts).
 */
import { restore, type RestoreOptions, type RestoreResult } from '../pipeline/restore';

export type { RestoreOptions, RestoreResult };

export function restoreCommand(o: RestoreOptions): Promise<RestoreResult> {
  return restore(o);
}

/** `-v`: one line for people. */
export function restoreSummary(r: RestoreResult): string {
  return (
    `pgbb: restored ${r.files} files, ${r.bytes} bytes (of them pg_wal/: ${r.walFiles} files, ${r.walBytes} bytes) from a ${r.format} backup in ${r.seconds.toFixed(2)} s ` +
    `(start ${r.start.startLsn}, end ${r.end.endLsn}, timeline ${r.end.timeline})`
  );
}
