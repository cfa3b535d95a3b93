/**
 * `pgbb refresh -D DIR` (and `pgbb backup --incremental-from DIR`): the CLI's
 * options onto the builder (src/pipeline/refresh.ts), and the result as one
 * JSON line (--json) or one line for people (-v).
 */
import { refresh, type RefreshResult } from '../pipeline/refresh';
import type { RefreshOptions } from '../pipeline/refresh-plan';

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

/** `-v`: one line for people. */
export function refreshSummary(r: RefreshResult): string {
  return (
    `pgbb: refresh complete (${r.mode}): received ${r.bytesReceived} bytes, wrote ${r.bytesWritten} bytes; ` +
    `chunks ${r.chunksChanged} changed, ${r.chunksUnchanged} unchanged; files ${r.filesAdded} added, ${r.filesChanged} changed, ` +
    `${r.filesRemoved} removed; ${r.seconds.toFixed(2)} s, start ${r.start.startLsn} end ${r.end.endLsn} on timeline ${r.end.timeline}`
  );
}
