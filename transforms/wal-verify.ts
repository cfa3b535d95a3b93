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
 *      With `walDirectory`, segments are read from there instead (none spooled).
 * Result: { segments, records, ranges } after end.
 * Errors: WalError naming the segment and LSN at fault; a backup without WAL
 *      fails ("-X none backups need a WAL archive: nothing to check").
 *      Mode 'report' (src/verifier.ts): these never fail the stream; each
 *      range is checked, `end` passes, and outcome() lists what failed. The
 *      spool's own limits (IoError) fail the stream in either mode.
 * The spool is removed at the end and on error or abort.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import type { Transform } from 'node:stream';
import type { DataEvent, EndEvent, EntryEvent, ManifestEvent } from '../src/events';
import { parseLsn } from '../src/codec/lsn';
import { checkWalRange, WalError } from '../src/codec/wal-continuity';
import { ManifestReader } from '../src/codec/manifest';
import { lsnRange } from '../src/codec/wal-ranges';
import { IoError, ManifestError } from '../src/errors';
import { readLimitedSync } from '../src/io/read-limited';
import { defaultSpoolParent, spoolBudget } from '../src/wal/spool-place';
import { makeTempDir } from '../src/io/temp-dirs';
import type { Verifier, VerifierMode, VerifierOutcome } from '../src/verifier';
import { ProblemList, verifierMode } from '../src/verify/problem-list';
import { Observer } from './observer';

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
  /**
   * Read the segments from this directory instead of the backup (pg_verifybackup
   * -w: a -X none backup and its WAL archive); the backup's own WAL is then not spooled.
   */
  walDirectory?: string;
  /** The manifest whose WAL-Ranges to check (pg_verifybackup -m), instead of the stream's. */
  manifest?: Buffer;
  /** 'fail' (default): the first WAL problem fails the stream at end; 'report': outcome() lists them. */
  mode?: VerifierMode;
}

/** What is wrong with the backup's WAL (or the manifest naming it), as opposed to the machine. */
const aboutBackup = (err: unknown) => err instanceof WalError || err instanceof ManifestError;

export function walVerify(opts: WalVerifyOptions = {}): WalVerify {
  return new WalVerifier(opts);
}

class WalVerifier extends Observer implements WalVerify {
  readonly result: WalVerifyResult = { segments: 0, records: 0, ranges: 0 };
  private readonly mode: VerifierMode;
  private readonly problems = new ProblemList('WAL');
  private readonly recorded = new WeakSet<Error>();
  private spool: string | null = null;
  private fd: number | null = null;
  /** The streamed manifest, read for its WAL-Ranges only (its files are manifest-verify's to check). */
  private manifest: ManifestReader | null = null;
  private readonly segments = new Set<string>();
  private budget = Infinity;
  private spooled = 0;

  constructor(private readonly opts: WalVerifyOptions) {
    super();
    this.mode = verifierMode(opts.mode, 'WAL');
  }

  outcome(): VerifierOutcome {
    return this.problems.outcome();
  }

  protected override onEntry(ev: EntryEvent): void {
    if (this.opts.walDirectory !== undefined) return;
    const name = this.archive?.kind === 'wal' ? ev.path : ev.path.startsWith('pg_wal/') ? ev.path.slice(7) : '';
    if (ev.kind !== 'file' || !SEGMENT.test(name)) return;
    this.guard(() => {
      if (!this.spool) {
        this.spool = makeTempDir(this.opts.spoolDir ?? defaultSpoolParent(), 'walcheck');
        this.budget = spoolBudget(this.spool);
      }
      this.spooled += ev.size;
      if (this.spooled > this.budget) {
        throw new IoError(`WAL check spool "${this.spool}" is on a memory-backed filesystem and would grow past ${(this.budget / 1048576).toFixed(1)} MiB: set TMPDIR to a directory on disk`);
      }
      this.fd = openSync(path.join(this.spool, name), 'w', 0o600);
      this.segments.add(name);
    });
  }

  protected override onData(ev: DataEvent): void {
    const fd = this.fd;
    if (fd !== null) this.guard(() => writeSync(fd, ev.chunk, 0, ev.chunk.length, ev.offset));
  }

  protected override onEntryEnd(): void {
    this.closeFd();
  }

  protected override onManifest(ev: ManifestEvent): void {
    if (this.opts.manifest) return;
    // Duplicate paths are manifest-verify's to refuse: no set of paths kept here.
    this.manifest ??= new ManifestReader({ paths: { add: () => true } });
    this.judged(() => this.manifest!.write(ev.data));
  }

  protected override onEnd(ev: EndEvent): void {
    if (this.opts.manifest) {
      this.manifest = new ManifestReader({ paths: { add: () => true } });
      this.judged(() => this.manifest!.write(this.opts.manifest!));
    }
    this.guard(() => this.judged(() => this.check(ev.endLsn, ev.timeline)));
    this.cleanup();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.cleanup();
    cb(err);
  }

  /** Any error removes the spool before it fails the stream. */
  private guard(run: () => void): void {
    try {
      run();
    } catch (err) {
      this.cleanup();
      throw err;
    }
  }

  /** Records a problem with the backup once; fail mode throws it on, report mode goes on. */
  private judged(run: () => void): void {
    try {
      run();
    } catch (err) {
      if (!aboutBackup(err)) throw err;
      if (!this.recorded.has(err as Error)) this.problems.add((err as Error).message);
      this.recorded.add(err as Error);
      if (this.mode === 'fail') throw err;
    }
  }

  private check(endLsn: string, endTli: number): void {
    const start = this.startEvent;
    if (!start) throw new WalError('backup stream has no start event');
    const dir = this.opts.walDirectory;
    if (this.segments.size === 0 && dir === undefined) throw new WalError('the backup holds no WAL (taken with -X none?): nothing to check');
    // Capped, not following a link, never blocking on a FIFO: the directory may be anyone's.
    const limits = { maxBytes: start.walSegmentSize, what: 'WAL segment' };
    const read = (name: string): Buffer | null => {
      if (dir === undefined) return this.segments.has(name) ? readFileSync(path.join(this.spool!, name)) : null;
      const b = readLimitedSync(path.join(dir, name), limits);
      if (b) this.segments.add(name);
      return b;
    };
    const ranges = this.manifest
      ? this.manifest.end().walRanges.map(lsnRange)
      : [{ timeline: endTli || start.timeline, start: parseLsn(start.startLsn), end: parseLsn(endLsn) }];
    for (const r of ranges) {
      this.judged(() => {
        const res = checkWalRange({
          timeline: r.timeline,
          startLsn: r.start,
          endLsn: r.end,
          segmentSize: start.walSegmentSize,
          readSegment: read,
        });
        this.result.records += res.records;
      });
    }
    this.result.ranges = ranges.length;
    this.result.segments = this.segments.size;
  }

  private closeFd(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private cleanup(): void {
    this.closeFd();
    if (this.spool) rmSync(this.spool, { recursive: true, force: true });
    this.spool = null;
  }
}
