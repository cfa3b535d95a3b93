/**
 * The options several subcommands share, declared and read the same way
 * for each: connection flags, what taking a backup from a server needs
 * (backup, refresh, standby: pg_basebackup's letters), the settings read
 * from them once, and the number parsers the actions use.
 */
import { Option, type Command } from 'commander';
import { UsageError } from '../errors';
import { promptPassword } from '../commands/password-prompt';
import { parseChunkSize } from '../codec/chunkmap/chunk-map';
import { parseMaxRate, parseTablespaceMapping } from '../commands/options';
import { createReporter } from '../report/reporters';
import { isS3Url } from '../s3/s3-url';
import { setActiveReporter } from './run-state';

/** -j N: a whole number (the range is the plan's check). */
export function parseJobs(text: string): number {
  if (!/^\s*\d+\s*$/.test(text)) throw new UsageError(`invalid number of parallel jobs "${text}"`);
  return Number(text);
}

/** --timeout SECONDS: a non-negative number; 0 turns the limit off. */
export function parseTimeout(text: string): number {
  const s = Number(text);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text) || !Number.isFinite(s)) throw new UsageError(`invalid timeout "${text}", must be a number of seconds`);
  return Math.round(s * 1000);
}

export function connectionOptions(program: Command): Command {
  return program
    .option('-d, --dbname <conninfo>', 'connection string (libpq key=value or postgres:// URI)')
    .option('-h, --host <host>', 'database server host or socket directory')
    .option('-p, --port <port>', 'database server port')
    .option('-U, --username <name>', 'connect as the specified database user')
    // -W before -w: so that neither given leaves `password` unset (commander would default a lone --no-password to true).
    .option('-W, --password', 'ask for the password on the terminal before connecting')
    .option('-w, --no-password', 'never prompt for a password (the default without -W)');
}

/** What taking a backup from a server needs, for `backup` and `refresh` alike (pg_basebackup's letters). */
export function backupOptions(cmd: Command, mappingHelp: string): Command {
  cmd
    .addOption(new Option('-c, --checkpoint <mode>', 'set fast or spread checkpointing').choices(['fast', 'spread']).default('spread'))
    .option('-l, --label <label>', 'set backup label', 'pgbb base backup')
    .option('-T, --tablespace-mapping <OLD=NEW>', mappingHelp, (v, acc: Record<string, string>) => parseTablespaceMapping(v, acc), {})
    .addOption(new Option('-X, --wal-method <method>', 'include required WAL files: stream, fetch or none').choices(['stream', 'fetch', 'none', 's', 'f', 'n']).default('stream'))
    .option('-S, --slot <name>', 'stream WAL from this existing replication slot')
    .option('--no-slot', 'stream WAL without a replication slot (no temporary slot)')
    .option('-r, --max-rate <rate>', 'maximum transfer rate in kB/s (suffix k or M)')
    .option('-N, --no-sync', 'do not wait for changes to be written safely to disk')
    .option('--no-manifest', 'suppress generation of backup manifest')
    .option('-k, --no-verify-checksums', 'do not verify checksums')
    .option('-P, --progress', 'show progress information')
    .option('--json', 'write progress, warnings, result and errors as JSON lines to stderr')
    .option('--timeout <seconds>', 'give up when the server sends nothing for this long while data is due, and when connecting (0: never)', '60')
    .option('-v, --verbose', 'output verbose messages');
  return connectionOptions(cmd).hook('preAction', async (_cmd, action) => {
    const o = action.opts();
    // -W: asked before anything is checked or created, as pg_basebackup asks before connecting.
    if (o.password === true) o.askedPassword = await promptPassword();
  });
}

/** The S3 source options of restore and verify: --allow-incomplete only means something for s3://. */
export function s3SourceOptions(source: string, opts: Record<string, any>) {
  if (!isS3Url(source)) {
    if (opts.allowIncomplete) throw new UsageError('--allow-incomplete is only for s3:// sources');
    return undefined;
  }
  return { allowIncomplete: Boolean(opts.allowIncomplete) };
}

/**
 * The settings `backup` and `refresh` share, parsed once; the reporter starts
 * here so that a bad value met later still comes out as a JSON line with --json.
 */
export function backupSettings(opts: Record<string, any>) {
  const wal = ({ s: 'stream', f: 'fetch', n: 'none' } as const)[String(opts.walMethod)[0] as 's' | 'f' | 'n'];
  // -S NAME and --no-slot share commander's `slot` key: a string, false, or unset.
  const slot = typeof opts.slot === 'string' ? opts.slot : undefined;
  const noSlot = opts.slot === false;
  // -W's answer, asked before anything else (see withPassword); commander keeps `password` for -w/-W.
  const connection = { conninfo: opts.dbname, host: opts.host, port: opts.port, user: opts.username, ...(typeof opts.askedPassword === 'string' ? { password: opts.askedPassword } : {}) };
  const timeout = parseTimeout(String(opts.timeout));
  const reporter = createReporter({ json: Boolean(opts.json), progress: Boolean(opts.progress), verbose: Boolean(opts.verbose), stream: process.stderr });
  setActiveReporter(reporter);
  // Checked with every other setting by the builder's plan (src/pipeline/backup-plan.ts), before anything is created or locked.
  return {
    connection,
    checkpoint: opts.checkpoint as 'fast' | 'spread',
    label: String(opts.label),
    tablespaceMapping: opts.tablespaceMapping as Record<string, string>,
    wal,
    slot,
    noSlot,
    timeout,
    reporter,
    maxRate: opts.maxRate === undefined ? undefined : parseMaxRate(opts.maxRate),
    chunkSize: opts.chunkSize === undefined ? undefined : parseChunkSize(String(opts.chunkSize)),
    progress: Boolean(opts.progress || opts.json),
    sync: Boolean(opts.sync),
    manifest: Boolean(opts.manifest),
    verifyChecksums: Boolean(opts.verifyChecksums),
  };
}
