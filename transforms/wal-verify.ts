/**
 * wal-verify: checks that the WAL a backup needs is in it and parses as one
 * continuous range (observer: every event passes through unchanged).
 *
 * In:  member events. WAL segment files (`pg_wal/<24 hex>` in the base
 *      archive, or `<24 hex>` in a `wal` archive) are copied to a spool
 *      directory as they pass; nothing else is kept. The spool goes where
 *      `spoolDir` says, by default os.tmpdir() or /var/tmp, whichever is not
 *      memory-backed (src/wal/spool-place.ts); on a memory-backed filesystem
 *      it is held to spoolBudget() and fails with a clear message past it.
 * At `end`: the ranges to check are the manifest's WAL-Ranges when a
 *      manifest passed, else start LSN → end LSN on the start timeline; each
 *      is walked record by record (src/codec/wal-continuity.ts). `end` is
 *      passed on only if every range checks out.
 * Result: { segments, records, ranges } after end.
 * Errors: WalError naming the segment and LSN at fault; a backup without WAL
 *      fails ("-X none backups need a WAL archive: nothing to check").
 *      Mode 'report' (src/verifier.ts): these never fail the stream; each
 *      range is checked, `end` passes, and outcome() lists what failed. The
 *      spool's own limits (IoError) fail the stream in either mode.
 * The spool is removed at the end and on error or abort.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import type { BackupEvent, StartEvent } from '../src/events';
import { parseLsn } from '../src/codec/lsn';
import { checkWalRange, WalError } from '../src/codec/wal-continuity';
import { parseManifest } from '../src/codec/manifest';
import { IoError, ManifestError } from '../src/errors';
import type { Verifier, VerifierMode } from '../src/verifier';
import { ProblemList, verifierMode } from '../src/verify/problem-list';
import { defaultSpoolParent, spoolBudget } from '../src/wal/spool-place';

const SEGMENT = /^[0-9A-F]{24}$/;

export interface WalVerifyResult {
  segments: number;
  records: number;
  ranges: number;
}

export interface WalVerify extends Transform, Verifier {
  readonly result: WalVerifyResult;
}

export interface WalVerifyOptions {
  spoolDir?: string;
  /** 'fail' (default): the first WAL problem fails the stream at end; 'report': outcome() lists them. */
  mode?: VerifierMode;
}

/** What is wrong with the backup's WAL (or the manifest naming it), as opposed to the machine. */
const aboutBackup = (err: unknown) => err instanceof WalError || err instanceof ManifestError;

export function walVerify(opts: WalVerifyOptions = {}): WalVerify {
  const mode = verifierMode(opts.mode, 'WAL');
  const problems = new ProblemList('WAL');
  const recorded = new WeakSet<Error>();
  let spool: string | null = null;
  let fd: number | null = null;
  let start: StartEvent | null = null;
  const manifestPieces: Buffer[] = [];
  let walArchive = false;
  const segments = new Set<string>();
  let budget = Infinity;
  let spooled = 0;
  const result: WalVerifyResult = { segments: 0, records: 0, ranges: 0 };

  const closeFd = () => {
    if (fd !== null) closeSync(fd);
    fd = null;
  };
  const cleanup = () => {
    closeFd();
    if (spool) rmSync(spool, { recursive: true, force: true });
    spool = null;
  };

  /** Records a problem with the backup once; fail mode throws it on, report mode goes on. */
  const judged = (run: () => void) => {
    try {
      run();
    } catch (err) {
      if (!aboutBackup(err)) throw err;
      if (!recorded.has(err as Error)) problems.add((err as Error).message);
      recorded.add(err as Error);
      if (mode === 'fail') throw err;
    }
  };

  const check = (endLsn: string, endTli: number) => {
    if (!start) throw new WalError('backup stream has no start event');
    if (segments.size === 0) throw new WalError('the backup holds no WAL (taken with -X none?): nothing to check');
    const ranges = manifestPieces.length
      ? parseManifest(Buffer.concat(manifestPieces)).walRanges.map((r) => ({ timeline: r.timeline, start: r.startLsn, end: r.endLsn }))
      : [{ timeline: endTli || start.timeline, start: start.startLsn, end: endLsn }];
    for (const r of ranges) {
      judged(() => {
        const res = checkWalRange({
          timeline: r.timeline,
          startLsn: parseLsn(r.start),
          endLsn: parseLsn(r.end),
          segmentSize: start!.walSegmentSize,
          readSegment: (name) => (segments.has(name) ? readFileSync(path.join(spool!, name)) : null),
        });
        result.records += res.records;
      });
    }
    result.ranges = ranges.length;
    result.segments = segments.size;
  };

  const t = new Transform({
    objectMode: true,
    highWaterMark: 16,
    transform(ev: BackupEvent, _enc, cb: TransformCallback) {
      try {
        switch (ev.type) {
          case 'start':
            start = ev;
            break;
          case 'archive':
            walArchive = ev.kind === 'wal';
            break;
          case 'entry': {
            const name = walArchive ? ev.path : ev.path.startsWith('pg_wal/') ? ev.path.slice(7) : '';
            if (ev.kind === 'file' && SEGMENT.test(name)) {
              if (!spool) {
                spool = mkdtempSync(path.join(opts.spoolDir ?? defaultSpoolParent(), 'pgbb-walcheck-'));
                budget = spoolBudget(spool);
              }
              spooled += ev.size;
              if (spooled > budget) {
                throw new IoError(`WAL check spool "${spool}" is on a memory-backed filesystem and would grow past ${(budget / 1048576).toFixed(1)} MiB: set TMPDIR to a directory on disk`);
              }
              fd = openSync(path.join(spool, name), 'w', 0o600);
              segments.add(name);
            }
            break;
          }
          case 'data':
            if (fd !== null) writeSync(fd, ev.chunk, 0, ev.chunk.length, ev.offset);
            break;
          case 'entry-end':
            closeFd();
            break;
          case 'manifest':
            manifestPieces.push(ev.data);
            break;
          case 'end':
            judged(() => check(ev.endLsn, ev.timeline));
            cleanup();
            break;
        }
      } catch (err) {
        cleanup();
        return cb(err as Error);
      }
      cb(null, ev);
    },
    destroy(err, cb) {
      cleanup();
      cb(err);
    },
  }) as WalVerify;
  Object.defineProperty(t, 'result', { get: () => result });
  t.outcome = () => problems.outcome();
  return t;
}
