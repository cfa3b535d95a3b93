/**
 * A verifier's problems, bounded: the first `limit` kept word for word, the
 * rest only counted (a backup with a million bad files must not hold a
 * million messages). Read out as a VerifierOutcome (src/verifier.ts).
 */
import { UsageError } from '../errors';
import type { VerifierOutcome } from '../verifier';

export class ProblemList {
  private readonly kept: string[] = [];
  private extra = 0;

  constructor(
    readonly check: string,
    private readonly limit = 20,
  ) {}

  add(problem: string): void {
    if (this.kept.length < this.limit) this.kept.push(problem);
    else this.extra++;
  }

  /** Counts problems beyond the kept ones (already summed elsewhere). */
  addUnlisted(n: number): void {
    this.extra += n;
  }

  get count(): number {
    return this.kept.length + this.extra;
  }

  outcome(): VerifierOutcome {
    return { check: this.check, problems: [...this.kept], more: this.extra };
  }
}

/** The mode a verifier was given, checked: 'fail' unless told. */
export function verifierMode(mode: string | undefined, check: string): 'fail' | 'report' {
  if (mode === undefined || mode === 'fail' || mode === 'report') return mode ?? 'fail';
  throw new UsageError(`invalid ${check} verifier mode "${mode}": must be "fail" or "report"`);
}
