#!/usr/bin/env -S node --max-semi-space-size=8
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
 * files; bench/README.md, "Memory", has the figures.
 */
import { Command, CommanderError, Option } from 'commander';
import { backupCommand, backupSummary } from './commands/backup';
import { restoreCommand, restoreSummary } from './commands/restore';
import { verifyCommand, verifyFailure, verifyProgress, verifySummary } from './commands/verify';
import { checkIncrementalFrom, refreshCommand, refreshResultJson, refreshSummary } from './commands/refresh';
import { standbyCommand, standbySummary } from './commands/standby';
import { promptPassword } from './commands/password-prompt';
import { parseChunkSize } from './codec/chunkmap/chunk-map';
import { parseMaxRate, parseTablespaceMapping } from './commands/options';
import { constants as osConstants } from 'node:os';
import { describeError, InterruptedError, UsageError } from './errors';
import { createReporter, type Reporter } from './report/reporters';
import { JsonReporter } from './report/json-reporter';
import { parseCompressSpec } from './codec/compression';
import { showPath } from './codec/path-bytes';
import { isS3Url } from './s3/s3-url';
import { parsePartSize } from './s3/object-writer';
import { decryptKeyFrom, encryptKeyFrom, parentKeyFrom, PASSPHRASE_ENV } from './commands/encryption-options';
import { listCommand, listJson, listTable } from './commands/list';
import { expireCommand, expireReport, parseAmount, parseCount } from './commands/expire';

const VERSION = '0.1.0';

/** The reporter of a running command: with --json, errors are JSON lines too. */
let activeReporter: Reporter | null = null;

function fail(err: unknown): never {
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

function abortOnSignals(): AbortController {
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    // once: a second signal finds no handler and ends the process the default way.
    process.once(sig, () => ac.abort(new InterruptedError(`interrupted by ${sig}`, sig)));
  }
  return ac;
}

/** -j N: a whole number (the range is the plan's check). */
function parseJobs(text: string): number {
  if (!/^\s*\d+\s*$/.test(text)) throw new UsageError(`invalid number of parallel jobs "${text}"`);
  return Number(text);
}

/** --timeout SECONDS: a non-negative number; 0 turns the limit off. */
function parseTimeout(text: string): number {
  const s = Number(text);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text) || !Number.isFinite(s)) throw new UsageError(`invalid timeout "${text}", must be a number of seconds`);
  return Math.round(s * 1000);
}

function connectionOptions(program: Command): Command {
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
function backupOptions(cmd: Command, mappingHelp: string): Command {
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

  const backup = program
    .command('backup')
    .description('take a base backup of a running PostgreSQL server')
    .helpOption('-?, --help', 'show help')
    .requiredOption('-D, --pgdata <target>', 'directory to write the backup to, - for a tar stream on stdout, or s3://bucket/prefix')
    .option('-F, --format <format>', 'output format: plain (p) or tar (t); default plain, tar for -D -')
    .option('-Z, --compress <method>', 'compress: zstd[:LEVEL] or zstd:level=N,workers=N (tar output), server-zstd[:LEVEL] (the server compresses, PostgreSQL 15+), or none')
    .option('-z, --gzip', 'compress with gzip (as pg_basebackup -z): refused, pgbb compresses with zstd (-Z zstd)')
    .option('-R, --write-recovery-conf', 'write standby.signal and primary_conninfo (and primary_slot_name with -S) into the backup')
    .option('-C, --create-slot', 'create the replication slot named by -S before starting (dropped again if the backup fails)')
    .option('--manifest-checksums <algorithm>', 'checksum of each file in the manifest: NONE, CRC32C (default), SHA224, SHA256, SHA384 or SHA512')
    .option('--manifest-force-encode', 'hex encode all file names in the manifest')
    .option('--chunk-size <size>', 'chunk size of the chunk map a plain backup records, 64k to 1M (default 1M)')
    .option('--waldir <dir>', 'location for the write-ahead log directory (plain format; pg_wal becomes a link to it)')
    .option('--wal-spool <dir>', 'with -D -: where streamed WAL waits until the base backup is over (default: $TMPDIR or /var/tmp, on disk)')
    .option('--incremental-from <dir>', 'refresh this earlier plain backup in place, writing only what changed (-D must name it); with -D s3://…: latest, a backup id or s3://…/<id>, upload only what changed since it')
    .option('--max-chain <n>', 'with -D s3://… --incremental-from: most incrementals on top of a full backup (default 7)')
    .option('--full', 'with -D s3://…: take a full backup even when --incremental-from is given')
    .option('--s3-storage-class <class>', 'with -D s3://…: storage class of every object (STANDARD, STANDARD_IA, …)')
    .option('--s3-sse-kms-key-id <key>', 'with -D s3://…: encrypt objects server-side with this KMS key (SSE-KMS)')
    .option('--s3-part-size <size>', 'with -D s3://…: smallest upload part, 5M to 5G (default 8M; grown for large archives)')
    .option('-j, --jobs <n>', 'fetch files over N SQL sessions in parallel (pg_backup_start/pg_read_binary_file); default 1: BASE_BACKUP')
    .option('--local-pgdata <dir>', 'pgbb runs on the database host: read the files from this data directory (with -j N readers), the backup held over SQL')
    .option('--encrypt-passphrase-file <file>', `encrypt (age, scrypt) with the first line of this 0600 file; or set ${PASSPHRASE_ENV}`)
    .option('--encrypt-recipients-file <file>', 'encrypt (age) to the age1… recipients listed in this file')
    .option('--encrypt-identity-file <file>', 'with --encrypt-recipients-file and -D s3://… --incremental-from: an identity of those recipients, to read the parent\'s chunk map');
  backupOptions(backup, 'relocate tablespace in OLD to NEW (repeatable)');
  backup.action(async (opts) => {
    // With --json even a bad option value is reported as a JSON error line.
    if (opts.json) activeReporter = createReporter({ json: true, stream: process.stderr });
    const toS3 = isS3Url(String(opts.pgdata));
    const format = String(opts.format ?? (opts.pgdata === '-' || toS3 ? 'tar' : 'plain'));
    const fmt = format === 'p' || format === 'plain' ? 'plain' : format === 't' || format === 'tar' ? 'tar' : null;
    if (!fmt) throw new UsageError(`invalid output format "${format}", must be "plain" or "tar"`);
    if (!toS3 && (opts.maxChain !== undefined || opts.full)) throw new UsageError('--max-chain and --full need -D s3://…');
    if (!toS3 && (opts.s3StorageClass !== undefined || opts.s3SseKmsKeyId !== undefined || opts.s3PartSize !== undefined)) {
      throw new UsageError('--s3-storage-class, --s3-sse-kms-key-id and --s3-part-size need -D s3://…');
    }
    const encrypt = await encryptKeyFrom(opts);
    if (encrypt && opts.incrementalFrom !== undefined && !toS3) throw new UsageError('encryption is not possible with --incremental-from DIR (a refresh writes a plain backup)');
    const s3Incremental = toS3 && opts.incrementalFrom !== undefined && !opts.full;
    if (opts.encryptIdentityFile !== undefined && !(s3Incremental && encrypt)) throw new UsageError('--encrypt-identity-file on backup reads an encrypted parent: it needs -D s3://…, --incremental-from and --encrypt-recipients-file');
    const parentKey = s3Incremental && encrypt ? await parentKeyFrom(opts, encrypt) : undefined;
    if (opts.incrementalFrom !== undefined && !toS3) return runRefresh(opts, checkIncrementalFrom(String(opts.incrementalFrom), opts.pgdata, fmt));
    if (opts.gzip) throw new UsageError('-z/--gzip: pgbb does not write gzip; use -Z zstd[:LEVEL] (pgbb verify and restore read zstd)');
    const common = backupSettings(opts);
    const compress = opts.compress === undefined ? undefined : parseCompressSpec(String(opts.compress));
    const ac = abortOnSignals();
    const verbose = Boolean(opts.verbose);
    const { reporter } = common;
    const walSpool = opts.walSpool === undefined ? undefined : String(opts.walSpool);
    const s3 = toS3
      ? {
          storageClass: opts.s3StorageClass as string | undefined,
          sseKmsKeyId: opts.s3SseKmsKeyId as string | undefined,
          ...(opts.s3PartSize !== undefined ? { partSize: parsePartSize(String(opts.s3PartSize)) } : {}),
          ...(opts.incrementalFrom !== undefined && !opts.full ? { incrementalFrom: String(opts.incrementalFrom) } : {}),
          ...(opts.maxChain !== undefined ? { maxChain: parseCount(String(opts.maxChain), '--max-chain') } : {}),
          ...(parentKey ? { parentKey } : {}),
        }
      : undefined;
    const result = await backupCommand({
      ...common, target: opts.pgdata, format: fmt, compress, walSpool, s3, encrypt, signal: ac.signal,
      ...(opts.waldir !== undefined ? { walDirectory: String(opts.waldir) } : {}),
      writeRecoveryConf: Boolean(opts.writeRecoveryConf), createSlot: Boolean(opts.createSlot),
      manifestChecksums: opts.manifestChecksums, manifestForceEncode: Boolean(opts.manifestForceEncode),
      ...(opts.jobs !== undefined ? { jobs: parseJobs(String(opts.jobs)) } : {}),
      ...(opts.localPgdata !== undefined ? { localPgdata: String(opts.localPgdata) } : {}),
    });
    reporter.close();
    activeReporter = null;
    if (verbose) process.stderr.write(`${backupSummary(result)}\n`);
  });

  const refresh = program
    .command('refresh')
    .description('bring an existing plain backup up to date in place, writing only what changed')
    .helpOption('-?, --help', 'show help')
    .requiredOption('-D, --pgdata <dir>', 'the plain backup to refresh')
    .option('--chunk-size <size>', 'chunk size, 64k to 1M (default: the backup\'s own, else 1M); a new size re-reads the backup once')
    .option('--no-incremental', 'never ask PostgreSQL 17+ for an INCREMENTAL backup: stream everything and compare here')
    .option('-j, --jobs <n>', 'N SQL sessions; the server compares SHA-256 of each chunk with the backup\'s and sends only those that differ');
  backupOptions(refresh, 'where to put tablespaces new since the backup (repeatable)');
  refresh.action(async (opts) => runRefresh(opts, opts.pgdata));

  const standby = program
    .command('standby')
    .description('make DATADIR a streaming standby of the server: backup, recovery settings, start, wait until it streams (resumable)')
    .helpOption('-?, --help', 'show help')
    .requiredOption('-D, --pgdata <datadir>', "the standby's data directory (missing, empty, or left by an earlier run)")
    .option('--create-slot <name>', 'create this physical replication slot on the primary (reused if it exists) and stream from it')
    .option('-o, --options <options>', 'options pg_ctl passes to postgres (e.g. "-p 5433")')
    .option('--pg-bin <dir>', 'directory of pg_ctl and postgres (default: PATH, pg_config --bindir, /usr/lib/postgresql/<major>/bin)')
    .option('--log-file <file>', 'server log for pg_ctl -l (default DATADIR/pgbb_standby.log)')
    .option('--rebuild', 're-seed an existing standby in place (stopping it first), writing only what differs')
    .option('--wait-timeout <seconds>', 'how long to wait for the standby to start and to stream', '300');
  backupOptions(standby, 'relocate tablespace in OLD to NEW (repeatable)');
  standby.action(async (opts) => {
    if (opts.json) activeReporter = createReporter({ json: true, stream: process.stderr });
    if (!String(opts.walMethod).startsWith('s')) throw new UsageError('a standby needs its WAL streamed: -X stream');
    if (opts.slot === false) throw new UsageError('--no-slot: a standby streams through a slot only with -S or --create-slot; leave --no-slot out');
    const common = backupSettings(opts);
    const ac = abortOnSignals();
    const r = await standbyCommand({
      ...common,
      target: String(opts.pgdata),
      createSlot: opts.createSlot === undefined ? undefined : String(opts.createSlot),
      serverOptions: opts.options === undefined ? undefined : String(opts.options),
      pgBin: opts.pgBin === undefined ? undefined : String(opts.pgBin),
      logFile: opts.logFile === undefined ? undefined : String(opts.logFile),
      rebuild: Boolean(opts.rebuild),
      waitTimeout: parseTimeout(String(opts.waitTimeout)) || undefined,
      json: Boolean(opts.json),
      signal: ac.signal,
    });
    common.reporter.close();
    activeReporter = null;
    if (!opts.json) process.stderr.write(`${standbySummary(r)}\n`);
  });

  const restore = program
    .command('restore')
    .description('restore a backup pgbb wrote (plain, tar, or - for a tar stream on stdin) into a new data directory')
    .helpOption('-?, --help', 'show help')
    .argument('<source>', 'backup directory, or - to read a tar stream from stdin')
    .requiredOption('-D, --pgdata <datadir>', 'data directory to create (must be missing or empty)')
    .option('-T, --tablespace-mapping <OLD=NEW>', 'relocate tablespace in OLD to NEW (repeatable)', (v, acc: Record<string, string>) => parseTablespaceMapping(v, acc), {})
    .option('--tablespaces-at-recorded-locations', 'restore tablespaces -T does not map at the locations the backup records (else refused)')
    .option('--no-manifest', 'restore a backup that has no backup_manifest (its files are then not checked)')
    .option('--allow-incomplete', 'with s3://…/<id>: read a backup that has no backup.json (an unfinished upload)')
    .option('--encrypt-passphrase-file <file>', `decrypt with the first line of this 0600 file; or set ${PASSPHRASE_ENV}`)
    .option('--encrypt-identity-file <file>', 'decrypt with the AGE-SECRET-KEY-1… identities in this 0600 file')
    .option('-R, --write-recovery-conf', 'write standby.signal (and primary_conninfo with --primary-conninfo)')
    .option('--primary-conninfo <conninfo>', 'connection string the standby streams from (with -R)')
    .option('-S, --slot <name>', 'primary_slot_name for the standby (with -R)')
    .option('-N, --no-sync', 'do not wait for changes to be written safely to disk')
    .option('-v, --verbose', 'output verbose messages');
  restore.action(async (source: string, opts) => {
    if (!opts.writeRecoveryConf && (opts.primaryConninfo !== undefined || opts.slot !== undefined)) {
      throw new UsageError('--primary-conninfo and -S need -R');
    }
    const decrypt = await decryptKeyFrom(opts);
    const ac = abortOnSignals();
    const r = await restoreCommand({
      source,
      decrypt,
      target: opts.pgdata,
      tablespaceMapping: opts.tablespaceMapping,
      sync: opts.sync,
      tablespacesAtRecordedLocations: Boolean(opts.tablespacesAtRecordedLocations),
      noManifest: opts.manifest === false,
      // Named before anything is written there: the user accepted the backup's word for these.
      onTablespace: (p) => {
        if (!p.mapped) process.stderr.write(`pgbb: restoring tablespace ${p.oid} at its recorded location "${showPath(p.dir)}"\n`);
      },
      standby: opts.writeRecoveryConf ? { primaryConninfo: opts.primaryConninfo, slot: opts.slot } : undefined,
      s3: s3SourceOptions(source, opts),
      signal: ac.signal,
    });
    if (!r.manifestChecked) process.stderr.write('pgbb: warning: the backup has no backup_manifest: files were not checked\n');
    if (opts.verbose) process.stderr.write(`${restoreSummary(r)}\n`);
  });

  program
    .command('verify')
    .description('check a backup: files against the manifest, page checksums, and the WAL it needs')
    .helpOption('-?, --help', 'show help')
    .argument('<source>', 'backup directory, or - to read a tar stream from stdin')
    .option('-n, --no-parse-wal', 'do not check the WAL (backups taken with -X none)')
    .option('-k, --no-verify-checksums', 'do not check page checksums')
    .option('-q, --quiet', 'print nothing when the backup is good')
    .option('-e, --exit-on-error', 'stop at the first problem found')
    .option('-i, --ignore <path>', 'leave this path (and what is below it) out of the manifest check (repeatable)', (v: string, acc: string[]) => [...acc, v], [])
    .option('-m, --manifest-path <path>', 'check against this backup_manifest instead of the backup\'s own')
    .option('-s, --skip-checksums', 'compare sizes against the manifest, not checksums')
    .option('-w, --wal-directory <dir>', 'check the WAL in this directory instead of the backup\'s')
    .option('-P, --progress', 'show progress on stderr')
    .option('--allow-incomplete', 'with s3://…/<id>: read a backup that has no backup.json (an unfinished upload)')
    .option('--encrypt-passphrase-file <file>', `decrypt with the first line of this 0600 file; or set ${PASSPHRASE_ENV}`)
    .option('--encrypt-identity-file <file>', 'decrypt with the AGE-SECRET-KEY-1… identities in this 0600 file')
    .action(async (source: string, opts) => {
      const decrypt = await decryptKeyFrom(opts);
      const ac = abortOnSignals();
      const r = await verifyCommand({
        source, decrypt, checkWal: opts.parseWal, checkPages: opts.verifyChecksums, s3: s3SourceOptions(source, opts), signal: ac.signal,
        ignore: opts.ignore, manifestPath: opts.manifestPath, skipChecksums: Boolean(opts.skipChecksums), walDirectory: opts.walDirectory,
        exitOnError: Boolean(opts.exitOnError), onProgress: opts.progress ? verifyProgress() : undefined,
      });
      if (!r.ok) {
        for (const p of r.problems) process.stderr.write(`pgbb: ${p}\n`);
        throw verifyFailure(source, r);
      }
      if (!opts.quiet) {
        process.stdout.write(`${verifySummary(r, Boolean(opts.parseWal), Boolean(opts.ignore?.length))}\n`);
      }
    });

  program
    .command('list')
    .description('list the backups in s3://bucket/prefix (newest last)')
    .helpOption('-?, --help', 'show help')
    .argument('<repository>', 's3://bucket/prefix')
    .option('--json', 'one JSON object per line, one per backup')
    .action(async (repo: string, opts) => {
      const rows = await listCommand({ repository: repo });
      process.stdout.write(opts.json ? listJson(rows) : listTable(rows));
    });

  program
    .command('expire')
    .description('remove old backups from s3://bucket/prefix, keeping what the retention asks for')
    .helpOption('-?, --help', 'show help')
    .argument('<repository>', 's3://bucket/prefix')
    .option('--retain-full <n>', 'keep the newest N complete full backups')
    .option('--retain-days <d>', 'keep complete backups younger than D days')
    .option('--grace-hours <h>', 'remove incomplete backups only once they are this old (default 24)', '24')
    .option('--dry-run', 'say what would be removed, remove nothing')
    .option('--json', 'one JSON object per line, one per backup removed (or to be removed)')
    .action(async (repo: string, opts) => {
      const r = await expireCommand({
        repository: repo,
        retainFull: opts.retainFull === undefined ? undefined : parseCount(String(opts.retainFull), '--retain-full'),
        retainDays: opts.retainDays === undefined ? undefined : parseAmount(String(opts.retainDays), '--retain-days'),
        graceHours: parseAmount(String(opts.graceHours), '--grace-hours'),
        dryRun: Boolean(opts.dryRun),
      });
      process.stdout.write(expireReport(r, Boolean(opts.json)));
    });
  return program;
}

/** The S3 source options of restore and verify: --allow-incomplete only means something for s3://. */
function s3SourceOptions(source: string, opts: Record<string, any>) {
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
function backupSettings(opts: Record<string, any>) {
  const wal = ({ s: 'stream', f: 'fetch', n: 'none' } as const)[String(opts.walMethod)[0] as 's' | 'f' | 'n'];
  // -S NAME and --no-slot share commander's `slot` key: a string, false, or unset.
  const slot = typeof opts.slot === 'string' ? opts.slot : undefined;
  const noSlot = opts.slot === false;
  // -W's answer, asked before anything else (see withPassword); commander keeps `password` for -w/-W.
  const connection = { conninfo: opts.dbname, host: opts.host, port: opts.port, user: opts.username, ...(typeof opts.askedPassword === 'string' ? { password: opts.askedPassword } : {}) };
  const timeout = parseTimeout(String(opts.timeout));
  const reporter = createReporter({ json: Boolean(opts.json), progress: Boolean(opts.progress), verbose: Boolean(opts.verbose), stream: process.stderr });
  activeReporter = reporter;
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

/** `pgbb refresh` and `pgbb backup --incremental-from`: the options they share with backup, then the refresh. */
async function runRefresh(opts: Record<string, any>, target: string): Promise<void> {
  const common = backupSettings(opts);
  const { reporter } = common;
  const json = Boolean(opts.json);
  const ac = abortOnSignals();
  const r = await refreshCommand({
    ...common,
    target,
    incremental: opts.incremental === false ? 'off' : 'auto',
    ...(opts.jobs !== undefined ? { jobs: parseJobs(String(opts.jobs)) } : {}),
    signal: ac.signal,
  });
  if (json) process.stderr.write(`${refreshResultJson(r)}\n`);
  else reporter.result({ startLsn: r.start.startLsn, endLsn: r.end.endLsn, timeline: r.end.timeline, bytes: r.bytesWritten, files: r.filesAdded + r.filesChanged, seconds: r.seconds });
  reporter.close();
  activeReporter = null;
  // What a DBA wants to know after every refresh, -v or not: what it wrote of what, and what crossed the network.
  if (!json) process.stderr.write(`${refreshSummary(r)}\n`);
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
