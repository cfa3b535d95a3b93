/**
 * Reporters: how a running backup tells a person (-P) or a script (--json)
 * where it is. One interface, three outputs:
 *
 *   --json          JsonReporter      NDJSON events on a stream (stderr)
 *   -P on a TTY     ProgressReporter  a cli-progress bar, redrawn in place
 *   -P otherwise    ProgressReporter  one plain line every 5 s and a last one
 *                                     (a log file gets a record, not 10 bar
 *                                     frames a second nor pg_basebackup's line
 *                                     per second)
 *   neither         plainReporter()   warnings only, as `pgbb: warning: …` lines
 *
 * The command feeds a reporter from the member stream: `start` and `warning`
 * events, the progress transform's reports, then `result` or `error`, and
 * always `close()` (which stops the bar's timer) in a finally.
 *
 * What reporters are given is chosen field by field — never an options
 * object — and no error message carries a password (src/net/conninfo.ts), so a
 * password cannot reach their output. Nothing is masked after the fact:
 * masking garbled messages (a password `p` made "must be su********eruser").
 */
import type { Reporter } from './types';
import { JsonReporter } from './json-reporter';
import { ProgressReporter } from './progress-reporter';

export type { BackupSummary, ProgressInfo, Reporter, StepInfo } from './types';

export interface ReporterOptions {
  /** --json */
  json?: boolean;
  /** -P */
  progress?: boolean;
  /** -v: steps as lines (pg_basebackup -v). */
  verbose?: boolean;
  /** Where to write; default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** --json wins over -P: a script reading stderr wants lines it can parse. */
export function createReporter(opts: ReporterOptions): Reporter {
  const stream = opts.stream ?? process.stderr;
  if (opts.json) return new JsonReporter(stream);
  if (opts.progress) return new ProgressReporter(stream, { tty: Boolean((stream as { isTTY?: boolean }).isTTY), verbose: opts.verbose });
  return plainReporter(stream, Boolean(opts.verbose));
}

/**
 * Without -P or --json: warnings as one line each, and with `verbose` (-v)
 * each step as pg_basebackup -v prints them; nothing else (the command
 * prints its own error line and -v summary).
 */
export function plainReporter(stream: NodeJS.WritableStream = process.stderr, verbose = false): Reporter {
  const nothing = () => {};
  return {
    start: nothing,
    progress: nothing,
    warning: (_code, message) => void stream.write(`pgbb: warning: ${message}\n`),
    step: (s) => {
      if (verbose) stream.write(`pgbb: ${s.message}\n`);
    },
    result: nothing,
    error: nothing,
    close: nothing,
  };
}

export { JsonReporter, ProgressReporter };
