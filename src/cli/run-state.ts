/**
 * What every subcommand's action shares while it runs: the reporter errors
 * go through (with --json, a failure is a JSON line too), the exit code a
 * failure maps to, and the AbortSignal that SIGINT/SIGTERM raise.
 */
import { constants as osConstants } from 'node:os';
import { asPgbbError, describeError, InterruptedError } from '../errors';
import type { Reporter } from '../report/reporters';
import { JsonReporter } from '../report/json-reporter';

/** The reporter of a running command: with --json, errors are JSON lines too. */
let activeReporter: Reporter | null = null;

export function setActiveReporter(r: Reporter | null): void {
  activeReporter = r;
}

/** Ends the process for `err`: one line on stderr (or one JSON error line), its exit code. */
export function fail(failure: unknown): never {
  const err = asPgbbError(failure);
  if (activeReporter) {
    activeReporter.error(err);
    activeReporter.close();
  }
  const line = describeError(err);
  if (!(activeReporter instanceof JsonReporter)) process.stderr.write(`pgbb: error: ${line}\n`);
  process.exit(exitCode(err));
}

export function exitCode(err: unknown): number {
  if (err instanceof InterruptedError && err.signal) return 128 + (osConstants.signals[err.signal] ?? 0);
  return 1;
}

export function abortOnSignals(): AbortController {
  const ac = new AbortController();
  // SIGHUP too: what a closed terminal or ssh session sends; without a handler the process dies where it stands, leaving what it made.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // once: a second signal finds no handler and ends the process the default way.
    process.once(sig, () => ac.abort(new InterruptedError(`interrupted by ${sig}`, sig)));
  }
  return ac;
}
