/**
 * -j N's bound, apart from the parallel source: a plan checks it before
 * anything is loaded or touched (src/pipeline/backup-plan.ts), and the
 * parallel source's code is loaded only when -j is given.
 */
import { UsageError } from '../errors';

/** The most workers one backup opens; PostgreSQL's prototype fell over ("too many open files") long before thousands. */
export const MAX_JOBS = 64;

export function checkJobs(jobs: number): void {
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > MAX_JOBS) throw new UsageError(`invalid number of parallel jobs "${jobs}", must be between 1 and ${MAX_JOBS}`);
}
