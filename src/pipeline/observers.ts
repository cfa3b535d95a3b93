/**
 * The observer stages the builders share, each a plain transform that
 * passes every event on:
 *
 *   [manifest-verify] ─► tally ─► [throttle -r] ─► [progress -P/--json]
 *
 * manifest-verify comes first: the server's manifest is checked against
 * every byte received (size and CRC32C) before any later stage could change
 * a file. The tally collects what the result reports (start and end events,
 * bytes, files) and passes start and warnings on to the reporter.
 */
import { Writable, type Duplex } from 'node:stream';
import type { EndEvent, StartEvent } from '../events';
import type { Reporter } from '../report/types';
import type { RateLimiter } from '../rate-limiter';
import type { ChecksumAlgorithm } from '../codec/manifest-format';
import { tap } from '../../transforms/tap';
import { throttle } from '../../transforms/throttle';
import { progress } from '../../transforms/progress';
import { manifestVerify } from '../../transforms/manifest-verify';

export interface Tally {
  start: StartEvent | null;
  end: EndEvent | null;
  /** Data bytes seen. */
  bytes: number;
  /** Regular files seen. */
  files: number;
  /** Of `bytes` and `files`, WAL files' (the pg_wal archive, or pg_wal/ in base.tar with -X fetch). */
  walBytes: number;
  walFiles: number;
  /** process.hrtime.bigint() at the start event (the start checkpoint is over), and at the end event. */
  startedAt: bigint | null;
  endedAt: bigint | null;
}

/**
 * A tap that counts into `tally` and tells `reporter` (if any) of the start,
 * the steps it marks (pg_basebackup -v's "write-ahead log start point" and
 * "end point") and of warnings.
 */
export function tallyStage(tally: Tally, reporter?: Reporter): Duplex {
  let archiveKind = '';
  let inWal = false;
  return tap((ev) => {
    if (ev.type === 'data') {
      tally.bytes += ev.chunk.length;
      if (inWal) tally.walBytes += ev.chunk.length;
    } else if (ev.type === 'entry') {
      if (ev.kind === 'file') tally.files++;
      inWal = ev.kind === 'file' && (archiveKind === 'wal' || (archiveKind === 'base' && ev.path.startsWith('pg_wal/')));
      if (inWal) tally.walFiles++;
    } else if (ev.type === 'archive') archiveKind = ev.kind;
    else if (ev.type === 'start') {
      tally.start = ev;
      tally.startedAt = process.hrtime.bigint();
      reporter?.step?.({ code: 'started', message: `checkpoint completed; write-ahead log start point: ${ev.startLsn} on timeline ${ev.timeline}` });
      reporter?.start(ev);
    } else if (ev.type === 'end') {
      tally.end = ev;
      tally.endedAt = process.hrtime.bigint();
      reporter?.step?.({ code: 'ended', message: `write-ahead log end point: ${ev.endLsn}` });
    }
    // Checksum failures are listed in the error that ends the backup.
    else if (ev.type === 'warning' && ev.code !== 'checksum') reporter?.warning(ev.code, ev.message);
  });
}

export function newTally(): Tally {
  return { start: null, end: null, bytes: 0, files: 0, walBytes: 0, walFiles: 0, startedAt: null, endedAt: null };
}

/** What every backup-taking builder (backup, refresh) puts between the source and its own stages. */
export function takingStages(o: {
  manifest: boolean;
  checksums?: ChecksumAlgorithm;
  /** A chunk map follows: the check leaves each event's CRC32C for it. */
  shareCrc?: boolean;
  limiter: RateLimiter | null;
  progress: boolean;
  reporter: Reporter;
  tally: Tally;
  /** refresh: bytes its sink has written so far, shown beside what was received. */
  written?: () => number;
}): Duplex[] {
  const written = o.written;
  return [
    // The algorithm the server was asked for (--manifest-checksums): each file is checked with it as it arrives.
    // shareCrc: a chunk map follows, and takes each event's CRC32C from the check (each byte checksummed once).
    ...(o.manifest ? [manifestVerify({ ...(o.checksums ? { checksumAlgorithm: o.checksums } : {}), shareCrc: o.shareCrc })] : []),
    tallyStage(o.tally, o.reporter),
    ...(o.limiter ? [throttle(o.limiter)] : []),
    ...(o.progress ? [progress({ onProgress: (p) => o.reporter.progress(written ? { ...p, writtenBytes: written() } : p) })] : []),
  ];
}

/** A sink that drops what the checks pass on: the checks are the point (verify; a rebuilt chain's check). */
export function discard(): Writable {
  return new Writable({ objectMode: true, write: (_ev, _enc, cb) => cb() });
}
