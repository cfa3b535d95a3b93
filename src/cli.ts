#!/usr/bin/env node
/**
 * The `pgbb` command. Every failure ends as one line on stderr
 * (`pgbb: error: …`) and a non-zero exit; SIGINT/SIGTERM abort the pipeline so
 * that every stage cleans up before we exit.
 */
import { Command, CommanderError, Option } from 'commander';
import { backupCommand } from './commands/backup';
import { parseMaxRate, parseTablespaceMapping } from './commands/options';
import { describeError, InterruptedError, UsageError } from './errors';

const VERSION = '0.1.0';

function fail(err: unknown): never {
  process.stderr.write(`pgbb: error: ${describeError(err)}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
}

function abortOnSignals(): AbortController {
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => ac.abort(new InterruptedError(`interrupted by ${sig}`)));
  }
  return ac;
}

function connectionOptions(program: Command): Command {
  return program
    .option('-d, --dbname <conninfo>', 'connection string (libpq key=value or postgres:// URI)')
    .option('-h, --host <host>', 'database server host or socket directory')
    .option('-p, --port <port>', 'database server port')
    .option('-U, --username <name>', 'connect as the specified database user')
    .option('-w, --no-password', 'never prompt for a password (the default: pgbb never prompts)');
}

export function buildProgram(): Command {
  const program = new Command('pgbb')
    .description('PostgreSQL base backups as composable streams')
    .version(VERSION, '-V, --version')
    .helpOption('-?, --help', 'show help')
    .showHelpAfterError(false)
    .exitOverride();

  const backup = program
    .command('backup')
    .description('take a base backup of a running PostgreSQL server')
    .helpOption('-?, --help', 'show help')
    .requiredOption('-D, --pgdata <target>', 'directory to write the backup to, or - for a tar stream on stdout')
    .option('-F, --format <format>', 'output format: plain (p) or tar (t); default plain, tar for -D -')
    .addOption(new Option('-c, --checkpoint <mode>', 'set fast or spread checkpointing').choices(['fast', 'spread']).default('spread'))
    .option('-l, --label <label>', 'set backup label', 'pgbb base backup')
    .option('-T, --tablespace-mapping <OLD=NEW>', 'relocate tablespace in OLD to NEW (repeatable)', (v, acc: Record<string, string>) => parseTablespaceMapping(v, acc), {})
    .addOption(new Option('-X, --wal-method <method>', 'include required WAL files: fetch or none').choices(['fetch', 'none', 'f', 'n']).default('fetch'))
    .option('-r, --max-rate <rate>', 'maximum transfer rate in kB/s (suffix k or M)')
    .option('-N, --no-sync', 'do not wait for changes to be written safely to disk')
    .option('--no-manifest', 'suppress generation of backup manifest')
    .option('-k, --no-verify-checksums', 'do not verify checksums')
    .option('-v, --verbose', 'output verbose messages');
  connectionOptions(backup);
  backup.action(async (opts) => {
    const format = String(opts.format ?? (opts.pgdata === '-' ? 'tar' : 'plain'));
    const fmt = format === 'p' || format === 'plain' ? 'plain' : format === 't' || format === 'tar' ? 'tar' : null;
    if (!fmt) throw new UsageError(`invalid output format "${format}", must be "plain" or "tar"`);
    const wal = String(opts.walMethod).startsWith('n') ? 'none' : 'fetch';
    const ac = abortOnSignals();
    const verbose = Boolean(opts.verbose);
    const result = await backupCommand({
      connection: { conninfo: opts.dbname, host: opts.host, port: opts.port, user: opts.username },
      target: opts.pgdata,
      format: fmt,
      checkpoint: opts.checkpoint,
      label: opts.label,
      tablespaceMapping: opts.tablespaceMapping,
      wal,
      maxRate: opts.maxRate === undefined ? undefined : parseMaxRate(opts.maxRate),
      sync: opts.sync,
      manifest: opts.manifest,
      verifyChecksums: opts.verifyChecksums,
      signal: ac.signal,
      log: (line) => process.stderr.write(`pgbb: ${line}\n`),
    });
    if (verbose) {
      process.stderr.write(
        `pgbb: backup complete: ${result.bytes} bytes in ${result.seconds.toFixed(2)} s, ` +
          `start ${result.start.startLsn} end ${result.end.endLsn} on timeline ${result.end.timeline}\n`,
      );
    }
  });
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) process.exit(0);
      // commander already printed its one-line message
      process.exit(2);
    }
    fail(err);
  }
}

if (require.main === module) {
  process.stdout.on('error', () => {}); // EPIPE is reported through the pipeline
  void main(process.argv);
}
