/**
 * manifest-verify: checks the backup against the server's backup_manifest
 * while it flows (observer: every event passes through unchanged).
 *
 * In:  member events. Each listed file's size and checksum are computed from
 *      its `data` events (see manifestPathOf for what is listed: tablespace
 *      members become `pg_tblspc/<oid>/…`, WAL segments and a streamed WAL
 *      archive are not listed). The manifest is `opts.manifest`, or else the
 *      `manifest` event, which normally comes after every archive.
 * Out: the same events. Manifest entries are compared as they stream by;
 *      the manifest's pieces pass as they come, except that the latest is
 *      held until the next arrives or `end` has checked the manifest's own
 *      SHA-256 (a single-piece manifest that fails it never goes on). The
 *      verdict comes at `end`, which is passed on only if it succeeds, so a
 *      sink never commits a backup that failed verification.
 * Memory: per listed file its path, size and digest in one compact table
 *      (src/manifest/manifest-comparison.ts; with `listedSizes` that very
 *      table, not a second one), the manifest piece held, and
 *      the entry being read (src/codec/manifest-reader.ts) — no object per
 *      file, and never the manifest whole (unless `opts.manifest` is it).
 * Result (after end): { files: files compared (without a manifest: listed
 *      files seen), bytes: bytes digested, checked: whether a manifest was
 *      there to compare against }.
 * Errors: ManifestError for a manifest that does not parse (bad checksum,
 *      JSON, version) once it is whole; otherwise one ManifestError at
 *      `end` listing every file at fault (size, checksum, missing, extra),
 *      capped with "and N more". Without any manifest nothing is compared,
 *      unless `require` is set. In mode 'report' none of these fail the
 *      stream: every event passes and outcome() lists them (src/verifier.ts).
 *
 * Checksums are computed while data flows, before a late manifest says which
 * algorithm it used: `checksumAlgorithm` must match what the server was asked
 * for (MANIFEST_CHECKSUMS, default CRC32C). With `opts.manifest` it is taken
 * from the manifest itself.
 */
import type { ArchiveEvent, DataEvent, EndEvent, EntryEvent, ManifestEvent } from '../src/events';
import { ManifestError, UsageError } from '../src/errors';
import { CHECKSUM_ALGORITHMS, ManifestReader, type ChecksumAlgorithm, type ManifestSummary } from '../src/codec/manifest';
import { FileTracker, manifestPathOf } from '../src/manifest/file-tracker';
import { ignoredPaths, ManifestComparison, UNLISTED_OK } from '../src/manifest/manifest-comparison';
import { ScratchFile } from '../src/io/scratch-file';
import { FileTable } from '../src/codec/file-table';
import { showPath } from '../src/codec/path-bytes';
import type { Verifier, VerifierMode, VerifierOutcome } from '../src/verifier';
import { ProblemList, verifierMode } from '../src/verify/problem-list';
import { HOLD, Observer, type Verdict } from './observer';

const MISMATCH = 'backup does not match its manifest: ';

export interface ManifestVerifyOptions {
  /** The manifest to check against; otherwise the stream's `manifest` event. */
  manifest?: Buffer;
  /** Algorithm to compute while streaming when the manifest comes later (default CRC32C). */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** Fail at `end` when no manifest arrived (default false: pass, with checked = false). */
  require?: boolean;
  /** How many problems the error message names before "and N more" (default 20). */
  maxListed?: number;
  /**
   * With `manifest` or `listedSizes` given: fail at a file's entry, before
   * any of its bytes pass, when the manifest does not list it or gives it
   * another size (restore: a sparse terabyte planted in a backup directory
   * must not be written out in full before the check at `end` refuses it).
   */
  failFast?: boolean;
  /**
   * The sizes the manifest lists, read ahead of the stream
   * (src/manifest/manifest-preview.ts) when the manifest itself is left to
   * come in the stream: what failFast checks entries against. The check
   * then records the files seen in it (their digests added; a size is the
   * listed one until the file is seen): the caller hands it over.
   */
  listedSizes?: FileTable;
  /**
   * 'fail' (default): problems fail the stream as described above.
   * 'report': problems in the backup (the manifest not parsing, files at
   * fault, no manifest when required) never fail it; every event passes
   * and outcome() lists them after end (src/verifier.ts). failFast applies
   * only in 'fail' mode.
   */
  mode?: VerifierMode;
  /** Paths left out of the comparison, each with what is below it (pg_verifybackup -i). */
  ignore?: string[];
  /** Compare sizes only: no checksum is computed or compared (pg_verifybackup -s). */
  skipChecksums?: boolean;
  /** A later stage (the chunk map) wants every data event's CRC32C: leave it on the events (src/codec/data-crc.ts), so that each byte is checksummed once. */
  shareCrc?: boolean;
}

export interface ManifestVerifyResult {
  /** Files the manifest lists and the backup holds, those left unchecked (`leftAlone`) included. */
  files: number;
  leftAlone: number;
  bytes: number;
  checked: boolean;
}

export class ManifestVerify extends Observer implements Verifier {
  private readonly tracker: FileTracker;
  private readonly comparison: ManifestComparison;
  /** The manifest given up front, read again at end; its listed sizes when failing fast. */
  readonly given: Buffer | null;
  private readonly givenSizes: FileTable | null;
  /** The streamed manifest, read as its pieces come; the latest piece, held. */
  private reader: ManifestReader | null = null;
  private held: ManifestEvent | null = null;
  private readonly require: boolean;
  private readonly maxListed: number;
  private readonly failFast: boolean;
  private readonly mode: VerifierMode;
  private readonly problems: ProblemList;
  /** A manifest came but did not parse (report mode). */
  private unparsed = false;
  private done: ManifestVerifyResult | null = null;
  /** The seen files' paths and records past the first pages (memory flat in file count); closed once compared, or on destroy. */
  private readonly spill = new ScratchFile('the files seen');
  /** With a manifest given up front: the sum of the sizes it lists (a total for progress); else 0. */
  listedBytes = 0;

  constructor(opts: ManifestVerifyOptions = {}) {
    super();
    const alg = opts.checksumAlgorithm ?? 'CRC32C';
    if (!CHECKSUM_ALGORITHMS.includes(alg)) throw new UsageError(`invalid manifest checksum algorithm "${alg}"`);
    this.require = opts.require ?? false;
    this.maxListed = opts.maxListed ?? 20;
    this.mode = verifierMode(opts.mode, 'manifest');
    this.failFast = (opts.failFast ?? false) && this.mode === 'fail';
    this.problems = new ProblemList('manifest', this.maxListed);
    this.given = opts.manifest ?? null;
    let algorithm: ChecksumAlgorithm = alg;
    this.givenSizes = this.failFast && !this.given ? (opts.listedSizes ?? null) : null;
    if (this.given) {
      // Read once now: it must parse, it names the algorithm, and failing fast needs its sizes.
      let first: ChecksumAlgorithm | undefined;
      const sizes = this.failFast ? new FileTable(0) : null;
      const r = new ManifestReader({
        onFile: (f) => {
          first ??= f.checksumAlgorithm;
          this.listedBytes += f.size;
          if (sizes) sizes.setSize(sizes.add(f.path).index, f.size);
        },
      });
      r.write(this.given);
      r.end();
      algorithm = first ?? 'NONE';
      this.givenSizes = sizes;
    }
    if (opts.skipChecksums) algorithm = 'NONE';
    this.tracker = new FileTracker(algorithm, opts.shareCrc);
    // The failFast table's paths are the ones seen files are recorded under: one table, not two.
    const scope = { ignored: ignoredPaths(opts.ignore ?? []), skipChecksums: opts.skipChecksums };
    this.comparison = new ManifestComparison(algorithm, this.maxListed, scope, this.givenSizes ?? undefined, this.spill);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.spill.close();
    super._destroy(err, callback);
  }

  /** Set once `end` has passed verification (report mode: once `end` came, whatever was found). */
  get result(): ManifestVerifyResult | null {
    return this.done;
  }

  /** What the check found (src/verifier.ts); each problem as its error's message says it. */
  outcome(): VerifierOutcome {
    return this.problems.outcome();
  }

  protected override onArchive(ev: ArchiveEvent): void {
    this.tracker.archive(ev.kind, ev.name);
  }

  protected override onEntry(ev: EntryEvent): void {
    if (this.givenSizes && ev.kind === 'file') this.checkEntry(ev.path, ev.size);
    this.tracker.entry(ev.path, ev.kind, ev.mtime);
  }

  protected override onData(ev: DataEvent): void {
    this.tracker.data(ev);
  }

  protected override onEntryEnd(): void {
    const f = this.tracker.entryEnd();
    if (f) this.comparison.record(f);
  }

  protected override onManifest(ev: ManifestEvent): Verdict {
    if (this.given) return;
    if (this.unparsed) {
      // Report mode, after a fault: passed on in order, no longer read.
      if (this.held) this.push(this.held);
      this.held = null;
      return;
    }
    const c = this.comparison;
    this.reader ??= new ManifestReader({ paths: c.paths, onFile: (f) => c.compare(f) });
    // Held one piece behind: the last must wait for the checksum at end.
    if (this.held) this.push(this.held);
    this.held = ev;
    try {
      this.reader.write(ev.data);
    } catch (err) {
      this.manifestFault(err);
    }
    return HOLD;
  }

  protected override onEnd(end: EndEvent): void {
    let summary: ManifestSummary | null = null;
    if (this.given) {
      const c = this.comparison;
      const r = new ManifestReader({ paths: c.paths, onFile: (f) => c.compare(f) });
      r.write(this.given);
      summary = r.end();
    } else if (this.reader && !this.unparsed) {
      try {
        summary = this.reader.end();
      } catch (err) {
        this.manifestFault(err);
      }
    }
    if (this.held) this.push(this.held);
    this.held = null;
    try {
      this.verify(end, summary);
    } finally {
      this.spill.close();
    }
  }

  /** A streamed manifest that does not parse: the stream fails, or (report mode) it is the one problem. */
  private manifestFault(err: unknown): void {
    if (!(err instanceof ManifestError)) throw err;
    this.problems.add(err.message);
    if (this.mode === 'fail') throw err;
    this.unparsed = true;
  }

  private checkEntry(member: string, size: number): void {
    const p = manifestPathOf(this.archive?.kind ?? 'base', this.archive?.name ?? '', member);
    if (p === null || UNLISTED_OK.test(p)) return;
    const sizes = this.givenSizes!;
    const i = sizes.find(p);
    if (i < 0) throw new ManifestError(`${MISMATCH}"${showPath(p)}" is not in the manifest, refusing it before reading it`);
    if (sizes.size(i) !== size) throw new ManifestError(`${MISMATCH}"${showPath(p)}" has size ${size} in the backup but ${sizes.size(i)} in the manifest, refusing it before reading it`);
  }

  private verify(end: EndEvent, m: ManifestSummary | null): void {
    const c = this.comparison;
    if (!m) {
      if (this.require && !this.unparsed) {
        const missing = 'no backup_manifest to verify the backup against';
        this.problems.add(missing);
        if (this.mode === 'fail') throw new ManifestError(missing);
      }
      this.done = { files: c.files, leftAlone: 0, bytes: this.tracker.bytes, checked: false };
      return;
    }
    const { shown, more } = c.finish(m, this.startEvent, end);
    for (const p of shown) this.problems.add(MISMATCH + p);
    this.problems.addUnlisted(more);
    if (shown.length && this.mode === 'fail') throw new ManifestError(`${MISMATCH}${shown.join('; ')}${more ? `; and ${more} more` : ''}`);
    this.done = { files: c.matched + c.leftAlone, leftAlone: c.leftAlone, bytes: this.tracker.bytes, checked: true };
  }
}

export function manifestVerify(opts: ManifestVerifyOptions = {}): ManifestVerify {
  return new ManifestVerify(opts);
}
