/**
 * Which of a manifest's faults the ManifestReader names. pg_verifybackup
 * (src/common/parse_manifest.c) stops at the first fault in the order below;
 * a streaming reader meets them in another order (a bad checksum is known
 * only at the end, a bad file entry early), so it notes each and keeps the
 * one of the lowest rank. Split from manifest-reader.ts, which does the
 * reading. Pure.
 */
import { ManifestError } from '../errors';

// Fault categories, in the order pg_verifybackup reports them: what its
// incremental parser meets while reading (syntax, the top-level fields, the
// version, the system identifier, each file, each WAL range) before what it
// checks at the end (the last field, the Manifest-Checksum). So a broken file
// entry is named as such, not as a manifest that lacks its checksum.
export const UTF8 = 0;
export const JSON_SYNTAX = 1;
export const NOT_OBJECT = 2;
export const FIRST_KEY = 3;
export const TOP_KEY = 4;
export const VERSION = 5;
export const SYSTEM_ID = 6;
export const FILES = 7;
export const RANGES = 8;
export const LAST_KEY = 9;
export const CHECKSUM = 10;

export class ManifestFaults {
  private fault: { rank: number; message: string } | null = null;

  /** No fault yet. */
  get none(): boolean {
    return this.fault === null;
  }

  /** No fault of rank ≤ `rank` yet: a check of that rank can still decide the message. */
  open(rank: number): boolean {
    return this.fault === null || this.fault.rank > rank;
  }

  /** The message of the fault to report (without the "backup_manifest: " prefix), or null. */
  get message(): string | null {
    return this.fault?.message ?? null;
  }

  note(rank: number, message: string): void {
    if (this.fault === null || rank < this.fault.rank) this.fault = { rank, message };
  }

  /** Runs a check that throws ManifestError, noting its message at `rank`. */
  judge(rank: number, run: () => void): void {
    try {
      run();
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err;
      this.note(rank, err.message.replace(/^backup_manifest: /, ''));
    }
  }
}
