/**
 * `pgbb refresh -D DIR` (and `pgbb backup --incremental-from DIR`): the CLI's
 * options onto the builder (src/pipeline/refresh.ts), and the result as one
 * JSON line (--json) or one line for people (-v).
 */
import { refresh, type RefreshResult } from '../pipeline/refresh';
import type { RefreshOptions } from '../pipeline/refresh-plan';
import { formatBytes } from '../report/progress-reporter';

export { checkIncrementalFrom } from '../pipeline/refresh-plan';
export type RefreshCommandOptions = RefreshOptions;
export type { RefreshResult };

/** The caller reports the result: --json wants the refresh's own fields (refreshResultJson). */
export function refreshCommand(o: RefreshCommandOptions): Promise<RefreshResult> {
  return refresh(o);
}

/** The --json result line of a refresh. */
export function refreshResultJson(r: RefreshResult): string {
  const { start: _s, end, seconds, ...rest } = r;
  return JSON.stringify({
    event: 'result',
    startLsn: r.start.startLsn,
    endLsn: end.endLsn,
    timeline: end.timeline,
    ...rest,
    seconds: Math.round(seconds * 1000) / 1000,
  });
}

/**
 * The line a refresh ends with (with or without -v): what it wrote of the
 * backup's size, files added, changed and removed, the time, and what came
 * over the network — `pgbb: refresh complete (full): wrote 61.2 MB of 2.3 GB
 * (2.6%); files 3 added, 41 changed, 1 removed; received 2.3 GB; 5.2 s; start
 * 0/5000028 end 0/5000100 on timeline 1`.
 */
export function refreshSummary(r: RefreshResult): string {
  const of = r.bytesReceived > 0 ? ` of ${formatBytes(r.bytesReceived)} (${((r.bytesWritten * 100) / r.bytesReceived).toFixed(1)}%)` : '';
  return (
    `pgbb: refresh complete (${r.mode}): wrote ${formatBytes(r.bytesWritten)}${of}; ` +
    `files ${r.filesAdded} added, ${r.filesChanged} changed, ${r.filesRemoved} removed (${r.filesUnchanged} unchanged); ` +
    `chunks ${r.chunksChanged} changed, ${r.chunksUnchanged} unchanged; received ${formatBytes(r.bytesReceived)}; ${r.seconds.toFixed(1)} s; ` +
    `start ${r.start.startLsn} end ${r.end.endLsn} on timeline ${r.end.timeline}`
  );
}
