#!/usr/bin/env node
/**
 * The `pgbb` command. Every failure ends as one line on stderr
 * (`pgbb: error: …`) and a non-zero exit; SIGINT/SIGTERM abort the pipeline so
 * that every stage cleans up before we exit.
 */
import { Command, CommanderError, Option } from 'commander';
import { backupCommand } from './commands/backup';
import { restoreCommand } from './commands/restore';
import { verifyCommand } from './commands/verify';
import { checkWalOptions } from './wal/streamed-wal';
import { parseMaxRate, parseTablespaceMapping } from './commands/options';
import { describeError, InterruptedError, PgbbError, UsageError } from './errors';
import { createReporter, type Reporter } from './reporters';
import { JsonReporter } from './report/json-reporter';
import { parseCompressSpec } from './compression';
import { clientConfig } from './conninfo';

const VERSION = '0.1.0';

/** The reporter of a running command: with --json, errors are JSON lines too. */
let activeReporter: Reporter | null = null;

function fail(err: unknown): never {
  if (activeReporter) {
    activeReporter.error(err);
    activeReporter.close();
  }
  if (!(activeReporter instanceof JsonReporter)) process.stderr.write(`pgbb: error: ${describeError(err)}\n`);
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
    .addOption(new Option('-X, --wal-method <method>', 'include required WAL files: stream, fetch or none').choices(['stream', 'fetch', 'none', 's', 'f', 'n']).default('stream'))
    .option('-S, --slot <name>', 'stream WAL from this existing replication slot')
    .option('--no-slot', 'stream WAL without a replication slot (no temporary slot)')
    .option('-r, --max-rate <rate>', 'maximum transfer rate in kB/s (suffix k or M)')
    .option('-N, --no-sync', 'do not wait for changes to be written safely to disk')
    .option('--no-manifest', 'suppress generation of backup manifest')
    .option('-k, --no-verify-checksums', 'do not verify checksums')
    .option('--compress <method>', 'compress tar output: zstd[:LEVEL] or zstd:level=N,workers=N, or none')
    .option('-P, --progress', 'show progress information')
    .option('--json', 'write progress, warnings, result and errors as JSON lines to stderr')
    .option('-v, --verbose', 'output verbose messages');
  connectionOptions(backup);
  backup.action(async (opts) => {
    const format = String(opts.format ?? (opts.pgdata === '-' ? 'tar' : 'plain'));
    const fmt = format === 'p' || format === 'plain' ? 'plain' : format === 't' || format === 'tar' ? 'tar' : null;
    if (!fmt) throw new UsageError(`invalid output format "${format}", must be "plain" or "tar"`);
    const wal = ({ s: 'stream', f: 'fetch', n: 'none' } as const)[String(opts.walMethod)[0] as 's' | 'f' | 'n'];
    // -S NAME and --no-slot share commander's `slot` key: a string, false, or unset.
    const slot = typeof opts.slot === 'string' ? opts.slot : undefined;
    const noSlot = opts.slot === false;
    checkWalOptions({ wal, slot, noSlot });
    const connection = { conninfo: opts.dbname, host: opts.host, port: opts.port, user: opts.username };
    const password = clientConfig(connection).password ?? process.env.PGPASSWORD;
    const reporter = createReporter({
      json: Boolean(opts.json),
      progress: Boolean(opts.progress),
      stream: process.stderr,
      secrets: typeof password === 'string' && password ? [password] : [],
    });
    activeReporter = reporter;
    const compress = opts.compress === undefined ? undefined : parseCompressSpec(String(opts.compress));
    const maxRate = opts.maxRate === undefined ? undefined : parseMaxRate(opts.maxRate);
    const ac = abortOnSignals();
    const verbose = Boolean(opts.verbose);
    const result = await backupCommand({
      connection,
      target: opts.pgdata,
      format: fmt,
      checkpoint: opts.checkpoint,
      label: opts.label,
      tablespaceMapping: opts.tablespaceMapping,
      wal,
      slot,
      noSlot,
      maxRate,
      compress,
      progress: Boolean(opts.progress || opts.json),
      reporter,
      sync: opts.sync,
      manifest: opts.manifest,
      verifyChecksums: opts.verifyChecksums,
      signal: ac.signal,
    });
    reporter.close();
    activeReporter = null;
    if (verbose) {
      process.stderr.write(
        `pgbb: backup complete: ${result.bytes} bytes in ${result.seconds.toFixed(2)} s, ` +
          `start ${result.start.startLsn} end ${result.end.endLsn} on timeline ${result.end.timeline}\n`,
      );
    }
  });

  const restore = program
    .command('restore')
    .description('restore a backup pgbb wrote (plain, tar, or - for a tar stream on stdin) into a new data directory')
    .helpOption('-?, --help', 'show help')
    .argument('<source>', 'backup directory, or - to read a tar stream from stdin')
    .requiredOption('-D, --pgdata <datadir>', 'data directory to create (must be missing or empty)')
    .option('-T, --tablespace-mapping <OLD=NEW>', 'relocate tablespace in OLD to NEW (repeatable)', (v, acc: Record<string, string>) => parseTablespaceMapping(v, acc), {})
    .option('-R, --write-recovery-conf', 'write standby.signal (and primary_conninfo with --primary-conninfo)')
    .option('--primary-conninfo <conninfo>', 'connection string the standby streams from (with -R)')
    .option('-S, --slot <name>', 'primary_slot_name for the standby (with -R)')
    .option('-N, --no-sync', 'do not wait for changes to be written safely to disk')
    .option('-v, --verbose', 'output verbose messages');
  restore.action(async (source: string, opts) => {
    if (!opts.writeRecoveryConf && (opts.primaryConninfo !== undefined || opts.slot !== undefined)) {
      throw new UsageError('--primary-conninfo and -S need -R');
    }
    const ac = abortOnSignals();
    const r = await restoreCommand({
      source,
      target: opts.pgdata,
      tablespaceMapping: opts.tablespaceMapping,
      sync: opts.sync,
      standby: opts.writeRecoveryConf ? { primaryConninfo: opts.primaryConninfo, slot: opts.slot } : undefined,
      signal: ac.signal,
    });
    if (opts.verbose) {
      process.stderr.write(
        `pgbb: restored ${r.files} files, ${r.bytes} bytes from a ${r.format} backup in ${r.seconds.toFixed(2)} s ` +
          `(start ${r.start.startLsn}, end ${r.end.endLsn}, timeline ${r.end.timeline})\n`,
      );
    }
  });

  program
    .command('verify')
    .description('check a backup: files against the manifest, page checksums, and the WAL it needs')
    .helpOption('-?, --help', 'show help')
    .argument('<source>', 'backup directory, or - to read a tar stream from stdin')
    .option('-n, --no-parse-wal', 'do not check the WAL (backups taken with -X none)')
    .option('-k, --no-verify-checksums', 'do not check page checksums')
    .option('-q, --quiet', 'print nothing when the backup is good')
    .action(async (source: string, opts) => {
      const ac = abortOnSignals();
      const r = await verifyCommand({ source, checkWal: opts.parseWal, checkPages: opts.verifyChecksums, signal: ac.signal });
      if (!r.ok) {
        for (const p of r.problems) process.stderr.write(`pgbb: ${p}\n`);
        throw new PgbbError('verify', `backup "${source}" failed verification (${r.problems.length} problem${r.problems.length === 1 ? '' : 's'})`);
      }
      if (!opts.quiet) {
        const wal = opts.parseWal ? `, WAL ${r.start?.startLsn}–${r.end?.endLsn} (${r.walSegments} segments, ${r.walRecords} records)` : '';
        process.stdout.write(`backup successfully verified: ${r.files} files, ${r.bytes} bytes, ${r.pagesChecked} pages${wal}\n`);
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
