/**
 * page-checksum-verify: checks page checksums of relation files client-side,
 * as the server does during BASE_BACKUP, for sources where it does not
 * (parallel and local sources, existing backups being verified).
 *
 * In:  member events. Out: every event unchanged and in order, plus `warning`
 *      events. Options win; what they leave out comes from `start` (startLsn,
 *      blockSize, segmentBlocks, serverVersion); `start` saying the cluster
 *      has no data checksums turns checking off.
 * Checked (basebackup.c; src/codec/page-checksum.ts; PROTOCOL.md §6): files
 *      isRelationFile() accepts for the server version. Skipped: new pages
 *      (pd_upper == 0; no all-zero check, as the server and pg_checksums),
 *      pages with LSN ≥ start LSN (written during the backup; WAL replay
 *      rewrites them); with no start LSN at all every page is checked. A
 *      trailing partial page: warning 'checksum_unverified', not a failure.
 * Re-read: a failing page is read again once through `reread(path, index)`
 *      and judged on the new copy (page-reread.ts: new, LSN ≥ start, or
 *      matching: not a failure; null: truncated meanwhile, not a failure).
 * Memory: one partial page between chunks and a 64 KiB scratch (page-scan.ts);
 *      a data event is held only while its failing pages are re-read.
 * Warnings (code 'checksum') word it like the server, 5 per file, then
 *      "further … will not be reported" and the file's total:
 *      `checksum verification failed in file "./base/5/16390", block 5:
 *      calculated 80F9 but expected 1FFF` — block = index in the file before
 *      17, the absolute block number from 17 on, as each server reports it.
 * Result (`result`, final after end): { enabled, filesChecked, pagesChecked,
 *      pagesSkipped, failureCount, failures (first 1000) }.
 * Errors: ChecksumError listing failures (10, then "and N more") in place of
 *      `end`, so a backup with a corrupt page never looks complete; bad
 *      options: UsageError at once; a failing `reread` fails the stream.
 *      Mode 'report' (src/verifier.ts): corrupt pages never fail the stream;
 *      `end` passes and outcome() lists each failure's message (the first
 *      1000, then the count of the rest).
 */
import type { Transform, TransformCallback } from 'node:stream';
import type { ArchiveEvent, DataEvent, EntryEvent, StartEvent } from '../src/events';
import { ChecksumError, UsageError } from '../src/errors';
import { parseLsn } from '../src/codec/lsn';
import { DEFAULT_BLOCK_SIZE, DEFAULT_SEGMENT_BLOCKS, isRelationFile } from '../src/codec/page-checksum';
import { namesAbsoluteBlocks } from '../src/codec/server-version';
import type { Verifier, VerifierMode, VerifierOutcome } from '../src/verifier';
import { verifierMode } from '../src/verify/problem-list';
import { Observer } from './observer';
import { PageScanner, type Suspect } from './page-scan';
import { rereadVerdict } from './page-reread';

export interface PageChecksumVerifyOptions {
  /** Pages with an LSN at or after this (`X/X`) are skipped. Default: the `start` event's. */
  startLsn?: string;
  /** BLCKSZ. Default: the `start` event's, else 8192. */
  blockSize?: number;
  /** RELSEG_SIZE in blocks. Default: the `start` event's, else 131072. */
  segmentBlocks?: number;
  /** server_version_num: picks the rules for which files are checked. Default: the `start` event's, else 17's. */
  serverVersion?: number;
  /** Read block `blockIndex` of `path` (relative to the data directory) again; null when it is gone. */
  reread?: (path: string, blockIndex: number) => Promise<Buffer | null>;
  /** 'fail' (default): a corrupt page fails the stream at end; 'report': outcome() lists them instead. */
  mode?: VerifierMode;
}

export interface ChecksumFailure {
  /** Relative to the data directory (tablespaces as `pg_tblspc/<oid>/PG_…/…`). */
  path: string;
  /** `block`: index of the page in its file; `blockNumber`: segno × segment blocks + block. */
  block: number;
  blockNumber: number;
  calculated: number;
  expected: number;
  /** In the server's words. */
  message: string;
}

export interface PageChecksumResult {
  /** False when the cluster has no data checksums (nothing was checked). */
  enabled: boolean;
  filesChecked: number;
  pagesChecked: number;
  pagesSkipped: number;
  failureCount: number;
  failures: ChecksumFailure[];
}

export interface PageChecksumVerify extends Transform, Verifier {
  readonly result: PageChecksumResult;
}

const MAX_KEPT_FAILURES = 1000;
const MAX_LISTED_IN_ERROR = 10;
/** The server reports this many failures per file, then only the total. */
const MAX_WARNINGS_PER_FILE = 5;

/** `shown`: the file as the server names it in messages. */
type CurrentFile = { path: string; shown: string; segno: number; failures: number };

export function pageChecksumVerify(opts: PageChecksumVerifyOptions = {}): PageChecksumVerify {
  return new PageChecksumVerifier(opts);
}

class PageChecksumVerifier extends Observer implements PageChecksumVerify {
  readonly result: PageChecksumResult = { enabled: true, filesChecked: 0, pagesChecked: 0, pagesSkipped: 0, failureCount: 0, failures: [] };
  private readonly given: PageChecksumVerifyOptions;
  /** Block size, segment size, start LSN and the page carried between chunks. */
  private readonly pages: PageScanner;
  private serverVersion: number;
  /** Prefix turning archive paths into data-directory paths; null inside pg_wal. */
  private prefix: string | null = '';
  private location = '';
  private file: CurrentFile | null = null;
  private reported = false;

  constructor(opts: PageChecksumVerifyOptions) {
    super();
    this.given = { ...opts, mode: verifierMode(opts.mode, 'page checksum') };
    const startLsn = opts.startLsn !== undefined ? checkStartLsn(opts.startLsn) : undefined;
    this.pages = new PageScanner(
      checkBlockSize(opts.blockSize ?? DEFAULT_BLOCK_SIZE),
      checkPositive('segmentBlocks', opts.segmentBlocks ?? DEFAULT_SEGMENT_BLOCKS),
    );
    if (startLsn !== undefined) this.pages.setStartLsn(startLsn);
    this.serverVersion = checkPositive('serverVersion', opts.serverVersion ?? 170000);
  }

  protected override onStart(ev: StartEvent): void {
    this.configure(ev); // a block size or LSN we cannot work with fails the stream
  }

  protected override onArchive(ev: ArchiveEvent): void {
    this.prefix = ev.kind === 'wal' ? null : ev.kind === 'tablespace' ? `pg_tblspc/${ev.name}/` : '';
    this.location = ev.location;
  }

  protected override onArchiveEnd(): void {
    this.prefix = '';
    this.location = '';
  }

  protected override onEntry(ev: EntryEvent): void {
    this.openFile(ev);
  }

  protected override onData(ev: DataEvent): Promise<void> | void {
    if (!this.file) return;
    const suspects = this.pages.scan(ev.chunk, ev.offset, this.file.segno, this.result);
    if (suspects.length) return this.judge(suspects);
  }

  protected override onEntryEnd(): void {
    this.closeFile();
  }

  protected override onEnd(): void {
    if (this.result.failureCount > 0 && this.given.mode !== 'report') throw this.failure();
  }

  override _flush(cb: TransformCallback): void {
    // A stream that stops without `end` still must not pass for verified.
    cb(this.result.failureCount > 0 && !this.reported && this.given.mode !== 'report' ? this.failure() : null);
  }

  /** Each failure in the server's words (src/verifier.ts). */
  outcome(): VerifierOutcome {
    const { failureCount, failures } = this.result;
    return { check: 'page checksums', problems: failures.map((f) => f.message), more: failureCount - failures.length };
  }

  /** Options win; a source that does not know a value leaves it empty (0 or ''). */
  private configure(ev: StartEvent): void {
    const g = this.given;
    if (g.startLsn === undefined && ev.startLsn) this.pages.setStartLsn(checkStartLsn(ev.startLsn));
    if (g.blockSize === undefined && ev.blockSize && ev.blockSize !== this.pages.blockSize) {
      this.pages.blockSize = checkBlockSize(ev.blockSize);
    }
    if (g.segmentBlocks === undefined && ev.segmentBlocks) this.pages.segmentBlocks = checkPositive('segmentBlocks', ev.segmentBlocks);
    if (g.serverVersion === undefined && ev.serverVersion) this.serverVersion = checkPositive('serverVersion', ev.serverVersion);
    this.result.enabled = ev.dataChecksums !== false;
  }

  private openFile(ev: EntryEvent): void {
    this.file = null;
    if (!this.result.enabled || ev.kind !== 'file' || this.prefix === null) return;
    const path = this.prefix + ev.path;
    const found = isRelationFile(path, this.serverVersion);
    if (!found) return;
    // The server names tablespace files by their absolute path, data directory files as ./path.
    const shown = this.prefix && this.location ? `${this.location}/${ev.path}` : `./${path}`;
    this.file = { path, shown, segno: found.segno, failures: 0 };
    this.pages.reset();
    this.result.filesChecked++;
  }

  private closeFile(): void {
    const f = this.file;
    if (!f) return;
    const partial = this.pages.pending;
    if (partial.bytes > 0) {
      const where = `file "${f.shown}", block ${this.shownBlock(partial.index)}`;
      this.warn('checksum_unverified', `could not verify checksum in ${where}: the file ends ${partial.bytes} bytes into the page (page size ${this.pages.blockSize})`);
    }
    if (f.failures > 1) this.warn('checksum', `file "${f.shown}" has a total of ${f.failures} checksum verification failures`);
    this.file = null;
    this.pages.reset();
  }

  /** Re-reads each failing page once (when we can) and records what still fails. */
  private async judge(suspects: Suspect[]): Promise<void> {
    const f = this.file!;
    for (const s of suspects) {
      let { calculated, expected } = s;
      const reread = this.given.reread;
      if (reread) {
        const page = await reread(f.path, s.index);
        if (this.destroyed) return;
        const again = rereadVerdict(page, f, s.index, this.pages);
        if (again === null) {
          this.result.pagesSkipped++;
          continue;
        }
        ({ calculated, expected } = again);
      }
      this.result.pagesChecked++;
      if (calculated !== expected) this.recordFailure(f, s.index, calculated, expected);
    }
  }

  private recordFailure(f: CurrentFile, index: number, calculated: number, expected: number): void {
    const hex = (n: number) => n.toString(16).toUpperCase();
    const message =
      `checksum verification failed in file "${f.shown}", block ${this.shownBlock(index)}: ` +
      `calculated ${hex(calculated)} but expected ${hex(expected)}`;
    const blockNumber = f.segno * this.pages.segmentBlocks + index;
    this.result.failureCount++;
    if (this.result.failures.length < MAX_KEPT_FAILURES) {
      this.result.failures.push({ path: f.path, block: index, blockNumber, calculated, expected, message });
    }
    f.failures++;
    if (f.failures <= MAX_WARNINGS_PER_FILE) this.warn('checksum', message);
    if (f.failures === MAX_WARNINGS_PER_FILE) {
      this.warn('checksum', `further checksum verification failures in file "${f.shown}" will not be reported`);
    }
  }

  /** The block as the server names it (src/codec/server-version.ts): by its index in the file or its absolute number. */
  private shownBlock(index: number): number {
    return namesAbsoluteBlocks(this.serverVersion) ? this.file!.segno * this.pages.segmentBlocks + index : index;
  }

  private warn(code: string, message: string): void {
    this.push({ type: 'warning', code, message });
  }

  private failure(): ChecksumError {
    this.reported = true;
    const { failureCount: n, failures } = this.result;
    const listed = failures.slice(0, MAX_LISTED_IN_ERROR).map((f) => f.message);
    const more = n - listed.length;
    return new ChecksumError(
      `${n} page checksum verification failure${n === 1 ? '' : 's'}: ${listed.join('; ')}${more > 0 ? `; and ${more} more` : ''}`,
    );
  }
}

function checkStartLsn(text: string): bigint {
  try {
    return parseLsn(text);
  } catch {
    throw new UsageError(`invalid start LSN "${text}" for page checksum verification`);
  }
}

function checkBlockSize(n: number): number {
  if (!Number.isInteger(n) || n < 1024 || n > 32768 || (n & (n - 1)) !== 0) {
    throw new UsageError(`invalid block size ${n} for page checksum verification: must be a power of two from 1024 to 32768`);
  }
  return n;
}

function checkPositive(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`invalid ${name} ${n} for page checksum verification`);
  return n;
}
