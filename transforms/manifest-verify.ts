/**
 * manifest-verify: checks the backup against the server's backup_manifest
 * while it flows (observer: every event passes through unchanged).
 *
 * In:  member events. Each listed file's size and checksum are computed from
 *      its `data` events (see manifestPathOf for what is listed: tablespace
 *      members become `pg_tblspc/<oid>/…`, WAL segments and a streamed WAL
 *      archive are not listed). The manifest is `opts.manifest`, or else the
 *      `manifest` event, which normally comes after every archive.
 * Out: the same events. The comparison runs when `end` arrives and `end` is
 *      passed on only if it succeeds, so a sink never commits a backup that
 *      failed verification.
 * Result (after end): { files: files compared (without a manifest: listed
 *      files seen), bytes: bytes digested, checked: whether a manifest was
 *      there to compare against }.
 * Errors: ManifestError for a manifest that does not parse (bad checksum,
 *      JSON, version) as soon as it arrives; otherwise one ManifestError at
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
import { parseLsn } from '../src/codec/lsn';
import { CHECKSUM_ALGORITHMS, parseManifest, type ChecksumAlgorithm, type Manifest, type ManifestFile } from '../src/codec/manifest';
import { digestBytes, FileTracker, manifestPathOf } from '../src/manifest/file-tracker';
import { FileTable } from '../src/codec/file-table';
import { showPath } from '../src/codec/path-bytes';
import type { Verifier, VerifierMode, VerifierOutcome } from '../src/verifier';
import { Bounded, joinBounded, ProblemList, verifierMode } from '../src/verify/problem-list';
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
   * With `manifest` given: fail at a file's entry, before any of its bytes
   * pass, when the manifest does not list it or gives it another size
   * (restore: a sparse terabyte planted in a backup directory must not be
   * written out in full before the check at `end` refuses it).
   */
  failFast?: boolean;
  /**
   * 'fail' (default): problems fail the stream as described above.
   * 'report': problems in the backup (the manifest not parsing, files at
   * fault, no manifest when required) never fail it; every event passes
   * and outcome() lists them after end (src/verifier.ts). failFast applies
   * only in 'fail' mode.
   */
  mode?: VerifierMode;
}

export interface ManifestVerifyResult {
  files: number;
  bytes: number;
  checked: boolean;
}

/**
 * Paths pg_verifybackup also leaves alone when present but unlisted: WAL
 * fetched by streaming brings its own archive_status files.
 */
const UNLISTED_OK = /^pg_wal\//;
/** FileTable flags: a manifest entry named the file; it was reported as seen twice. */
const LISTED = 1;
const TWICE = 2;

export class ManifestVerify extends Observer implements Verifier {
  private readonly tracker: FileTracker;
  /** Every listed file seen, compactly: size and digest. */
  private readonly seen: FileTable;
  private readonly given: Manifest | null;
  private manifest: Manifest | null;
  /** The manifest's pieces as they came (src/events.ts), parsed at end. */
  private readonly pieces: ManifestEvent[] = [];
  private readonly require: boolean;
  private readonly maxListed: number;
  private readonly failFast: boolean;
  private readonly mode: VerifierMode;
  private readonly problems: ProblemList;
  /** Found while comparing, each kind in order: manifest entries at fault, files seen twice. */
  private readonly entryProblems: Bounded;
  private readonly twice: Bounded;
  private otherAlgorithm: string | null = null;
  private matched = 0;
  /** Report mode: a manifest came but did not parse. */
  private unparsed = false;
  private done: ManifestVerifyResult | null = null;

  constructor(opts: ManifestVerifyOptions = {}) {
    super();
    const alg = opts.checksumAlgorithm ?? 'CRC32C';
    if (!CHECKSUM_ALGORITHMS.includes(alg)) throw new UsageError(`invalid manifest checksum algorithm "${alg}"`);
    this.given = opts.manifest ? parseManifest(opts.manifest) : null;
    this.manifest = this.given;
    const first = this.given && [...this.given.files.values()].find((f) => f.checksumAlgorithm);
    this.tracker = new FileTracker(this.given ? (first?.checksumAlgorithm ?? 'NONE') : alg);
    this.seen = new FileTable(digestBytes(this.tracker.algorithm));
    this.require = opts.require ?? false;
    this.maxListed = opts.maxListed ?? 20;
    this.mode = verifierMode(opts.mode, 'manifest');
    this.failFast = (opts.failFast ?? false) && this.mode === 'fail';
    this.problems = new ProblemList('manifest', this.maxListed);
    this.entryProblems = new Bounded(this.maxListed);
    this.twice = new Bounded(this.maxListed);
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
    if (this.failFast && this.given && ev.kind === 'file') this.checkEntry(ev.path, ev.size);
    this.tracker.entry(ev.path, ev.kind, ev.mtime);
  }

  protected override onData(ev: DataEvent): void {
    this.tracker.data(ev.offset, ev.chunk);
  }

  protected override onEntryEnd(): void {
    const f = this.tracker.entryEnd();
    if (!f) return;
    const { index, added } = this.seen.add(f.path);
    if (!added && !this.seen.hasFlag(index, TWICE)) {
      this.seen.setFlag(index, TWICE);
      this.twice.add(`"${showPath(f.path)}" appears more than once in the backup`);
    }
    // The last copy counts, as it would in a target written in stream order.
    this.seen.setSize(index, f.size);
    if (f.checksum !== undefined) this.seen.setDigestHex(index, f.checksum);
  }

  protected override onManifest(ev: ManifestEvent): Verdict {
    // Held until whole and checked: a manifest that fails its own checksum never reaches a sink.
    if (this.given) return;
    this.pieces.push(ev);
    return HOLD;
  }

  protected override onEnd(ev: EndEvent): void {
    if (!this.given && this.pieces.length) {
      this.manifest = this.parseStreamed();
      for (const piece of this.pieces) this.push(piece);
    }
    this.verify(ev);
  }

  /** The streamed manifest; in report mode a manifest that does not parse is a problem, and nothing is compared. */
  private parseStreamed(): Manifest | null {
    try {
      return parseManifest(Buffer.concat(this.pieces.map((p) => p.data)));
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err;
      this.problems.add(err.message);
      if (this.mode === 'fail') throw err;
      this.unparsed = true;
      return null;
    }
  }

  private checkEntry(member: string, size: number): void {
    const p = manifestPathOf(this.archive?.kind ?? 'base', this.archive?.name ?? '', member);
    if (p === null || UNLISTED_OK.test(p)) return;
    const f = this.given!.files.get(p);
    if (!f) throw new ManifestError(`${MISMATCH}"${showPath(p)}" is not in the manifest, refusing it before reading it`);
    if (f.size !== size) throw new ManifestError(`${MISMATCH}"${showPath(p)}" has size ${size} in the backup but ${f.size} in the manifest, refusing it before reading it`);
  }

  /** One manifest entry against what the backup held. */
  private compare(f: ManifestFile): void {
    const i = this.seen.find(f.path);
    if (i < 0) return this.entryProblems.add(`"${showPath(f.path)}" is in the manifest but not in the backup`);
    this.seen.setFlag(i, LISTED);
    this.matched++;
    const size = this.seen.size(i);
    if (size !== f.size) return this.entryProblems.add(`"${showPath(f.path)}" has size ${size} in the backup but ${f.size} in the manifest`);
    if (!f.checksumAlgorithm || f.checksumAlgorithm === 'NONE' || !f.checksum) return;
    const alg = this.tracker.algorithm;
    if (f.checksumAlgorithm !== alg) this.otherAlgorithm ??= f.checksumAlgorithm;
    else if (this.seen.digestHex(i) !== f.checksum) {
      this.entryProblems.add(`"${showPath(f.path)}" has ${f.checksumAlgorithm} ${this.seen.digestHex(i)} in the backup but ${f.checksum} in the manifest`);
    }
  }

  private verify(end: EndEvent): void {
    const m = this.manifest;
    const seen = this.seen;
    if (!m) {
      if (this.require && !this.unparsed) {
        const missing = 'no backup_manifest to verify the backup against';
        this.problems.add(missing);
        if (this.mode === 'fail') throw new ManifestError(missing);
      }
      this.done = { files: seen.count, bytes: this.tracker.bytes, checked: false };
      return;
    }
    for (const f of m.files.values()) this.compare(f);
    const extras = new Bounded(this.maxListed);
    for (let i = 0; i < seen.count; i++) {
      if (seen.hasFlag(i, LISTED)) continue;
      const path = seen.path(i);
      if (!UNLISTED_OK.test(path)) extras.add(`"${showPath(path)}" is in the backup but not in the manifest`);
    }
    const front = new Bounded(3);
    const last = m.walRanges[0];
    if (last && (last.timeline !== end.timeline || parseLsn(last.endLsn) !== parseLsn(end.endLsn))) {
      front.add(`the manifest's WAL ends at ${last.endLsn} on timeline ${last.timeline}, the backup at ${end.endLsn} on timeline ${end.timeline}`);
    }
    const s = this.startEvent;
    if (s && m.systemIdentifier !== undefined && m.systemIdentifier !== s.systemIdentifier) {
      front.add(`the manifest is for system ${m.systemIdentifier}, the server is ${s.systemIdentifier}`);
    }
    if (this.otherAlgorithm) {
      front.add(`the manifest's checksums are ${this.otherAlgorithm} but ${this.tracker.algorithm} was computed (set checksumAlgorithm to match MANIFEST_CHECKSUMS)`);
    }
    const { shown, more } = joinBounded([front, this.entryProblems, extras, this.twice], this.maxListed);
    for (const p of shown) this.problems.add(MISMATCH + p);
    this.problems.addUnlisted(more);
    if (shown.length && this.mode === 'fail') throw new ManifestError(`${MISMATCH}${shown.join('; ')}${more ? `; and ${more} more` : ''}`);
    this.done = { files: this.matched, bytes: this.tracker.bytes, checked: true };
  }
}

export function manifestVerify(opts: ManifestVerifyOptions = {}): ManifestVerify {
  return new ManifestVerify(opts);
}
