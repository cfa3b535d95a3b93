/**
 * What the backup held against what its manifest lists, one file at a time
 * (used by transforms/manifest-verify.ts): files are recorded as they end,
 * compactly (src/codec/file-table.ts: path → size and digest, no object per
 * file); manifest entries are compared as they stream by, once every file
 * is recorded (the manifest follows the archives, src/events.ts); finish()
 * adds the files no entry named and the header checks, and lists the
 * problems in the order pgbb always gave them, bounded.
 */
import { parseLsn } from '../codec/lsn';
import { FileTable, type PageSpill } from '../codec/file-table';
import { showPath } from '../codec/path-bytes';
import type { ManifestFile, ManifestSummary, PathSet } from '../codec/manifest';
import type { EndEvent, StartEvent } from '../events';
import { Bounded, joinBounded } from '../verify/problem-list';
import { digestBytes, type DigestedFile } from './file-tracker';
import type { ChecksumAlgorithm } from '../codec/manifest';

/**
 * Paths pg_verifybackup also leaves alone when present but unlisted: WAL
 * fetched by streaming brings its own archive_status files.
 */
export const UNLISTED_OK = /^pg_wal\//;

export interface ComparisonScope {
  /** A path left out of the comparison, both ways (listed and not present, present and not listed). */
  ignored?: (path: string) => boolean;
  /** Compare sizes only, not checksums. */
  skipChecksums?: boolean;
}

/** pg_verifybackup's -i: each path and everything below it. */
export function ignoredPaths(paths: string[]): ((path: string) => boolean) | undefined {
  if (!paths.length) return undefined;
  const norm = paths.map((p) => p.replace(/\/+$/, '').replace(/^\.\//, ''));
  return (path) => norm.some((p) => path === p || path.startsWith(`${p}/`));
}

/** FileTable flags: a manifest entry named the file; it was reported as seen twice. */
const LISTED = 1;
const TWICE = 2;
/** The backup held the file (a table filled ahead with the listed paths holds the others too). */
const SEEN = 4;
/** Listed ahead, not in the backup, and named by a streamed entry: a second entry is a duplicate. */
const NAMED = 8;

export class ManifestComparison {
  private readonly seen: FileTable;
  /** Entries naming no file seen: only to refuse one listed twice. */
  private readonly absent = new FileTable(0);
  private readonly entryProblems: Bounded;
  private readonly twice: Bounded;
  private otherAlgorithm: string | null = null;
  /** Manifest entries that named a file seen. */
  matched = 0;
  private seenCount = 0;
  /** Files the backup holds that -i (or pg_verifybackup's own defaults) left unchecked. */
  leftAlone = 0;

  constructor(
    readonly algorithm: ChecksumAlgorithm,
    private readonly maxListed: number,
    /** pg_verifybackup's -i (a path and what is under it) and -s (sizes only). */
    private readonly scope: ComparisonScope = {},
    /**
     * The manifest's paths and sizes read ahead (restore's failFast table,
     * src/manifest/manifest-preview.ts): files seen are recorded in it
     * rather than in a second table repeating every path. A size there is
     * the listed one until the file is seen, then the size seen.
     */
    listed?: FileTable,
    /** Where the seen files' paths and records go past the first pages (a table of its own only; src/io/scratch-file.ts). */
    spill?: PageSpill,
  ) {
    this.seen = listed ? listed.withDigests(digestBytes(algorithm)) : new FileTable(digestBytes(algorithm), { spill });
    this.entryProblems = new Bounded(maxListed);
    this.twice = new Bounded(maxListed);
  }

  /** Listed files seen so far. */
  get files(): number {
    return this.seenCount;
  }

  record(f: DigestedFile): void {
    const { index } = this.seen.add(f.path);
    if (!this.seen.hasFlag(index, SEEN)) {
      this.seen.setFlag(index, SEEN);
      this.seenCount++;
    } else if (!this.seen.hasFlag(index, TWICE)) {
      this.seen.setFlag(index, TWICE);
      this.twice.add(`"${showPath(f.path)}" appears more than once in the backup`);
    }
    // The last copy counts, as it would in a target written in stream order.
    this.seen.setSize(index, f.size);
    if (f.checksum !== undefined) this.seen.setDigestHex(index, f.checksum);
  }

  /** For the manifest reader: refuses a path a second entry names, without a set of its own. */
  readonly paths: PathSet = {
    add: (path) => {
      const seen = this.seen;
      const i = seen.find(path);
      if (i < 0) return this.absent.add(path).added;
      if (seen.hasFlag(i, SEEN)) return !seen.hasFlag(i, LISTED);
      // Listed ahead, not in the backup: as if in `absent`.
      if (seen.hasFlag(i, NAMED)) return false;
      seen.setFlag(i, NAMED);
      return true;
    },
  };

  /** One manifest entry against what the backup held. */
  compare(f: ManifestFile): void {
    const seen = this.seen;
    const found = seen.find(f.path);
    const i = found >= 0 && seen.hasFlag(found, SEEN) ? found : -1;
    if (this.scope.ignored?.(f.path)) {
      if (i >= 0) this.leftAlone++;
      return;
    }
    if (i < 0) return this.entryProblems.add(`"${showPath(f.path)}" is in the manifest but not in the backup`);
    seen.setFlag(i, LISTED);
    this.matched++;
    const size = seen.size(i);
    if (size !== f.size) return this.entryProblems.add(`"${showPath(f.path)}" has size ${size} in the backup but ${f.size} in the manifest`);
    if (this.scope.skipChecksums || !f.checksumAlgorithm || f.checksumAlgorithm === 'NONE' || !f.checksum) return;
    if (f.checksumAlgorithm !== this.algorithm) this.otherAlgorithm ??= f.checksumAlgorithm;
    else if (seen.digestHex(i) !== f.checksum) {
      this.entryProblems.add(`"${showPath(f.path)}" has ${f.checksumAlgorithm} ${seen.digestHex(i)} in the backup but ${f.checksum} in the manifest`);
    }
  }

  /** Every problem, in order, the first maxListed of them and how many more. */
  finish(m: ManifestSummary, start: StartEvent | null, end: EndEvent): { shown: string[]; more: number } {
    const seen = this.seen;
    const extras = new Bounded(this.maxListed);
    for (let i = 0; i < seen.count; i++) {
      if (seen.hasFlag(i, LISTED) || !seen.hasFlag(i, SEEN)) continue;
      const path = seen.path(i);
      if (!UNLISTED_OK.test(path) && !this.scope.ignored?.(path)) extras.add(`"${showPath(path)}" is in the backup but not in the manifest`);
    }
    const front = new Bounded(3);
    const last = m.walRanges[0];
    // 0/0: the source could not say where the backup ends (its manifest is elsewhere, -m).
    if (last && parseLsn(end.endLsn) !== 0n && (last.timeline !== end.timeline || parseLsn(last.endLsn) !== parseLsn(end.endLsn))) {
      front.add(`the manifest's WAL ends at ${last.endLsn} on timeline ${last.timeline}, the backup at ${end.endLsn} on timeline ${end.timeline}`);
    }
    if (start && m.systemIdentifier !== undefined && m.systemIdentifier !== start.systemIdentifier) {
      front.add(`the manifest is for system ${m.systemIdentifier}, the server is ${start.systemIdentifier}`);
    }
    if (this.otherAlgorithm) {
      front.add(`the manifest's checksums are ${this.otherAlgorithm} but ${this.algorithm} was computed (set checksumAlgorithm to match MANIFEST_CHECKSUMS)`);
    }
    return joinBounded([front, this.entryProblems, extras, this.twice], this.maxListed);
  }
}
