/**
 * `pgbb standby`: the CLI's options onto src/pipeline/standby.ts, each step
 * as a line for people (`pgbb: standby: …`) or a JSON `step` event, and the
 * end as a `result`. Run as root, the process first becomes the data
 * directory's owner (src/standby/run-as-owner.ts), once the options are
 * known to be good.
 */
import { checkStandbyOptions, standby, type StandbyOptions, type StandbyResult, type StandbyStep } from '../pipeline/standby';
import { dropToDataDirectoryOwner } from '../standby/run-as-owner';

export type StandbyCommandOptions = StandbyOptions & { json?: boolean; stream?: NodeJS.WritableStream };
export type { StandbyResult };

export async function standbyCommand(o: StandbyCommandOptions): Promise<StandbyResult> {
  const out = o.stream ?? process.stderr;
  const { json, stream: _s, ...rest } = o;
  // A mistyped option is the first thing to hear, before root's owner check (which may refuse too).
  checkStandbyOptions(rest);
  dropToDataDirectoryOwner(o.target);
  const onStep = (step: StandbyStep, message: string, detail: Record<string, unknown> = {}) => {
    out.write(json ? `${JSON.stringify({ event: 'step', code: step, message, ...detail, time: new Date().toISOString() })}\n` : `pgbb: standby: ${message}\n`);
  };
  const r = await standby({ ...rest, onStep });
  if (json) {
    out.write(
      `${JSON.stringify({
        event: 'result',
        dataDir: r.dataDir,
        found: r.found,
        slot: r.slot,
        status: r.status.status,
        replayLsn: r.status.replayLsn,
        replayLagBytes: r.replayLagBytes,
        bytesReceived: r.refreshed?.bytesReceived ?? 0,
        bytesWritten: r.refreshed?.bytesWritten ?? 0,
        chunksChanged: r.refreshed?.chunksChanged ?? 0,
        chunksUnchanged: r.refreshed?.chunksUnchanged ?? 0,
        seconds: Math.round(r.seconds * 1000) / 1000,
      })}\n`,
    );
  }
  return r;
}

/** One line for people: where the standby is and what the run moved. */
export function standbySummary(r: StandbyResult): string {
  const moved = r.refreshed ? `received ${r.refreshed.bytesReceived} bytes, wrote ${r.refreshed.bytesWritten}; ` : '';
  return `pgbb: standby "${r.dataDir}" streams (${moved}${r.replayLagBytes} bytes of replay lag; ${r.seconds.toFixed(1)} s)`;
}
