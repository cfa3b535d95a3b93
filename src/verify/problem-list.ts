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

/** Problems of one kind, in the order found: the first `limit` kept, the rest counted. */
export class Bounded {
  readonly kept: string[] = [];
  more = 0;

  constructor(private readonly limit: number) {}

  add(problem: string): void {
    if (this.kept.length < this.limit) this.kept.push(problem);
    else this.more++;
  }
}

/** Several kinds in turn, as one list: the first `limit` problems and how many follow them. */
export function joinBounded(kinds: Bounded[], limit: number): { shown: string[]; more: number } {
  const all = kinds.flatMap((k) => k.kept);
  const shown = all.slice(0, limit);
  const more = all.length - shown.length + kinds.reduce((n, k) => n + k.more, 0);
  return { shown, more };
}
