/**
 * The verifier contract: a check that observes the member stream and passes
 * every event on unchanged (manifest-verify, page-checksum-verify,
 * wal-verify; more to come).
 *
 * mode 'fail' (default, backup and restore): the first problem that makes
 *   the backup unusable fails the stream with an error naming it, before
 *   anything later could commit.
 * mode 'report' (`pgbb verify`): problems in the backup never fail the
 *   stream; they are collected (bounded, with a count of the rest) and read
 *   from outcome() once the stream has ended, and the pipeline builder
 *   decides what they mean for the run. Errors that are not about the
 *   backup's contents (I/O, an abort) still fail the stream.
 */
import type { Duplex } from 'node:stream';

export type VerifierMode = 'fail' | 'report';

export interface VerifierOutcome {
  /** What was checked, for messages: 'manifest', 'page checksums', 'WAL'. */
  check: string;
  /** Each problem on one line, naming its file, block or LSN. */
  problems: string[];
  /** Problems beyond those listed. */
  more: number;
}

export interface Verifier extends Duplex {
  /** Valid once the stream has ended (or failed): what the check found. */
  outcome(): VerifierOutcome;
}
