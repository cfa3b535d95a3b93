/**
 * JSON reporter (--json): one JSON object per line (NDJSON) for scripts.
 *
 * Every line also carries `time`, an ISO 8601 timestamp (UTC) of when it was written.
 *
 *   {"event":"step","code":"checkpoint","message":"initiating base backup, waiting for checkpoint to complete"}
 *   {"event":"start","serverVersion":150018,"systemIdentifier":"…","timeline":1,"startLsn":"0/2000028","label":"…","totalBytes":52428800|null,"tablespaces":2}
 *   {"event":"progress","phase":"backup","done":1048576,"total":52428800|null,"rate":20971520,"eta":2.4|null,"elapsed":0.5,"wal":0}
 *   {"event":"warning","code":"checksum","message":"…"}
 *   {"event":"result","startLsn":"0/2000028","endLsn":"0/2000100","timeline":1,"bytes":…,"files":…,"seconds":3.21,
 *    "checkpointSeconds":0.1,"target":"/backups/x","format":"plain","compression":"none","walBytes":…}   (the last five when known)
 *   {"event":"error","code":"connection","message":"…"}
 *
 * Sizes are bytes, rates bytes per second (integers), times seconds. The
 * error `code` is PgbbError.code ('interrupted' for an abort, 'internal' for
 * anything that is not a PgbbError). Each line is built from named fields
 * only, and no message pgbb makes carries a password (src/net/conninfo.ts), so
 * there is nothing to blank afterwards.
 * Errors: none of its own; a failing stream is the stream's business.
 */
import type { StartEvent } from '../events';
import type { BackupSummary, ProgressInfo, Reporter, StepInfo } from './types';
import { describeError, PgbbError } from '../errors';

export class JsonReporter implements Reporter {
  constructor(private readonly stream: NodeJS.WritableStream) {}

  start(ev: StartEvent): void {
    this.line({
      event: 'start',
      serverVersion: ev.serverVersion,
      systemIdentifier: ev.systemIdentifier,
      timeline: ev.timeline,
      startLsn: ev.startLsn,
      label: ev.label,
      totalBytes: ev.totalBytes,
      tablespaces: ev.tablespaces.filter((t) => t.oid !== null).length,
    });
  }

  progress(p: ProgressInfo): void {
    this.line({
      event: 'progress',
      phase: p.phase,
      done: p.done,
      total: p.total,
      rate: Math.round(p.rateBytesPerSec),
      eta: p.etaSeconds === null ? null : round(p.etaSeconds, 1),
      elapsed: round(p.elapsedSeconds, 3),
      ...(p.walBytes !== undefined ? { wal: p.walBytes } : {}),
      ...(p.writtenBytes !== undefined ? { written: p.writtenBytes } : {}),
    });
  }

  warning(code: string, message: string): void {
    this.line({ event: 'warning', code, message });
  }

  step(s: StepInfo): void {
    this.line({ event: 'step', code: s.code, message: s.message });
  }

  result(r: BackupSummary): void {
    this.line({
      event: 'result',
      startLsn: r.startLsn,
      endLsn: r.endLsn,
      timeline: r.timeline,
      bytes: r.bytes,
      files: r.files,
      seconds: round(r.seconds, 3),
      ...(r.checkpointSeconds !== undefined ? { checkpointSeconds: round(r.checkpointSeconds, 3) } : {}),
      ...(r.target !== undefined ? { target: r.target } : {}),
      ...(r.format !== undefined ? { format: r.format } : {}),
      ...(r.compression !== undefined ? { compression: r.compression } : {}),
      ...(r.walBytes !== undefined ? { walBytes: r.walBytes } : {}),
    });
  }

  error(err: unknown): void {
    this.line({ event: 'error', code: errorCode(err), message: describeError(err) });
  }

  close(): void {}

  private line(obj: Record<string, unknown>): void {
    this.stream.write(`${JSON.stringify({ ...obj, time: new Date().toISOString() })}\n`);
  }
}

export function errorCode(err: unknown): string {
  if (err instanceof PgbbError) return err.code;
  if ((err as Error)?.name === 'AbortError') return 'interrupted';
  return 'internal';
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
