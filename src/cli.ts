#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=20
/**
 * The `pgbb` command. Every failure ends as one line on stderr
 * (`pgbb: error: …`, or one `{"event":"error","code":…}` line with --json)
 * and a non-zero exit: 128 + the signal's number for SIGINT/SIGTERM
 * (130/143, as a shell reports a process the signal killed), 1 for
 * everything else, usage errors included (as pg_basebackup). SIGINT/SIGTERM
 * abort the pipeline so that every stage cleans up (connections closed, the server's backup cancelled, the
 * target removed) before we exit; a second signal during that cleanup kills
 * the process at once.
 *
 * The shebang caps V8's young generation at 8 MiB a semi-space (Node's
 * default lets it double to 16 as a long backup's garbage accumulates):
 * otherwise peak memory grows with the run's length, i.e. with the number of
 * files. It also has the old generation grow by a fifth between full
 * collections rather than V8's adaptive up-to-4× (pgbb's live heap is small,
 * its tables are off-heap): the garbage of 100,000 files read by verify or
 * restore no longer waits in a grown heap (verify 131–143 → 120–123 MB,
 * restore 120–122 → 114–116 MB), for ~2% more collection time.
 * bench/README.md, "Memory", has the figures.
 */
import { Command, CommanderError } from 'commander';
import { UsageError } from './errors';
import { JsonReporter } from './report/json-reporter';
import { addBackupCommands } from './cli/backup-commands';
import { addReadingCommands } from './cli/backup-reading-commands';
import { fail } from './cli/run-state';

export { exitCode } from './cli/run-state';

const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('pgbb')
    .description('PostgreSQL base backups as composable streams')
    .version(VERSION, '-V, --version')
    .helpOption('-?, --help', 'show help')
    .showHelpAfterError(false)
    .allowExcessArguments(false)
    // Its messages are ours to print, as every other error is (usageFailure).
    .configureOutput({ outputError: () => {} })
    .exitOverride();

  addBackupCommands(program);
  addReadingCommands(program);
  return program;
}

/** An option parser's error as every pgbb error is: one line (a JSON `error` event with --json), a hint, exit 1 (as pg_basebackup: every failure is 1). */
function usageFailure(err: CommanderError, argv: string[], program: Command): never {
  const message = err.message.replace(/^error: /, '');
  const sub = argv.slice(2).find((a) => program.commands.some((c) => c.name() === a));
  if (argv.includes('--json')) new JsonReporter(process.stderr).error(new UsageError(message));
  else process.stderr.write(`pgbb: error: ${message}\npgbb: hint: Try "pgbb ${sub ? `${sub} ` : ''}--help" for more information.\n`);
  process.exit(1);
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help (asked for, or shown for a bare `pgbb`) and --version were printed by commander.
      if (err.exitCode === 0 || ['commander.help', 'commander.helpDisplayed', 'commander.version'].includes(err.code)) process.exit(err.exitCode);
      usageFailure(err, argv, program);
    }
    fail(err);
  }
}

if (require.main === module) {
  process.stdout.on('error', () => {}); // EPIPE is reported through the pipeline
  void main(process.argv);
}
