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
import { Transform } from 'node:stream';
import type { ArchiveKind, BackupEvent, EndEvent, ManifestEvent, StartEvent } from '../src/events';
import { ManifestError, UsageError } from '../src/errors';
import { parseLsn } from '../src/codec/lsn';
import { CHECKSUM_ALGORITHMS, parseManifest, type ChecksumAlgorithm, type Manifest } from '../src/codec/manifest';
import { FileTracker, manifestPathOf } from '../src/manifest/file-tracker';
import { showPath } from '../src/codec/path-bytes';
import type { Verifier, VerifierMode, VerifierOutcome } from '../src/verifier';
import { ProblemList, verifierMode } from '../src/verify/problem-list';

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

export class ManifestVerify extends Transform implements Verifier {
  private readonly tracker: FileTracker;
  private readonly given: Manifest | null;
  private manifest: Manifest | null;
  /** The manifest's pieces as they came (src/events.ts), parsed at end. */
  private readonly pieces: ManifestEvent[] = [];
  private start: StartEvent | null = null;
  private readonly require: boolean;
  private readonly maxListed: number;
  private readonly failFast: boolean;
  private archiveKind: ArchiveKind = 'base';
  private archiveName = '';
  /** Report mode: a manifest came but did not parse. */
  private unparsed = false;
  private done: ManifestVerifyResult | null = null;
  private readonly mode: VerifierMode;
  private readonly problems: ProblemList;

  constructor(opts: ManifestVerifyOptions = {}) {
    super({ objectMode: true, highWaterMark: 16 });
    const alg = opts.checksumAlgorithm ?? 'CRC32C';
    if (!CHECKSUM_ALGORITHMS.includes(alg)) throw new UsageError(`invalid manifest checksum algorithm "${alg}"`);
    this.given = opts.manifest ? parseManifest(opts.manifest) : null;
    this.manifest = this.given;
    const first = this.given && [...this.given.files.values()].find((f) => f.checksumAlgorithm);
    this.tracker = new FileTracker(this.given ? (first?.checksumAlgorithm ?? 'NONE') : alg);
    this.require = opts.require ?? false;
    this.maxListed = opts.maxListed ?? 20;
    this.mode = verifierMode(opts.mode, 'manifest');
    this.failFast = (opts.failFast ?? false) && this.mode === 'fail';
    this.problems = new ProblemList('manifest', this.maxListed);
  }

  /** What the check found (src/verifier.ts); each problem as its error's message says it. */
  outcome(): VerifierOutcome {
    return this.problems.outcome();
  }

  /** Set once `end` has passed verification (report mode: once `end` came, whatever was found). */
  get result(): ManifestVerifyResult | null {
    return this.done;
  }

  override _transform(ev: BackupEvent, _enc: BufferEncoding, cb: (err?: Error | null, ev?: BackupEvent) => void): void {
    try {
      switch (ev.type) {
        case 'data':
          this.tracker.data(ev.offset, ev.chunk);
          break;
        case 'entry':
          if (this.failFast && this.given && ev.kind === 'file') this.checkEntry(ev.path, ev.size);
          this.tracker.entry(ev.path, ev.kind, ev.mtime);
          break;
        case 'entry-end':
        case 'archive-end':
          this.tracker.entryEnd();
          break;
        case 'archive':
          this.archiveKind = ev.kind;
          this.archiveName = ev.name;
          this.tracker.archive(ev.kind, ev.name);
          break;
        case 'start':
          this.start = ev;
          break;
        case 'manifest':
          // Held until whole and checked: a manifest that fails its own checksum never reaches a sink.
          if (!this.given) return void (this.pieces.push(ev), cb());
          break;
        case 'end':
          if (!this.given && this.pieces.length) {
            this.manifest = this.parseStreamed();
            for (const piece of this.pieces) this.push(piece);
          }
          this.verify(ev);
          break;
      }
    } catch (err) {
      return cb(err as Error);
    }
    cb(null, ev);
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
    const p = manifestPathOf(this.archiveKind, this.archiveName, member);
    if (p === null || UNLISTED_OK.test(p)) return;
    const f = this.given!.files.get(p);
    if (!f) throw new ManifestError(`backup does not match its manifest: "${showPath(p)}" is not in the manifest, refusing it before reading it`);
    if (f.size !== size) throw new ManifestError(`backup does not match its manifest: "${showPath(p)}" has size ${size} in the backup but ${f.size} in the manifest, refusing it before reading it`);
  }

  private verify(end: EndEvent): void {
    const t = this.tracker;
    t.entryEnd();
    const m = this.manifest;
    if (!m) {
      if (this.require && !this.unparsed) {
        const missing = 'no backup_manifest to verify the backup against';
        this.problems.add(missing);
        if (this.mode === 'fail') throw new ManifestError(missing);
      }
      this.done = { files: t.files.size, bytes: t.bytes, checked: false };
      return;
    }
    const problems: string[] = [];
    let otherAlgorithm: string | null = null;
    let matched = 0;
    for (const f of m.files.values()) {
      const seen = t.files.get(f.path);
      if (seen) matched++;
      if (!seen) {
        problems.push(`"${showPath(f.path)}" is in the manifest but not in the backup`);
      } else if (seen.size !== f.size) {
        problems.push(`"${showPath(f.path)}" has size ${seen.size} in the backup but ${f.size} in the manifest`);
      } else if (f.checksumAlgorithm && f.checksumAlgorithm !== 'NONE' && f.checksum) {
        if (f.checksumAlgorithm !== t.algorithm) otherAlgorithm ??= f.checksumAlgorithm;
        else if (seen.checksum !== f.checksum) problems.push(`"${showPath(f.path)}" has ${f.checksumAlgorithm} ${seen.checksum} in the backup but ${f.checksum} in the manifest`);
      }
    }
    for (const path of t.files.keys()) {
      if (!m.files.has(path) && !UNLISTED_OK.test(path)) problems.push(`"${showPath(path)}" is in the backup but not in the manifest`);
    }
    for (const path of new Set(t.duplicates)) problems.push(`"${showPath(path)}" appears more than once in the backup`);
    if (otherAlgorithm) {
      problems.unshift(`the manifest's checksums are ${otherAlgorithm} but ${t.algorithm} was computed (set checksumAlgorithm to match MANIFEST_CHECKSUMS)`);
    }
    const s = this.start;
    if (s && m.systemIdentifier !== undefined && m.systemIdentifier !== s.systemIdentifier) {
      problems.unshift(`the manifest is for system ${m.systemIdentifier}, the server is ${s.systemIdentifier}`);
    }
    const last = m.walRanges[0];
    if (last && (last.timeline !== end.timeline || parseLsn(last.endLsn) !== parseLsn(end.endLsn))) {
      problems.unshift(`the manifest's WAL ends at ${last.endLsn} on timeline ${last.timeline}, the backup at ${end.endLsn} on timeline ${end.timeline}`);
    }
    for (const p of problems) this.problems.add(MISMATCH + p);
    if (problems.length && this.mode === 'fail') {
      const shown = problems.slice(0, this.maxListed);
      const more = problems.length - shown.length;
      throw new ManifestError(`${MISMATCH}${shown.join('; ')}${more ? `; and ${more} more` : ''}`);
    }
    this.done = { files: matched, bytes: t.bytes, checked: true };
  }
}

export function manifestVerify(opts: ManifestVerifyOptions = {}): ManifestVerify {
  return new ManifestVerify(opts);
}
